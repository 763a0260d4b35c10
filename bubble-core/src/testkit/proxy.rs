//! [`Proxy`]: a TCP proxy in front of a real service that a test can turn
//! into an outage (refused, or a blackhole) and back, without stopping the
//! service that other tests share.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forwards both ways.
    Up,
    /// Cuts every open connection and closes new ones at once: a service
    /// that was stopped.
    Refuse,
    /// Accepts and holds connections, new and open, but passes nothing
    /// either way: a service that hangs or a network that drops packets.
    /// A held connection stays silent after [`Proxy::restore`] too, as a
    /// TCP connection does until the kernel notices its peer is gone:
    /// only new connections work again.
    Blackhole,
}

/// A TCP proxy to one service. Dropping it stops accepting.
pub struct Proxy {
    addr: String,
    mode: watch::Sender<Mode>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free local port and forwards to `target` (`host:port`).
    pub async fn start(target: impl Into<String>) -> Proxy {
        let target = target.into();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port");
        let addr = listener.local_addr().expect("local addr").to_string();
        let (mode, watching) = watch::channel(Mode::Up);
        let accept = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                tokio::spawn(serve(inbound, target.clone(), watching.clone()));
            }
        });
        Proxy { addr, mode, accept }
    }

    /// Where clients connect: `127.0.0.1:port`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Cuts every connection and refuses new ones until [`Proxy::restore`].
    pub fn refuse(&self) {
        self.mode.send_replace(Mode::Refuse);
    }

    /// Stops passing anything, holding every connection open and silent
    /// (until its client closes it, or [`Proxy::refuse`] cuts it).
    pub fn blackhole(&self) {
        self.mode.send_replace(Mode::Blackhole);
    }

    /// Forwards new connections again. Connections held by a blackhole
    /// stay silent: a client must notice and reconnect by itself.
    pub fn restore(&self) {
        self.mode.send_replace(Mode::Up);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn serve(mut inbound: TcpStream, target: String, mut mode: watch::Receiver<Mode>) {
    let now = *mode.borrow_and_update();
    match now {
        Mode::Refuse => return,
        Mode::Blackhole => return hold(inbound, mode).await,
        Mode::Up => {}
    }
    let Ok(mut outbound) = TcpStream::connect(&target).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => return,
        _ = mode.wait_for(|m| *m != Mode::Up) => {}
    }
    drop(outbound);
    if *mode.borrow() == Mode::Blackhole {
        return hold(inbound, mode).await;
    }
    // Cut: a reset rather than a polite close, as from a dead peer.
    let _ = inbound.set_zero_linger();
}

/// Swallows what the client sends and answers nothing, until the client
/// closes the connection or the proxy refuses (then cuts it).
async fn hold(mut inbound: TcpStream, mut mode: watch::Receiver<Mode>) {
    let mut sink = [0u8; 4096];
    loop {
        tokio::select! {
            read = inbound.read(&mut sink) => {
                if matches!(read, Ok(0) | Err(_)) {
                    return;
                }
            }
            _ = mode.wait_for(|m| *m == Mode::Refuse) => {
                let _ = inbound.set_zero_linger();
                return;
            }
        }
    }
}

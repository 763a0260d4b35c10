//! The client's side of TCP and WebSocket, and the selector lookup.

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::codec::Framed;

use bubble_proto::{Frame, FrameCodec, FrameError};

use crate::error::ClientError;

/// Where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A TCP gate, `host:port`.
    Tcp(String),
    /// A WebSocket gate, `ws://host:port/`.
    Ws(String),
    /// Ask a selector (`http://host:port`) for the least loaded gate, then
    /// use its TCP (`prefer_ws = false`) or WebSocket endpoint. Every node
    /// of a cluster is a selector: list several, and a connect asks the
    /// next one when one does not answer (its node may be the one that died).
    Selector {
        /// The selectors' base URLs, asked in turn.
        urls: Vec<String>,
        /// Use the gate's WebSocket endpoint instead of TCP.
        prefer_ws: bool,
    },
}

/// One open connection to a gate.
pub enum Connection {
    /// TCP.
    Tcp(Box<Framed<TcpStream, FrameCodec>>),
    /// WebSocket.
    Ws(Box<tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>>),
}

impl Connection {
    /// Opens a connection to `endpoint`.
    pub async fn open(endpoint: &Endpoint, max_body: usize) -> Result<Connection, ClientError> {
        match endpoint {
            Endpoint::Tcp(addr) => {
                let stream = TcpStream::connect(addr)
                    .await
                    .map_err(|e| ClientError::Connect(format!("{addr}: {e}")))?;
                let _ = stream.set_nodelay(true);
                Ok(Connection::Tcp(Box::new(Framed::new(
                    stream,
                    FrameCodec::new(max_body),
                ))))
            }
            Endpoint::Ws(url) => {
                let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
                    .await
                    .map_err(|e| ClientError::Connect(format!("{url}: {e}")))?;
                Ok(Connection::Ws(Box::new(ws)))
            }
            Endpoint::Selector { urls, prefer_ws } => {
                let gate = select_gate_of(urls).await?;
                let next = if *prefer_ws {
                    gate.ws.map(Endpoint::Ws)
                } else {
                    gate.tcp.map(Endpoint::Tcp)
                }
                .ok_or_else(|| {
                    ClientError::Connect("the selector offered no gate of that kind".into())
                })?;
                Box::pin(Connection::open(&next, max_body)).await
            }
        }
    }

    /// The next frame; `None` when the server closed.
    pub async fn read(&mut self, max_body: usize) -> Result<Option<Frame>, ClientError> {
        match self {
            Connection::Tcp(framed) => match framed.next().await {
                Some(Ok(f)) => Ok(Some(f)),
                Some(Err(e)) => Err(ClientError::Protocol(e.to_string())),
                None => Ok(None),
            },
            Connection::Ws(ws) => loop {
                match ws.next().await {
                    Some(Ok(Message::Binary(b))) => {
                        return Frame::parse_exact(&b, max_body)
                            .map(Some)
                            .map_err(|e: FrameError| ClientError::Protocol(e.to_string()));
                    }
                    Some(Ok(Message::Close(_))) | None => return Ok(None),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(ClientError::Connect(e.to_string())),
                }
            },
        }
    }

    /// Queues a frame.
    pub async fn write(&mut self, frame: Frame) -> Result<(), ClientError> {
        match self {
            Connection::Tcp(framed) => framed
                .feed(frame)
                .await
                .map_err(|e| ClientError::Connect(e.to_string())),
            Connection::Ws(ws) => ws
                .feed(Message::Binary(frame.to_bytes()))
                .await
                .map_err(|e| ClientError::Connect(e.to_string())),
        }
    }

    /// Sends what is queued.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        match self {
            Connection::Tcp(framed) => SinkExt::<Frame>::flush(framed.as_mut())
                .await
                .map_err(|e| ClientError::Connect(e.to_string())),
            Connection::Ws(ws) => ws
                .flush()
                .await
                .map_err(|e| ClientError::Connect(e.to_string())),
        }
    }
}

/// What the selector answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateInfo {
    /// The node.
    pub node: String,
    /// Its TCP endpoint.
    pub tcp: Option<String>,
    /// Its WebSocket URL.
    pub ws: Option<String>,
    /// The server key PEM it announced (pin it out of band, don't trust this alone).
    pub server_key_pem: Option<String>,
    /// The announced fingerprint.
    pub server_key_fingerprint: Option<String>,
}

/// Asks the selectors in turn, starting at a different one on each call
/// so that clients spread over them, until one hands out a gate.
pub async fn select_gate_of(urls: &[String]) -> Result<GateInfo, ClientError> {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    if urls.is_empty() {
        return Err(ClientError::Connect("no selector URL is configured".into()));
    }
    let start = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut failures = Vec::new();
    for k in 0..urls.len() {
        let url = &urls[(start + k) % urls.len()];
        match select_gate(url).await {
            Ok(gate) => return Ok(gate),
            Err(e) => failures.push(e.to_string()),
        }
    }
    Err(ClientError::Connect(format!(
        "no selector handed out a gate: {}",
        failures.join("; ")
    )))
}

/// `GET <url>/v1/gate` over plain HTTP/1.1 (the selector is a small JSON
/// endpoint; put TLS in front of it in production).
pub async fn select_gate(url: &str) -> Result<GateInfo, ClientError> {
    let body = http_get(url, "/v1/gate").await?;
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        ClientError::Connect(format!("selector answered something that is not JSON: {e}"))
    })?;
    let s = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    Ok(GateInfo {
        node: v["node"].as_str().unwrap_or_default().to_owned(),
        tcp: s(&v["tcp"]),
        ws: s(&v["ws"]),
        server_key_pem: s(&v["server_key"]["pem"]),
        server_key_fingerprint: s(&v["server_key"]["fingerprint_sha256"]),
    })
}

/// A minimal HTTP/1.1 GET returning the body of a 2xx answer.
pub async fn http_get(base: &str, path: &str) -> Result<Vec<u8>, ClientError> {
    let (status, body) = http_request(base, "GET", path, None, None).await?;
    if !(200..300).contains(&status) {
        return Err(ClientError::Connect(format!(
            "{base}{path} answered {status}: {}",
            String::from_utf8_lossy(&body)
        )));
    }
    Ok(body)
}

/// A minimal HTTP/1.1 request over plain TCP (selector and development
/// calls to the admin API): returns the status and the body.
pub async fn http_request(
    base: &str,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    json_body: Option<&str>,
) -> Result<(u16, Vec<u8>), ClientError> {
    let rest = base
        .strip_prefix("http://")
        .ok_or_else(|| ClientError::Connect(format!("URL {base:?} must start with http://")))?;
    let host = rest.trim_end_matches('/');
    let mut stream = TcpStream::connect(host)
        .await
        .map_err(|e| ClientError::Connect(format!("{host}: {e}")))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept: application/json\r\n"
    );
    if let Some(token) = bearer {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = json_body.unwrap_or("");
    if json_body.is_some() {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| ClientError::Connect(e.to_string()))?;
    let mut raw = BytesMut::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if raw.len() > 8 << 20 {
            return Err(ClientError::Connect("HTTP answer too large".into()));
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| ClientError::Connect("the answer is not HTTP".into()))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| ClientError::Connect("the answer has no HTTP status".into()))?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body).into_bytes()
    } else {
        body.as_bytes().to_vec()
    };
    Ok((status, body))
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

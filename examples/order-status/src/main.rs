//! `order-status`: the example business service, with a few demo orders.
//! Lines typed on its standard input change an order's status
//! (`A-1001 delivered`), and the order's owner gets a notice.

use clap::Parser;
use tokio::io::{AsyncBufReadExt, BufReader};

use order_status::{Notifier, Orders, serve};

/// A business service for bubble's router: answers command 0x8001 (order
/// status) over gRPC.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Type `ORDER STATUS` lines (e.g. `A-1001 delivered`) to change an order's status; its owner gets a system notice when --admin-secret is set. Demo orders: A-1001 and A-1002 (alice), B-2001 (bob)."
)]
struct Args {
    /// Where to serve gRPC (bubble's [[router]] entry points at it).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:50051")]
    listen: String,
    /// The app of the demo orders.
    #[arg(long, value_name = "APP", default_value = "demo")]
    app: String,
    /// The bubble server's HTTP base URL (its admin API).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:7780")]
    bubble: String,
    /// The admin secret, to push notices [default: $BUBBLE_ADMIN_SECRET];
    /// without it, nobody is told of status changes.
    #[arg(long, value_name = "SECRET")]
    admin_secret: Option<String>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let mut orders = Orders::demo(&args.app);
    let admin_secret =
        (args.admin_secret.clone()).or_else(|| std::env::var("BUBBLE_ADMIN_SECRET").ok());
    match &admin_secret {
        Some(secret) if !secret.is_empty() => {
            orders = orders.with_notifier(Notifier::new(&args.bubble, secret));
        }
        _ => eprintln!(
            "order-status: no --admin-secret (or BUBBLE_ADMIN_SECRET): status changes are not \
             pushed to users"
        ),
    }
    let listener = match tokio::net::TcpListener::bind(&args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("order-status: cannot listen on {}: {e}", args.listen);
            return std::process::ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => println!("order-status listening on http://{addr}"),
        Err(e) => eprintln!("order-status: {e}"),
    }
    tokio::spawn(read_status_changes(orders.clone()));
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match serve(listener, orders, stop).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("order-status: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Applies `ORDER STATUS` lines from standard input until it closes.
async fn read_status_changes(orders: Orders) {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut words = line.split_whitespace();
        let (Some(id), Some(status)) = (words.next(), words.next()) else {
            if !line.trim().is_empty() {
                eprintln!("order-status: type ORDER STATUS, e.g. `A-1001 delivered`");
            }
            continue;
        };
        match orders.set_status(id, status).await {
            Ok(order) => println!(
                "order {} of {} is now {}",
                order.id, order.user, order.status
            ),
            Err(e) => eprintln!("order-status: {e}"),
        }
    }
}

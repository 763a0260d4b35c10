//! `bubble-server [--config FILE]`: the reference server;
//! `bubble-server reindex [--app APP]`: rebuilds its search index from the
//! store.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use bubble_core::AppId;
use bubble_server::Config;

/// mimalloc instead of the system allocator: a server fans every message
/// out into many small short-lived allocations across worker threads, where
/// glibc's arenas spent ~30% of the CPU (and contended on their locks) in
/// bubble-bench's group-of-100 profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// bubble's reference server: the gate (TCP + WebSocket), the selector and
/// admin API, metrics.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "With no file, the embedded default: data in ./bubble-data. Each layer overrides the one before: the defaults, the file, BUBBLE_* variables (BUBBLE_ + the dotted key in capitals, `.` as `_`: BUBBLE_GATE_TCP=0.0.0.0:7100, BUBBLE_STORE_SQLITE_MAX_BATCH=1024), then --set. Every key: docs/configuration.md."
)]
struct Args {
    /// The config file (TOML); without it, the defaults and BUBBLE_* variables.
    #[arg(short, long, value_name = "FILE", global = true, env = "BUBBLE_CONFIG")]
    config: Option<PathBuf>,
    /// Sets one config key, over the file and the environment
    /// (repeatable): --set gate.tcp=0.0.0.0:7700
    #[arg(short, long = "set", value_name = "KEY=VALUE", global = true)]
    set: Vec<String>,
    /// Without a command: serve.
    #[command(subcommand)]
    command: Option<Command>,
}

/// What to do instead of serving.
#[derive(Debug, Subcommand)]
enum Command {
    /// Rebuilds the search index from the store (with the server stopped):
    /// removes each app's documents and indexes every message the store
    /// holds, one document per message. Progress goes to stderr.
    Reindex {
        /// Only this app; without it, every app (which also ends a pending
        /// index format upgrade).
        #[arg(long, value_name = "APP")]
        app: Option<String>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BUBBLE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = match Config::load(args.config.as_deref(), &args.set) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bubble-server: bad configuration: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::Reindex { app }) = args.command {
        let mut err = std::io::stderr();
        return match bubble_server::reindex::run(&config, app.map(AppId::new), &mut err).await {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bubble-server: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let server = match bubble_server::start(config.clone()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bubble-server: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    print_banner(&config, &server);
    wait_for_signal().await;
    eprintln!("bubble-server: shutting down (draining connections)...");
    match server.shutdown(Duration::from_secs(10)).await {
        Ok(()) => {
            eprintln!("bubble-server: stopped cleanly");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bubble-server: error while stopping: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_banner(config: &Config, s: &bubble_server::RunningServer) {
    println!("bubble is running");
    if let Some(a) = s.tcp_addr {
        println!("  tcp gate        {a}");
    }
    if let Some(a) = s.ws_addr {
        println!("  websocket gate  ws://{a}/");
    }
    if let Some(a) = s.http_addr {
        println!(
            "  http            http://{a}  (selector /v1/gate, admin /v1/admin, metrics /metrics)"
        );
    }
    if let (true, Some(a)) = (config.serves_web_chat(), s.http_addr) {
        println!("  web chat        http://{a}/chat/  (sign in with any name)");
    }
    println!(
        "  data            {} (store {}, search {})",
        config.data_dir.display(),
        config.store.kind.as_str(),
        config.search.kind.as_str()
    );
    println!("  server key      sha256 {}", s.server_key_fingerprint);
    if let (false, Some(http)) = (config.dev_app.is_empty(), s.http_addr) {
        let app = &config.dev_app;
        println!("\nA test token for user alice of app {app:?}:");
        println!(
            "  curl -s -X POST http://{http}/v1/admin/apps/{app}/tokens \\\n    -H 'Authorization: Bearer {}' -H 'Content-Type: application/json' \\\n    -d '{{\"user\":\"alice\"}}'",
            s.admin_secret
        );
        println!(
            "(the admin secret is kept in {}/admin_secret)",
            config.data_dir.display()
        );
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Args::command().debug_assert();
    }

    #[test]
    fn config_takes_a_file_long_or_short() {
        for flag in ["--config", "-c"] {
            let args = Args::try_parse_from(["bubble-server", flag, "bubble.toml"]).unwrap();
            assert_eq!(args.config, Some(PathBuf::from("bubble.toml")));
        }
        assert_eq!(
            Args::try_parse_from(["bubble-server"]).unwrap().config,
            None
        );
    }

    #[test]
    fn reindex_takes_an_optional_app_and_the_global_flags() {
        let args = Args::try_parse_from(["bubble-server", "reindex"]).unwrap();
        assert!(matches!(args.command, Some(Command::Reindex { app: None })));
        let args = Args::try_parse_from([
            "bubble-server",
            "reindex",
            "--app",
            "acme",
            "-c",
            "bubble.toml",
            "--set",
            "search.kind=tantivy",
        ])
        .unwrap();
        assert!(matches!(args.command, Some(Command::Reindex { app: Some(a) }) if a == "acme"));
        assert_eq!(args.config, Some(PathBuf::from("bubble.toml")));
        assert_eq!(args.set, ["search.kind=tantivy"]);
        assert!(
            Args::try_parse_from(["bubble-server"])
                .unwrap()
                .command
                .is_none(),
            "no command: serve"
        );
    }

    #[test]
    fn a_bad_flag_is_named() {
        let err = Args::try_parse_from(["bubble-server", "--confg", "x"]).unwrap_err();
        assert!(err.to_string().contains("--confg"), "{err}");
        let err = Args::try_parse_from(["bubble-server", "--config"]).unwrap_err();
        assert!(err.to_string().contains("--config"), "{err}");
    }
}

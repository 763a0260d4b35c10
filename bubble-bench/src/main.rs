//! `bubble-bench`: a load generator that speaks bubble's real protocol
//! (handshake included) against a `bubble-server` on loopback, and reports
//! throughput, end-to-end latency, loss, duplicates, server CPU and memory.
//!
//! # Layout
//!
//! - [`server`]: starts the server under test (child process or in process),
//!   admin calls, CPU and RSS from `/proc`.
//! - [`conn`]: a lean raw-protocol client (handshake, sealed frames) cheap
//!   enough to hold 100,000 connections from one process.
//! - [`traffic`]: connecting many users from many source addresses, open- and
//!   closed-loop sending, delivery checking.
//! - [`scenarios`]: 1:1 pairs, groups, super group, offline drain, idle
//!   connections, reconnect storm, latency sweep.
//! - [`stats`]: HDR histograms, loss and duplicate detection.
//! - [`growth`]: rounds of 1:1 traffic until millions of messages are
//!   stored, to see whether a send costs more as the store fills.
//! - [`pages`]: conversation-list and history pages of one user with a
//!   large inbox, timed at the store (no server).
//! - [`soak`]: an hour of mixed traffic (1:1, groups, a super group,
//!   reconnect storms, slow consumers, abusive clients), sampled over time.
//! - [`plot`]: SVG line charts.
//!
//! Every scenario is bounded in time and count and talks only to loopback.
//! Run `bubble-bench --help` for the commands; `docs/benchmarks.md` has the
//! ones used for the published figures.

mod conn;
mod growth;
mod pages;
mod plot;
mod scenarios;
mod server;
mod soak;
mod stats;
mod traffic;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

use scenarios::Opts;

use server::{Mode, RsaBits, Server};

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// 1:1 pairs (user 2i <-> 2i+1): --users --window | --rate, --duration
    Pairs,
    /// Normal groups, every member sends: --group-size --groups --window | --rate, --duration
    Group,
    /// One super group, all members online: --members --messages
    Supergroup,
    /// Receivers offline, then connect and sync: --users --messages (per receiver) --window
    Offline,
    /// Hold idle authenticated connections: --connections --concurrency --hold
    Idle,
    /// Connect, drop all, resume all: --connections --concurrency
    Reconnect,
    /// Open-loop pairs at several loads: --users --rates a,b,c --duration
    Sweep,
    /// A tiny pairs run (CI): 20 users, 2 s, open loop
    Smoke,
    /// Rounds of closed-loop pairs (--duration each, default 30 s) until
    /// --total messages are stored, each with a 5 s probe at --rate
    /// (default 1000/s): msgs/s, CPU per message, p99 and max per round
    Growth,
    /// Mixed traffic for --duration (default 3600 s), sampled every --sample
    /// s: --users (1:1) --rate --groups --group-size --members
    Soak,
    /// One user with --users conversations and --total messages, written
    /// straight into the store the environment names (no server), then
    /// every conversation-list page and random history pages timed
    Pages,
}

/// A load generator that speaks bubble's real protocol (handshake included)
/// against a bubble-server on loopback, and reports throughput, end-to-end
/// latency, loss, duplicates, server CPU and memory as JSON.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "\
The server's backends come from the environment, as for bubble-server:
  BUBBLE_STORE_KIND=sqlite|mysql|memory BUBBLE_STORE_MYSQL_URL=... BUBBLE_SEARCH_KIND=...
  BUBBLE_CACHE_KIND=redis BUBBLE_CACHE_REDIS_URL=redis://127.0.0.1:6379 ...
Exit status 1 when any message was lost, duplicated or refused."
)]
struct Args {
    /// The scenario.
    scenario: Scenario,
    /// Users (default 100).
    #[arg(long, value_name = "N")]
    users: Option<usize>,
    /// Closed loop: unacked sends per user (default 32).
    #[arg(long, value_name = "N")]
    window: Option<usize>,
    /// Open loop: total messages per second offered (default: closed loop).
    #[arg(long, value_name = "R")]
    rate: Option<f64>,
    /// Seconds of sending (default 10; soak 3600).
    #[arg(long, value_name = "S")]
    duration: Option<f64>,
    /// Members per normal group (default 10).
    #[arg(long, value_name = "N")]
    group_size: Option<usize>,
    /// Number of normal groups (default 10).
    #[arg(long, value_name = "N")]
    groups: Option<usize>,
    /// Super group members (default 10000).
    #[arg(long, value_name = "N")]
    members: Option<usize>,
    /// Super group: messages sent; offline: messages per receiver (default 20).
    #[arg(long, value_name = "N")]
    messages: Option<u64>,
    /// Idle / reconnect connections (default 10000).
    #[arg(long, value_name = "N")]
    connections: Option<usize>,
    /// Handshakes in flight (default 64).
    #[arg(long, value_name = "N")]
    concurrency: Option<usize>,
    /// Source addresses 127.0.0.2.. (default one per 16000 connections).
    #[arg(long, value_name = "N")]
    sources: Option<usize>,
    /// Idle: seconds to hold (default 5).
    #[arg(long, value_name = "S")]
    hold: Option<f64>,
    /// After sending, give up on stragglers when none arrived for S seconds
    /// (at most 8 x S in all; default 15).
    #[arg(long, value_name = "S")]
    drain: Option<f64>,
    /// Soak: seconds between samples of the server (default 10).
    #[arg(long, value_name = "S")]
    sample: Option<f64>,
    /// Sweep: offered loads (default 1000,2000,5000,10000,20000).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    rates: Option<Vec<f64>>,
    /// Growth: messages to store (default 5000000).
    #[arg(long, value_name = "N")]
    total: Option<u64>,
    /// Where results.jsonl and SVG plots go (default bench-results).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The server binary (default: bubble-server next to this binary).
    #[arg(long, value_name = "PATH")]
    server_bin: Option<PathBuf>,
    /// Run the server inside the bench (CPU/RSS then include the bench).
    #[arg(long)]
    in_process: bool,
    /// Server data directory (default: a fresh temporary one).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Size of the test server key installed and pinned (default 3072, the
    /// server's default); 2048 needs tokens of at most 93 bytes, which the
    /// bench's v2 tokens are. A --data-dir that already holds a key keeps
    /// it (the bench then pins that key).
    #[arg(long, value_name = "2048|3072", value_parser = RsaBits::parse)]
    rsa_bits: Option<RsaBits>,
    /// Start a cluster of N nodes on the shared backends of the environment
    /// (MySQL, Redis, etcd); each client asks a node's selector for its
    /// gate, and CPU and memory are those of all nodes (default 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=16))]
    nodes: Option<u16>,
}

/// What a run is: the scenario (smoke resolved to pairs) and its options.
struct Cli {
    scenario: Scenario,
    opts: Opts,
    server_bin: Option<PathBuf>,
    in_process: bool,
    data_dir: Option<PathBuf>,
    rsa_bits: RsaBits,
    /// Soak: seconds between samples.
    sample: f64,
    /// Nodes of the cluster the bench starts.
    nodes: usize,
}

impl From<Args> for Cli {
    fn from(a: Args) -> Cli {
        let mut o = Opts::default();
        if a.scenario == Scenario::Soak {
            // Modest on purpose: the server shares two cores with the bench.
            o.duration = 3600.0;
            o.rate = Some(200.0);
            o.groups = 5;
            o.group_size = 20;
            o.members = 500;
        }
        if a.scenario == Scenario::Growth {
            o.duration = 30.0;
        }
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = a.$field { o.$field = v; } )* };
        }
        set!(
            users,
            window,
            duration,
            group_size,
            groups,
            members,
            messages,
            connections,
            concurrency,
            hold,
            drain,
            rates,
            total,
            out
        );
        o.rate = a.rate.or(o.rate);
        o.sources = a.sources.or(o.sources);
        let mut scenario = a.scenario;
        if scenario == Scenario::Smoke {
            scenario = Scenario::Pairs;
            o.users = 20;
            o.rate = Some(400.0);
            o.duration = 2.0;
            o.drain = 10.0;
            o.concurrency = 8;
        }
        Cli {
            scenario,
            opts: o,
            server_bin: a.server_bin,
            in_process: a.in_process,
            data_dir: a.data_dir,
            rsa_bits: a.rsa_bits.unwrap_or_default(),
            sample: a.sample.unwrap_or(10.0),
            nodes: a.nodes.map_or(1, usize::from),
        }
    }
}

fn server_mode(cli: &Cli) -> Result<Mode, String> {
    if cli.in_process {
        return Ok(Mode::InProcess);
    }
    if let Some(p) = &cli.server_bin {
        return Ok(Mode::Binary(p.clone()));
    }
    let next_to_us = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("bubble-server")));
    match next_to_us {
        Some(p) if p.exists() => Ok(Mode::Binary(p)),
        _ => Err(
            "no bubble-server binary next to bubble-bench: build it (cargo build --release -p bubble-server), pass --server-bin PATH, or use --in-process"
                .into(),
        ),
    }
}

/// Lets the bench and the server it starts hold many sockets; returns the
/// open-file limit now in force.
fn raise_fd_limit() -> u64 {
    let want = 1_048_576;
    if rlimit::setrlimit(rlimit::Resource::NOFILE, want, want).is_err() {
        let _ = rlimit::increase_nofile_limit(want);
    }
    rlimit::getrlimit(rlimit::Resource::NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024)
}

/// Connections a scenario holds open at once.
fn connections_needed(cli: &Cli) -> u64 {
    let o = &cli.opts;
    (match cli.scenario {
        Scenario::Idle | Scenario::Reconnect => o.connections,
        Scenario::Supergroup => o.members,
        Scenario::Group => o.group_size * o.groups,
        Scenario::Offline => o.users * 2,
        Scenario::Pairs | Scenario::Sweep | Scenario::Smoke | Scenario::Growth => o.users,
        // Every user, the slow consumers and flooders, the abusive clients.
        Scenario::Soak => o.users + o.groups * o.group_size + o.members + 64,
        Scenario::Pages => 0,
    }) as u64
}

fn failed(v: &serde_json::Value) -> bool {
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    n("lost") > 0 || n("duplicates") > 0 || n("failed") > 0 || n("store_failed") > 0
}

fn main() -> ExitCode {
    let cli = Cli::from(Args::parse());
    let limit = raise_fd_limit();
    // The server and the bench each hold one descriptor per connection.
    let needed = connections_needed(&cli) + 256;
    if needed > limit {
        eprintln!(
            "bubble-bench: this scenario holds {} connections but a process may open only {limit} files here, and the hard limit cannot be raised (no CAP_SYS_RESOURCE): raise it (ulimit -Hn, LimitNOFILE) or ask for fewer connections",
            needed - 256
        );
        return ExitCode::from(2);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bench")
        .build()
        .expect("tokio runtime");
    runtime.block_on(async_main(cli))
}

async fn async_main(cli: Cli) -> ExitCode {
    if cli.scenario == Scenario::Pages {
        return store_pages(&cli).await;
    }
    let mode = match server_mode(&cli) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("bubble-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let scenario_settings = match cli.scenario {
        Scenario::Soak => soak::SERVER_SETTINGS,
        _ => &[],
    };
    let started = match (mode, cli.nodes) {
        (mode, 1) => Server::start(mode, cli.data_dir.clone(), cli.rsa_bits, scenario_settings).await,
        (Mode::Binary(path), nodes) if cli.data_dir.is_none() => {
            Server::start_cluster(path, nodes, cli.rsa_bits, scenario_settings).await
        }
        _ => Err("--nodes runs server binaries on fresh data directories: drop --in-process and --data-dir".into()),
    };
    let server = match started {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bubble-bench: cannot start the server: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "bubble-bench: server pid {} on {} {}, RSA-{} test key, tokens of {} bytes (16-byte user id)",
        server.pid,
        server.tcp,
        server.backends,
        cli.rsa_bits.bits(),
        server.token(&"u".repeat(16)).len()
    );
    let opts = &cli.opts;
    let result = match cli.scenario {
        Scenario::Pairs | Scenario::Smoke => scenarios::pairs(&server, opts).await,
        Scenario::Group => scenarios::groups(&server, opts).await,
        Scenario::Supergroup => scenarios::supergroup(&server, opts).await,
        Scenario::Offline => scenarios::offline(&server, opts).await,
        Scenario::Idle => scenarios::idle(&server, opts).await,
        Scenario::Reconnect => scenarios::reconnect(&server, opts).await,
        Scenario::Sweep => scenarios::sweep(&server, opts).await,
        Scenario::Growth => growth::growth(&server, opts).await,
        Scenario::Soak => soak::soak(&server, opts, cli.sample).await,
        Scenario::Pages => unreachable!("runs without a server: store_pages"),
    };
    let backends = server.backends.clone();
    let nodes = server.pids().len();
    server.stop();
    let mut value = match result {
        Ok(v) => v,
        Err(e) => {
            eprintln!("bubble-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    value["backends"] = serde_json::json!(backends);
    value["rsa_bits"] = serde_json::json!(cli.rsa_bits.bits());
    value["nodes"] = serde_json::json!(nodes);
    println!(
        "{}",
        serde_json::to_string_pretty(&value).unwrap_or_default()
    );
    if std::fs::create_dir_all(&opts.out).is_ok() {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(opts.out.join("results.jsonl"))
        {
            let _ = writeln!(f, "{value}");
        }
    }
    if failed(&value) {
        eprintln!("bubble-bench: messages were lost, duplicated or refused");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// The `pages` scenario: no server, the store on a fresh data directory
/// (or `--data-dir`).
async fn store_pages(cli: &Cli) -> ExitCode {
    let fresh = tempfile::tempdir().expect("a temporary directory");
    let dir = cli
        .data_dir
        .clone()
        .unwrap_or_else(|| fresh.path().to_owned());
    match pages::pages(&cli.opts, &dir).await {
        Ok(v) => {
            println!("{}", serde_json::to_string_pretty(&v).expect("json"));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bubble-bench: pages: {e}");
            ExitCode::FAILURE
        }
    }
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
    fn options_override_the_defaults_and_smoke_is_a_small_pairs_run() {
        let cli = Cli::from(
            Args::try_parse_from([
                "bubble-bench",
                "sweep",
                "--users",
                "8",
                "--rates",
                "10,20",
                "--rsa-bits",
                "2048",
                "--in-process",
            ])
            .unwrap(),
        );
        assert_eq!(cli.scenario, Scenario::Sweep);
        assert_eq!(cli.opts.users, 8);
        assert_eq!(cli.opts.rates, vec![10.0, 20.0]);
        assert_eq!(cli.opts.window, Opts::default().window);
        assert_eq!(cli.rsa_bits, RsaBits::B2048);
        assert!(cli.in_process);
        assert_eq!(cli.nodes, 1, "one node unless told");
        let smoke = Cli::from(Args::try_parse_from(["bubble-bench", "smoke"]).unwrap());
        assert_eq!(smoke.scenario, Scenario::Pairs);
        assert_eq!((smoke.opts.users, smoke.opts.rate), (20, Some(400.0)));
    }

    #[test]
    fn a_soak_lasts_an_hour_sampled_every_ten_seconds_unless_told_otherwise() {
        let soak = Cli::from(Args::try_parse_from(["bubble-bench", "soak"]).unwrap());
        assert_eq!(soak.scenario, Scenario::Soak);
        assert_eq!((soak.opts.duration, soak.sample), (3600.0, 10.0));
        assert_eq!(soak.opts.rate, Some(200.0), "open loop, modest");
        let short = Cli::from(
            Args::try_parse_from([
                "bubble-bench",
                "soak",
                "--duration",
                "300",
                "--sample",
                "5",
                "--members",
                "50",
            ])
            .unwrap(),
        );
        assert_eq!((short.opts.duration, short.sample), (300.0, 5.0));
        assert_eq!(short.opts.members, 50);
    }

    #[test]
    fn a_bad_value_names_its_flag() {
        let err = Args::try_parse_from(["bubble-bench", "pairs", "--users", "many"]).unwrap_err();
        assert!(err.to_string().contains("--users"), "{err}");
        let err =
            Args::try_parse_from(["bubble-bench", "pairs", "--rsa-bits", "4096"]).unwrap_err();
        assert!(err.to_string().contains("--rsa-bits"), "{err}");
        let err = Args::try_parse_from(["bubble-bench", "pairs", "--user", "1"]).unwrap_err();
        assert!(err.to_string().contains("--user"), "{err}");
        assert!(Args::try_parse_from(["bubble-bench", "chess"]).is_err());
        let err = Args::try_parse_from(["bubble-bench", "pairs", "--nodes", "0"]).unwrap_err();
        assert!(err.to_string().contains("--nodes"), "{err}");
        let three =
            Cli::from(Args::try_parse_from(["bubble-bench", "pairs", "--nodes", "3"]).unwrap());
        assert_eq!(three.nodes, 3);
    }
}

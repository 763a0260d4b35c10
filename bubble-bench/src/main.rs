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
//! - [`plot`]: SVG line charts.
//!
//! Every scenario is bounded in time and count and talks only to loopback.
//! Run `bubble-bench --help` for the commands; `docs/benchmarks.md` has the
//! ones used for the published figures.

mod conn;
mod plot;
mod scenarios;
mod server;
mod stats;
mod traffic;

use std::path::PathBuf;
use std::process::ExitCode;

use scenarios::Opts;

use server::{Mode, RsaBits, Server};

const USAGE: &str = "\
usage: bubble-bench SCENARIO [options]

scenarios:
  pairs        1:1 pairs (user 2i <-> 2i+1)          --users --window | --rate, --duration
  group        normal groups, every member sends      --group-size --groups --window | --rate, --duration
  supergroup   one super group, all members online    --members --messages
  offline      receivers offline, then connect + sync --users --messages (per receiver) --window
  idle         hold idle authenticated connections    --connections --concurrency --hold
  reconnect    connect, drop all, resume all          --connections --concurrency
  sweep        open-loop pairs at several loads       --users --rates a,b,c --duration
  smoke        a tiny pairs run (CI): 20 users, 2 s, open loop

options:
  --users N          users (default 100)
  --window N         closed loop: unacked sends per user (default 32)
  --rate R           open loop: total messages per second offered (default: closed loop)
  --duration S       seconds of sending (default 10)
  --group-size N     members per normal group (default 10)
  --groups N         number of normal groups (default 10)
  --members N        super group members (default 10000)
  --messages N       super group: messages sent; offline: messages per receiver (default 20)
  --connections N    idle / reconnect connections (default 10000)
  --concurrency N    handshakes in flight (default 64)
  --sources N        source addresses 127.0.0.2.. (default one per 16000 connections)
  --hold S           idle: seconds to hold (default 5)
  --drain S          after sending, give up on stragglers when none arrived for S seconds
                     (at most 8 x S in all; default 15)
  --rates LIST       sweep: offered loads (default 1000,2000,5000,10000,20000)
  --out DIR          where results.jsonl and SVG plots go (default bench-results)
  --server-bin PATH  the server binary (default: bubble-server next to this binary)
  --in-process       run the server inside the bench (CPU/RSS then include the bench)
  --data-dir DIR     server data directory (default: a fresh temporary one)
  --rsa-bits 2048|3072
                     size of the test server key installed and pinned (default 3072,
                     the server's default); 2048 needs tokens of at most 93 bytes,
                     which the bench's v2 tokens are. A --data-dir that already
                     holds a key keeps it (the bench then pins that key)

The server's backends come from the environment, as for bubble-server:
  BUBBLE_STORE_KIND=sqlite|mysql|memory BUBBLE_STORE_URL=... BUBBLE_SEARCH_KIND=...
  BUBBLE_CACHE_KIND=redis BUBBLE_CACHE_URL=redis://127.0.0.1:6379 ...
Exit status 1 when any message was lost, duplicated or refused.";

struct Cli {
    scenario: String,
    opts: Opts,
    server_bin: Option<PathBuf>,
    in_process: bool,
    data_dir: Option<PathBuf>,
    rsa_bits: RsaBits,
}

fn parse(args: Vec<String>) -> Result<Cli, String> {
    let mut it = args.into_iter();
    let scenario = it.next().ok_or("no scenario given")?;
    if scenario == "--help" || scenario == "-h" {
        return Err(String::new());
    }
    let mut cli = Cli {
        scenario,
        opts: Opts::default(),
        server_bin: None,
        in_process: false,
        data_dir: None,
        rsa_bits: RsaBits::default(),
    };
    while let Some(flag) = it.next() {
        if flag == "--in-process" {
            cli.in_process = true;
            continue;
        }
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| -> Result<f64, String> {
            v.parse::<f64>()
                .map_err(|_| format!("{flag}: {v:?} is not a number"))
        };
        let o = &mut cli.opts;
        match flag.as_str() {
            "--users" => o.users = num(&value)? as usize,
            "--window" => o.window = num(&value)? as usize,
            "--rate" => o.rate = Some(num(&value)?),
            "--duration" => o.duration = num(&value)?,
            "--group-size" => o.group_size = num(&value)? as usize,
            "--groups" => o.groups = num(&value)? as usize,
            "--members" => o.members = num(&value)? as usize,
            "--messages" => o.messages = num(&value)? as u64,
            "--connections" => o.connections = num(&value)? as usize,
            "--concurrency" => o.concurrency = num(&value)? as usize,
            "--sources" => o.sources = Some(num(&value)? as usize),
            "--hold" => o.hold = num(&value)?,
            "--drain" => o.drain = num(&value)?,
            "--rates" => {
                o.rates = value
                    .split(',')
                    .map(|r| num(r.trim()))
                    .collect::<Result<_, _>>()?
            }
            "--out" => o.out = PathBuf::from(value),
            "--server-bin" => cli.server_bin = Some(PathBuf::from(value)),
            "--data-dir" => cli.data_dir = Some(PathBuf::from(value)),
            "--rsa-bits" => cli.rsa_bits = RsaBits::parse(&value)?,
            other => return Err(format!("unknown option {other}")),
        }
    }
    if cli.scenario == "smoke" {
        cli.scenario = "pairs".into();
        let o = &mut cli.opts;
        o.users = 20;
        o.rate = Some(400.0);
        o.duration = 2.0;
        o.drain = 10.0;
        o.concurrency = 8;
    }
    Ok(cli)
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
    (match cli.scenario.as_str() {
        "idle" | "reconnect" => o.connections,
        "supergroup" => o.members,
        "group" => o.group_size * o.groups,
        "offline" => o.users * 2,
        _ => o.users,
    }) as u64
}

fn failed(v: &serde_json::Value) -> bool {
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    n("lost") > 0 || n("duplicates") > 0 || n("failed") > 0 || n("store_failed") > 0
}

fn main() -> ExitCode {
    let cli = match parse(std::env::args().skip(1).collect()) {
        Ok(c) => c,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("bubble-bench: {e}\n");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(if e.is_empty() { 0 } else { 2 });
        }
    };
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
    let mode = match server_mode(&cli) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("bubble-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let server = match Server::start(mode, cli.data_dir.clone(), cli.rsa_bits).await {
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
    let result = match cli.scenario.as_str() {
        "pairs" => scenarios::pairs(&server, opts).await,
        "group" => scenarios::groups(&server, opts).await,
        "supergroup" => scenarios::supergroup(&server, opts).await,
        "offline" => scenarios::offline(&server, opts).await,
        "idle" => scenarios::idle(&server, opts).await,
        "reconnect" => scenarios::reconnect(&server, opts).await,
        "sweep" => scenarios::sweep(&server, opts).await,
        other => Err(format!("unknown scenario {other:?} (see --help)")),
    };
    let backends = server.backends.clone();
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

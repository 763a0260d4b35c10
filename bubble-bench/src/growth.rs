//! Does sending cost more as the store fills? Rounds of closed-loop 1:1
//! pairs until `--total` messages are stored on one server, each round
//! followed by a short open-loop probe at `--rate` (latency at a fixed load
//! on a store of that size). Every round reports its msgs/s, the server's
//! CPU per message and the probe's p99 and max; the run ends with the last
//! round's throughput as a share of the first's, and three plots.
//!
//! Each round connects fresh users (the store grows; per-owner inboxes stay
//! short), so what this measures is the cost of the store's total size:
//! B-tree depth, page cache misses, index segments, in-memory maps.

use serde_json::{Value, json};

use crate::plot::{Scale, Series, line_chart};
use crate::scenarios::{Opts, pairs};
use crate::server::Server;

/// Seconds of each round's open-loop probe.
const PROBE_SECS: f64 = 5.0;

/// One round's figures, as the plots and the summary need them.
struct Round {
    stored: f64,
    per_sec: f64,
    cpu_us: f64,
    probe_p99: f64,
    probe_max: f64,
}

/// Runs rounds until `opts.total` messages were acknowledged.
pub async fn growth(server: &Server, opts: &Opts) -> Result<Value, String> {
    let probe_rate = opts.rate.unwrap_or(1000.0);
    let mut stored = 0u64;
    let (mut lost, mut duplicates) = (0u64, 0u64);
    let mut rows = Vec::new();
    let mut rounds: Vec<Round> = Vec::new();
    while stored < opts.total {
        let mut fill = opts.clone();
        fill.rate = None;
        let f = pairs(server, &fill).await?;
        stored += f["acked"].as_u64().unwrap_or(0);
        let mut probe = opts.clone();
        probe.rate = Some(probe_rate);
        probe.duration = PROBE_SECS;
        let p = pairs(server, &probe).await?;
        stored += p["acked"].as_u64().unwrap_or(0);
        for v in [&f, &p] {
            lost += v["lost"].as_u64().unwrap_or(0);
            duplicates += v["duplicates"].as_u64().unwrap_or(0);
        }
        let round = Round {
            stored: stored as f64,
            per_sec: f["acked_per_sec"].as_f64().unwrap_or(0.0),
            cpu_us: f["server_cpu_us_per_ack"].as_f64().unwrap_or(0.0),
            probe_p99: p["e2e"]["p99_ms"].as_f64().unwrap_or(0.0),
            probe_max: p["e2e"]["max_ms"].as_f64().unwrap_or(0.0),
        };
        eprintln!(
            "bubble-bench: growth round {}: {} stored, {:.0} msgs/s, {:.1} us CPU/msg, \
             fill p99 {} ms max {} ms; probe at {probe_rate}/s p99 {:.2} ms max {:.2} ms, RSS {} MiB",
            rounds.len() + 1,
            stored,
            round.per_sec,
            round.cpu_us,
            f["e2e"]["p99_ms"],
            f["e2e"]["max_ms"],
            round.probe_p99,
            round.probe_max,
            f["server_rss_mib"],
        );
        rows.push(json!({
            "round": rounds.len() + 1,
            "stored_after": stored,
            "fill": f,
            "probe": p,
        }));
        rounds.push(round);
    }
    let first = rounds.first().map_or(0.0, |r| r.per_sec);
    let last = rounds.last().map_or(0.0, |r| r.per_sec);
    let plots = plot(opts, &rounds, probe_rate)?;
    Ok(json!({
        "scenario": "growth",
        "users": opts.users,
        "round_secs": opts.duration,
        "probe_rate": probe_rate,
        "total": stored,
        "rounds": rows,
        "last_share_of_first": if first > 0.0 { (last / first * 1000.0).round() / 1000.0 } else { 0.0 },
        "plots": plots,
        "lost": lost,
        "duplicates": duplicates,
    }))
}

fn plot(opts: &Opts, rounds: &[Round], probe_rate: f64) -> Result<Vec<String>, String> {
    std::fs::create_dir_all(&opts.out).map_err(|e| e.to_string())?;
    let series = |name: &str, y: fn(&Round) -> f64| Series {
        name: name.into(),
        points: rounds.iter().map(|r| (r.stored, y(r))).collect(),
    };
    let charts = [
        (
            "growth-throughput.svg",
            line_chart(
                "1:1 closed loop as the store fills",
                "messages stored",
                "acknowledged messages per second",
                Scale::Linear,
                &[series("msgs/s", |r| r.per_sec)],
            ),
        ),
        (
            "growth-cpu.svg",
            line_chart(
                "server CPU per message as the store fills",
                "messages stored",
                "server CPU per message (us)",
                Scale::Linear,
                &[series("CPU us/msg", |r| r.cpu_us)],
            ),
        ),
        (
            "growth-latency.svg",
            line_chart(
                &format!("end-to-end latency at {probe_rate}/s open loop as the store fills"),
                "messages stored",
                "latency (ms, log scale)",
                Scale::Log,
                &[
                    series("p99", |r| r.probe_p99),
                    series("max", |r| r.probe_max),
                ],
            ),
        ),
    ];
    let mut paths = Vec::new();
    for (name, svg) in charts {
        let path = opts.out.join(name);
        std::fs::write(&path, svg).map_err(|e| e.to_string())?;
        paths.push(path.display().to_string());
    }
    Ok(paths)
}

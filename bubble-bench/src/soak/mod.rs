//! The soak: mixed traffic against one server for an hour (by default),
//! sampling the server's memory, descriptors, CPU and the 1:1 latency
//! every interval, and checking at the end that every acknowledged message
//! was delivered exactly once.
//!
//! - [`client`]: the simulated users (1:1 pairs, normal groups, the super
//!   group, slow consumers and the flooders that fill them), reconnecting
//!   and syncing as a real client does.
//! - [`abuse`]: clients that misbehave on purpose.
//! - [`sample`]: one CSV row per interval, and the flatness verdict.

pub mod abuse;
pub mod client;
pub mod sample;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::conn;
use crate::plot::{Scale, Series, line_chart};
use crate::scenarios::Opts;
use crate::server::{self, Server};
use crate::stats::{Latency, now_ns};
use abuse::{Abuse, Tallies};
use client::{Client, Control, Counters, Ctx, Kind, Phase, Spec};
use sample::{FD_THRESHOLD, RSS_THRESHOLD, Row, Trend};

/// The server settings of a soak, on top of the bench's: the WebSocket
/// gate on (abusive WebSocket clients), and production heartbeat and
/// handshake timeouts (abusive clients must be closed by them, and every
/// soak client pings).
pub const SERVER_SETTINGS: &[(&str, &str)] = &[
    ("BUBBLE_GATE_WS", "127.0.0.1:0"),
    ("BUBBLE_GATE_HEARTBEAT_TIMEOUT_MS", "90000"),
    ("BUBBLE_GATE_HANDSHAKE_TIMEOUT_MS", "10000"),
];

/// The traffic of a soak. Modest on purpose: the server shares two cores
/// with the bench, and the point is how it holds up over time, not how
/// much it carries.
#[derive(Debug, Clone)]
pub struct Shape {
    /// Seconds of traffic.
    pub duration: f64,
    /// Seconds between samples.
    pub sample: f64,
    /// 1:1 users (pairs of them).
    pub pair_users: usize,
    /// 1:1 messages a second, all pairs together.
    pub pair_rate: f64,
    /// Normal groups.
    pub groups: usize,
    /// Members of each.
    pub group_size: usize,
    /// Messages a second each group member sends.
    pub group_member_rate: f64,
    /// Online super group members.
    pub super_members: usize,
    /// Super group messages a second.
    pub super_rate: f64,
    /// Slow consumers (each with its own flooder).
    pub slow: usize,
    /// Messages a second each flooder sends.
    pub flood_rate: f64,
    /// Their size in bytes.
    pub flood_size: usize,
    /// `SO_RCVBUF` of a slow consumer.
    pub slow_recv_buffer: u32,
    /// How long a slow consumer stops reading.
    pub stall: Duration,
    /// Every this long one slow consumer stalls (they take turns).
    pub stall_every: Duration,
    /// A reconnect storm every this long.
    pub storm_every: Duration,
    /// The share of 1:1 and group users each storm drops.
    pub storm_fraction: f64,
}

impl Shape {
    /// The soak's shape from the command line (the soak's own defaults are
    /// set in `main`).
    pub fn from_opts(o: &Opts, sample: f64) -> Shape {
        Shape {
            duration: o.duration,
            sample: sample.max(1.0),
            pair_users: o.users.max(2) & !1,
            pair_rate: o.rate.unwrap_or(200.0),
            groups: o.groups,
            group_size: o.group_size.max(2),
            group_member_rate: 0.2,
            super_members: o.members.max(1),
            super_rate: 0.5,
            slow: 4,
            flood_rate: 10.0,
            flood_size: 16 * 1024,
            slow_recv_buffer: 4096,
            stall: Duration::from_secs(45),
            stall_every: Duration::from_secs(30),
            storm_every: Duration::from_secs(60),
            storm_fraction: 0.25,
        }
    }

    fn json(&self) -> Value {
        json!({
            "pair_users": self.pair_users,
            "pair_rate": self.pair_rate,
            "groups": self.groups,
            "group_size": self.group_size,
            "group_member_rate": self.group_member_rate,
            "super_members": self.super_members,
            "super_rate": self.super_rate,
            "slow_consumers": self.slow,
            "flood_rate_each": self.flood_rate,
            "flood_bytes": self.flood_size,
            "slow_recv_buffer": self.slow_recv_buffer,
            "stall_secs": self.stall.as_secs(),
            "one_stall_every_secs": self.stall_every.as_secs(),
            "storm_every_secs": self.storm_every.as_secs(),
            "storm_fraction": self.storm_fraction,
        })
    }
}

/// The users of a soak, and the groups to create first.
struct Cast {
    specs: Vec<Spec>,
    /// (group id, members, super?)
    groups: Vec<(String, Vec<String>, bool)>,
}

fn cast(server: &Server, s: &Shape, tag: u64) -> Cast {
    let mut specs: Vec<Spec> = Vec::new();
    let mut groups = Vec::new();
    let mut add = |user: String, kind, to, rate, size, receivers| {
        let idx = specs.len() as u32;
        specs.push(Spec {
            idx,
            token: server.token(&user),
            user,
            kind,
            to,
            rate,
            size,
            receivers,
        });
        idx
    };
    let base = 0u32;
    for i in 0..s.pair_users {
        let partner = i ^ 1;
        add(
            format!("k{tag}p{i}"),
            Kind::Pair,
            Some(conn::direct(&format!("k{tag}p{partner}"))),
            s.pair_rate / s.pair_users as f64,
            0,
            vec![base + partner as u32],
        );
    }
    for g in 0..s.groups {
        let id = format!("k{tag}g{g}");
        let first = s.pair_users + g * s.group_size;
        let members: Vec<String> = (0..s.group_size)
            .map(|m| format!("k{tag}g{g}m{m}"))
            .collect();
        for (m, user) in members.iter().enumerate() {
            let me = (first + m) as u32;
            let others = (first..first + s.group_size)
                .map(|i| i as u32)
                .filter(|i| *i != me)
                .collect();
            add(
                user.clone(),
                Kind::Group,
                Some(conn::group(&id)),
                s.group_member_rate,
                0,
                others,
            );
        }
        groups.push((id, members, false));
    }
    let super_id = format!("k{tag}super");
    let first_member = (s.pair_users + s.groups * s.group_size) as u32;
    let last_member = first_member + s.super_members as u32;
    let mut super_users = vec![format!("k{tag}ss")];
    for m in 0..s.super_members {
        let user = format!("k{tag}sm{m}");
        super_users.push(user.clone());
        add(user, Kind::SuperMember, None, 0.0, 0, Vec::new());
    }
    let members: Vec<u32> = (first_member..last_member).collect();
    add(
        super_users[0].clone(),
        Kind::SuperSender,
        Some(conn::group(&super_id)),
        s.super_rate,
        0,
        members,
    );
    groups.push((super_id, super_users, true));
    for k in 0..s.slow {
        let slow_user = format!("k{tag}slow{k}");
        let slow = add(slow_user.clone(), Kind::Slow, None, 0.0, 0, Vec::new());
        add(
            format!("k{tag}flood{k}"),
            Kind::Flooder,
            Some(conn::direct(&slow_user)),
            s.flood_rate,
            s.flood_size,
            vec![slow],
        );
    }
    Cast { specs, groups }
}

/// What the audit found.
#[derive(Default)]
struct Audit {
    /// Deliveries owed to inboxes (1:1, groups, flooders) by acked messages.
    inbox_expected: u64,
    /// Of those, never received by push or sync.
    inbox_lost: u64,
    /// Deliveries owed to online super group members.
    super_expected: u64,
    /// Of those, never pushed.
    super_lost: u64,
    /// Messages received under two versions.
    duplicates: u64,
}

fn audit(clients: &[Client]) -> Audit {
    let mut a = Audit::default();
    for c in clients {
        let to_super = c.spec.kind == Kind::SuperSender;
        for seq in 0..c.sent() {
            if !c.acked.contains(c.spec.idx, seq) {
                continue;
            }
            for r in &c.spec.receivers {
                let Some(receiver) = clients.get(*r as usize) else {
                    continue;
                };
                let got = receiver.inbox.seen.contains(c.spec.idx, seq);
                let (expected, lost) = if to_super {
                    (&mut a.super_expected, &mut a.super_lost)
                } else {
                    (&mut a.inbox_expected, &mut a.inbox_lost)
                };
                *expected += 1;
                *lost += u64::from(!got);
            }
        }
        a.duplicates += c.inbox.duplicates;
    }
    a
}

/// Picks `k` of `n` indices, different each storm (a small LCG: the bench
/// has no randomness crate, and storms need no quality).
fn pick(n: usize, k: usize, round: u64) -> Vec<usize> {
    let mut x = round
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut chosen = std::collections::BTreeSet::new();
    while chosen.len() < k.min(n) {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        chosen.insert((x >> 33) as usize % n);
    }
    chosen.into_iter().collect()
}

/// The server's `bubble_connections` gauge, from `/metrics`.
async fn server_connections(server: &Server) -> Option<u64> {
    let (status, body) =
        bubble_client::transport::http_request(&server.http, "GET", "/metrics", None, None)
            .await
            .ok()?;
    if status != 200 {
        return None;
    }
    let text = String::from_utf8_lossy(&body);
    text.lines()
        .find_map(|l| l.strip_prefix("bubble_connections "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

fn round(v: f64, places: i32) -> f64 {
    let m = 10f64.powi(places);
    (v * m).round() / m
}

fn trend_json(t: Option<Trend>) -> Value {
    match t {
        Some(t) => json!({
            "first_window_mean": round(t.first_mean, 2),
            "last_window_mean": round(t.last_mean, 2),
            "max": round(t.max, 2),
            "last_third_growth": round(t.last_third_growth, 2),
            "allowed_growth": round(t.allowed_growth, 2),
            "flat": t.flat,
        }),
        None => Value::Null,
    }
}

/// The soak: see the module doc.
pub async fn soak(server: &Server, opts: &Opts, sample_secs: f64) -> Result<Value, String> {
    let shape = Shape::from_opts(opts, sample_secs);
    let ws = server
        .ws
        .ok_or("the soak needs the WebSocket gate; BUBBLE_GATE_WS must not be empty")?;
    let tag = now_ns() % 1_000_000;
    let Cast { specs, groups } = cast(server, &shape, tag);
    for (id, members, super_group) in &groups {
        server.create_group(id, members, *super_group).await?;
    }
    let n = specs.len();
    let target = server.target();
    let (phase_tx, phase_rx) = watch::channel(Phase::Warmup);
    let ctx = Arc::new(Ctx {
        slow_target: conn::Target {
            recv_buffer: Some(shape.slow_recv_buffer),
            ..target.clone()
        },
        target: target.clone(),
        sources: crate::traffic::sources_for(n),
        counters: Counters::default(),
        pair_latency: std::sync::Mutex::new(Latency::new()),
        phase: phase_rx.clone(),
        last_words: Default::default(),
    });
    let kinds: Vec<Kind> = specs.iter().map(|s| s.kind).collect();
    let mut controls = Vec::with_capacity(n);
    let mut handles = Vec::with_capacity(n);
    let connecting = Instant::now();
    for spec in specs {
        let (tx, rx) = mpsc::channel(4);
        controls.push(tx);
        handles.push(tokio::spawn(Client::new(spec).run(ctx.clone(), rx)));
        // Do not open hundreds of full handshakes in one burst.
        if handles.len() % 32 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    while Counters::get(&ctx.counters.ready) < n as u64 {
        if connecting.elapsed() > Duration::from_secs(120) {
            return Err(format!(
                "only {} of {n} soak users connected in 120 s",
                Counters::get(&ctx.counters.ready)
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "bubble-bench: soak: {n} users connected in {:.1} s; traffic for {} s, a sample every {} s",
        connecting.elapsed().as_secs_f64(),
        shape.duration,
        shape.sample
    );

    // Abusive clients, storms and stalls.
    let tallies: Arc<Tallies> = Arc::new(Abuse::ALL.iter().map(|_| Default::default()).collect());
    let abuser = server.token(&format!("k{tag}abuser"));
    let target_arc = Arc::new(target.clone());
    let mut background = Vec::new();
    for kind in Abuse::ALL {
        background.push(tokio::spawn(abuse::run(
            kind,
            target_arc.clone(),
            ws,
            abuser.clone(),
            tallies.clone(),
            phase_rx.clone(),
        )));
    }
    let stormable: Vec<usize> = (0..n)
        .filter(|i| matches!(kinds[*i], Kind::Pair | Kind::Group))
        .collect();
    let slow: Vec<usize> = (0..n).filter(|i| kinds[*i] == Kind::Slow).collect();
    let storms = Arc::new(std::sync::atomic::AtomicU64::new(0));
    {
        let (controls, mut phase, storms) = (controls.clone(), phase_rx.clone(), storms.clone());
        let (every, k) = (
            shape.storm_every,
            (stormable.len() as f64 * shape.storm_fraction).round() as usize,
        );
        background.push(tokio::spawn(async move {
            let mut round = 0u64;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = phase.wait_for(|p| *p >= Phase::Quiesce) => return,
                }
                round += 1;
                storms.fetch_add(1, Ordering::Relaxed);
                for i in pick(stormable.len(), k, round) {
                    let _ = controls[stormable[i]].try_send(Control::Drop);
                }
            }
        }));
    }
    if !slow.is_empty() {
        let (controls, mut phase) = (controls.clone(), phase_rx.clone());
        let (every, stall) = (shape.stall_every, shape.stall);
        background.push(tokio::spawn(async move {
            for turn in 0.. {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = phase.wait_for(|p| *p >= Phase::Quiesce) => return,
                }
                let _ = controls[slow[turn % slow.len()]].try_send(Control::Stall(stall));
            }
        }));
    }

    // Sampling.
    std::fs::create_dir_all(&opts.out).map_err(|e| e.to_string())?;
    let csv_path = opts.out.join("soak.csv");
    let mut csv = std::fs::File::create(&csv_path).map_err(|e| e.to_string())?;
    writeln!(csv, "{}", Row::HEADER).map_err(|e| e.to_string())?;
    let _ = phase_tx.send(Phase::Run);
    let started = tokio::time::Instant::now();
    let pid = server.pid;
    let mut rows: Vec<Row> = Vec::new();
    let mut total_latency = Latency::new();
    let mut last_usage = server.usage();
    let mut last_wall = Instant::now();
    let c = &ctx.counters;
    let totals = || {
        (
            Counters::get(&c.acked),
            Counters::get(&c.pushed) + Counters::get(&c.synced),
            Counters::get(&c.reconnects),
        )
    };
    let mut last_totals = totals();
    let interval = Duration::from_secs_f64(shape.sample);
    let mut k = 1u32;
    loop {
        let at = started + interval * k;
        if at.duration_since(started).as_secs_f64() > shape.duration + 1e-6 {
            break;
        }
        tokio::time::sleep_until(at).await;
        k += 1;
        let usage = server.usage();
        let wall = Instant::now();
        let cpu_pct = (usage.cpu_secs - last_usage.cpu_secs)
            / wall.duration_since(last_wall).as_secs_f64().max(1e-9)
            * 100.0;
        (last_usage, last_wall) = (usage, wall);
        let h = std::mem::take(&mut *ctx.pair_latency.lock().map_err(|e| e.to_string())?);
        let p = h.percentiles();
        total_latency.add(&h);
        let now_totals = totals();
        let row = Row {
            t: started.elapsed().as_secs_f64(),
            rss_mib: usage.rss as f64 / (1024.0 * 1024.0),
            rss_anon_mib: std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|s| server::status_kib(&s, "RssAnon:"))
                .unwrap_or(0) as f64
                / 1024.0,
            fds: server::open_fds(pid).unwrap_or(0),
            cpu_pct,
            p50_ms: p.p50,
            p99_ms: p.p99,
            max_ms: p.max,
            timed: p.count,
            acked: now_totals.0 - last_totals.0,
            delivered: now_totals.1 - last_totals.1,
            reconnects: now_totals.2 - last_totals.2,
            server_connections: server_connections(server).await,
        };
        last_totals = now_totals;
        let _ = writeln!(csv, "{}", row.csv());
        let _ = csv.flush();
        rows.push(row);
        if rows.len().is_multiple_of(30) || rows.len() == 3 {
            eprintln!(
                "bubble-bench: soak: {:.0} s: RSS {:.1} MiB, {} fds, CPU {:.0}%, 1:1 p50 {:.2} ms p99 {:.2} ms, {} acked/s",
                row.t,
                row.rss_mib,
                row.fds,
                row.cpu_pct,
                row.p50_ms,
                row.p99_ms,
                (row.acked as f64 / shape.sample).round()
            );
            plots(&opts.out, &rows).map_err(|e| e.to_string())?;
        }
    }
    let traffic_secs = started.elapsed().as_secs_f64();

    // Quiesce: no more sends; wait for every answer and push to arrive.
    let _ = phase_tx.send(Phase::Quiesce);
    let quiet = Instant::now();
    let mut last = (u64::MAX, u64::MAX);
    let mut steady = Instant::now();
    while quiet.elapsed() < Duration::from_secs(30) {
        let answered =
            Counters::get(&c.acked) + Counters::get(&c.failed) + Counters::get(&c.unanswered);
        let now = (answered, Counters::get(&c.pushed));
        if now != last {
            (last, steady) = (now, Instant::now());
        } else if answered >= Counters::get(&c.sent) && steady.elapsed() > Duration::from_secs(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for b in background {
        let _ = b.await;
    }
    let _ = phase_tx.send(Phase::Stop);
    let mut clients = Vec::with_capacity(n);
    let mut unfinished = 0;
    for h in handles {
        match tokio::time::timeout(Duration::from_secs(120), h).await {
            Ok(Ok(c)) => clients.push(c),
            _ => unfinished += 1,
        }
    }
    if unfinished > 0 {
        return Err(format!(
            "{unfinished} soak users did not finish their last sync in 120 s"
        ));
    }
    let a = audit(&clients);
    plots(&opts.out, &rows).map_err(|e| e.to_string())?;

    let series =
        |f: fn(&Row) -> f64| -> Vec<(f64, f64)> { rows.iter().map(|r| (r.t, f(r))).collect() };
    let window = sample::window_for(traffic_secs);
    let rss = Trend::of(&series(|r| r.rss_mib), window, RSS_THRESHOLD);
    let rss_anon = Trend::of(&series(|r| r.rss_anon_mib), window, RSS_THRESHOLD);
    let fds = Trend::of(&series(|r| r.fds as f64), window, FD_THRESHOLD);
    let verdict = match (rss, fds) {
        (Some(r), Some(f)) if r.flat && f.flat => "flat".to_string(),
        (Some(r), Some(f)) => format!(
            "growing:{}{}",
            if r.flat { "" } else { " rss" },
            if f.flat { "" } else { " fds" }
        ),
        _ => "too short to judge".to_string(),
    };
    let cpu: Vec<f64> = rows.iter().map(|r| r.cpu_pct).collect();
    let worst_p99 = rows.iter().map(|r| r.p99_ms).fold(0.0, f64::max);
    let abusive: serde_json::Map<String, Value> = Abuse::ALL
        .iter()
        .zip(tallies.iter())
        .map(|(kind, t)| {
            let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
            (
                kind.name().to_string(),
                json!({
                    "opened": g(&t.opened),
                    "closed_by_server": g(&t.closed_by_server),
                    "outlived_deadline": g(&t.outlived),
                    "failed": g(&t.failed),
                    "slowest_close_ms": g(&t.slowest_close_ms),
                }),
            )
        })
        .collect();
    let plot_paths: Vec<String> = PLOTS
        .iter()
        .map(|p| opts.out.join(p).display().to_string())
        .collect();
    let mut v = json!({
        "scenario": "soak",
        "duration_secs": round(traffic_secs, 1),
        "sample_secs": shape.sample,
        "samples": rows.len(),
        "users": n,
        "shape": shape.json(),
        "window_secs": window,
        "server_rss_mib": trend_json(rss),
        "server_fds": trend_json(fds),
        "verdict": verdict,
        "flat_means": format!(
            "growth over the last third (least-squares slope x its length) at most {}% of its mean or {} MiB (RSS), {}% or {} descriptors",
            RSS_THRESHOLD.relative * 100.0, RSS_THRESHOLD.absolute,
            FD_THRESHOLD.relative * 100.0, FD_THRESHOLD.absolute
        ),
        "server_cpu_pct": {
            "mean": round(cpu.iter().sum::<f64>() / cpu.len().max(1) as f64, 1),
            "max": round(cpu.iter().copied().fold(0.0, f64::max), 1),
        },
        "e2e_1to1": total_latency.percentiles().json(),
        "e2e_1to1_worst_interval_p99_ms": worst_p99,
        "sent": Counters::get(&c.sent),
        "acked": Counters::get(&c.acked),
        "failed": Counters::get(&c.failed),
        "unanswered_at_a_drop": Counters::get(&c.unanswered),
        "expected": a.inbox_expected + a.super_expected,
        "lost": a.inbox_lost + a.super_lost,
        "duplicates": a.duplicates,
        "inbox": {"expected": a.inbox_expected, "lost": a.inbox_lost},
        "super_group": {"expected": a.super_expected, "lost": a.super_lost},
        "delivered_by_push": Counters::get(&c.pushed),
        "delivered_by_sync": Counters::get(&c.synced),
        "received_again_by_sync": Counters::get(&c.redelivered),
        "reconnects": Counters::get(&c.reconnects),
        "resumed": Counters::get(&c.resumed),
        "resume_refused": Counters::get(&c.resume_refused),
        "connect_failed": Counters::get(&c.connect_failed),
        "sync_failed": Counters::get(&c.sync_failed),
        "closed_by_server": Counters::get(&c.closed_by_server),
        "storms": storms.load(Ordering::Relaxed),
        "storm_drops": Counters::get(&c.storm_drops),
        "slow_consumers": {
            "stalls": Counters::get(&c.stalls),
            "reset_by_server": Counters::get(&c.stall_reset),
            "still_open_after_stall": Counters::get(&c.stall_survived),
        },
        "server_last_words": ctx.last_words.lock().map(|w| json!(*w)).unwrap_or(Value::Null),
        "abusive": abusive,
        "csv": csv_path.display().to_string(),
        "plots": plot_paths,
        "server_includes_bench": server.in_process,
        "load_avg": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim().to_string(),
    });
    // Apart: one json! this long reaches the macro's recursion limit.
    v["server_rss_anon_mib"] = trend_json(rss_anon);
    Ok(v)
}

/// The charts of a soak.
const PLOTS: [&str; 4] = [
    "soak-rss.svg",
    "soak-fds.svg",
    "soak-cpu.svg",
    "soak-latency.svg",
];

/// The four charts of a soak, from its rows so far.
fn plots(out: &std::path::Path, rows: &[Row]) -> std::io::Result<()> {
    let minutes = |f: fn(&Row) -> f64| -> Vec<(f64, f64)> {
        rows.iter().map(|r| (r.t / 60.0, f(r))).collect()
    };
    let charts = [
        (
            "soak-rss.svg",
            "Server resident memory during the soak",
            "server RSS (MiB)",
            Scale::Linear,
            vec![
                Series {
                    name: "RSS".into(),
                    points: minutes(|r| r.rss_mib),
                },
                Series {
                    name: "of it anonymous".into(),
                    points: minutes(|r| r.rss_anon_mib),
                },
            ],
        ),
        (
            "soak-fds.svg",
            "Server descriptors and connections during the soak",
            "count",
            Scale::Linear,
            vec![
                Series {
                    name: "open fds".into(),
                    points: minutes(|r| r.fds as f64),
                },
                Series {
                    name: "connections".into(),
                    points: minutes(|r| r.server_connections.unwrap_or(0) as f64),
                },
            ],
        ),
        (
            "soak-cpu.svg",
            "Server CPU during the soak",
            "% of one core",
            Scale::Linear,
            vec![Series {
                name: "CPU".into(),
                points: minutes(|r| r.cpu_pct),
            }],
        ),
        (
            "soak-latency.svg",
            "1:1 end-to-end latency per interval during the soak",
            "ms (log scale)",
            Scale::Log,
            vec![
                Series {
                    name: "p50".into(),
                    points: minutes(|r| r.p50_ms),
                },
                Series {
                    name: "p99".into(),
                    points: minutes(|r| r.p99_ms),
                },
            ],
        ),
    ];
    for (file, title, y, scale, series) in charts {
        let svg = line_chart(title, "minutes", y, scale, &series);
        std::fs::write(out.join(file), svg)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storm_picks_distinct_users_and_others_next_time() {
        let a = pick(100, 25, 1);
        assert_eq!(a.len(), 25);
        assert!(a.iter().all(|i| *i < 100));
        assert_ne!(a, pick(100, 25, 2));
        assert_eq!(pick(3, 10, 1), vec![0, 1, 2], "never more than there are");
    }
}

//! The scenarios: each sets up users (and groups), drives the server, and
//! returns one JSON object of results.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::conn::{self, Established};
use crate::plot::{Scale, Series, line_chart};
use crate::server::{Server, Usage};
use crate::stats::Latency;
use crate::traffic::{self, Load, Outcome, Participant};

/// Every knob of every scenario (each scenario reads the ones it uses).
#[derive(Debug, Clone)]
pub struct Opts {
    /// Users taking part (pairs, offline receivers).
    pub users: usize,
    /// Closed loop: unacked sends per user.
    pub window: usize,
    /// Open loop: total offered messages per second (None: closed loop).
    pub rate: Option<f64>,
    /// Seconds of sending.
    pub duration: f64,
    /// Members of each normal group.
    pub group_size: usize,
    /// Number of normal groups.
    pub groups: usize,
    /// Members of the super group.
    pub members: usize,
    /// Messages (super group: sent one by one; offline: per receiver).
    pub messages: u64,
    /// Connections (idle, reconnect).
    pub connections: usize,
    /// Handshakes in flight at once.
    pub concurrency: usize,
    /// Source addresses (None: one per 16,000 connections).
    pub sources: Option<usize>,
    /// Seconds to hold idle connections.
    pub hold: f64,
    /// Seconds to wait for stragglers after sending stops.
    pub drain: f64,
    /// Offered loads of the sweep (total messages per second).
    pub rates: Vec<f64>,
    /// Growth: messages to store before stopping.
    pub total: u64,
    /// Where plots go.
    pub out: PathBuf,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            users: 100,
            window: 32,
            rate: None,
            duration: 10.0,
            group_size: 10,
            groups: 10,
            members: 10_000,
            messages: 20,
            connections: 10_000,
            concurrency: 64,
            sources: None,
            hold: 5.0,
            drain: 15.0,
            rates: vec![1000.0, 2000.0, 5000.0, 10_000.0, 20_000.0],
            total: 5_000_000,
            out: PathBuf::from("bench-results"),
        }
    }
}

impl Opts {
    fn load(&self, senders: usize) -> Load {
        match self.rate {
            Some(total) => Load::Open {
                per_user: total / senders.max(1) as f64,
            },
            None => Load::Closed {
                window: self.window,
            },
        }
    }

    fn sources(&self, connections: usize) -> usize {
        self.sources
            .unwrap_or_else(|| traffic::sources_for(connections))
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn round(v: f64, places: i32) -> f64 {
    let m = 10f64.powi(places);
    (v * m).round() / m
}

fn machine_load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Common fields of a traffic result.
fn traffic_json(
    server: &Server,
    o: &Outcome,
    before: Usage,
    after: Usage,
    deliveries_label: &str,
) -> Value {
    let cpu = after.cpu_secs - before.cpu_secs;
    let delivered = o.report.seen.unique;
    let errors: serde_json::Map<String, Value> = o
        .report
        .errors
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({
        "send_secs": round(o.send_secs, 2),
        "sent": o.sent,
        "acked": o.acked,
        "failed": o.failed,
        "acked_per_sec": round(o.acked_per_sec(), 0),
        deliveries_label: delivered,
        format!("{deliveries_label}_per_sec"): round(o.delivered_per_sec(), 0),
        "expected": o.expected,
        "lost": o.lost(),
        "duplicates": o.report.seen.duplicates,
        "gaps": o.report.gaps,
        "closed_by_server": o.report.closed,
        "errors": errors,
        "drain_timed_out": o.drain_timed_out,
        "e2e": o.report.e2e.percentiles().json(),
        "ack": o.report.ack.percentiles().json(),
        "send_lag": o.send_lag.percentiles().json(),
        "server_cpu_secs": round(cpu, 3),
        "server_cpu_us_per_delivery": if delivered > 0 { round(cpu * 1e6 / delivered as f64, 2) } else { 0.0 },
        "server_cpu_us_per_ack": if o.acked > 0 { round(cpu * 1e6 / o.acked as f64, 2) } else { 0.0 },
        "server_cores_busy": round(cpu / ((o.last_delivery_ns.max(o.last_ack_ns).saturating_sub(o.start_ns)) as f64 / 1e9).max(1e-9), 2),
        "server_rss_mib": round(mib(after.rss), 1),
        "server_includes_bench": server.in_process,
        "load_avg": machine_load(),
    })
}

/// The bench's own CPU per delivery over a run (its share of the machine).
fn bench_cpu(v: &mut Value, before: Usage, delivered: u64) {
    let cpu = Usage::of(std::process::id()).cpu_secs - before.cpu_secs;
    v["bench_cpu_us_per_delivery"] = json!(if delivered > 0 {
        round(cpu * 1e6 / delivered as f64, 2)
    } else {
        0.0
    });
}

fn users_with_tokens(server: &Server, prefix: &str, n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let user = format!("{prefix}{i}");
            let token = server.token(&user);
            (user, token)
        })
        .collect()
}

/// 1:1 pairs: user 2i and 2i+1 send to each other.
pub async fn pairs(server: &Server, opts: &Opts) -> Result<Value, String> {
    let n = opts.users.max(2) & !1;
    let prefix = format!("p{}x", crate::stats::now_ns() % 1_000_000);
    let users = users_with_tokens(server, &prefix, n);
    let (conns, hs_secs) =
        traffic::connect_all(&server.target(), &users, opts.sources(n), opts.concurrency).await?;
    let participants: Vec<Participant> = conns
        .into_iter()
        .enumerate()
        .map(|(i, conn)| Participant {
            idx: i as u32,
            to: Some(conn::direct(&users[i ^ 1].0)),
            recipients: 1,
            conn,
        })
        .collect();
    let load = opts.load(n);
    let before = server.usage();
    let bench_before = Usage::of(std::process::id());
    let o = traffic::run(
        participants,
        load,
        Duration::from_secs_f64(opts.duration),
        None,
        Duration::from_secs_f64(opts.drain),
    )
    .await;
    let after = server.usage();
    let mut v = traffic_json(server, &o, before, after, "delivered");
    bench_cpu(&mut v, bench_before, o.report.seen.unique);
    v["scenario"] = json!("pairs");
    v["users"] = json!(n);
    v["load"] = json!(load.to_string());
    v["offered_per_sec"] = json!(opts.rate);
    v["connect_secs"] = json!(round(hs_secs, 2));
    Ok(v)
}

/// Normal groups: every member sends to its group.
pub async fn groups(server: &Server, opts: &Opts) -> Result<Value, String> {
    let (size, count) = (opts.group_size.max(2), opts.groups.max(1));
    let tag = crate::stats::now_ns() % 1_000_000;
    let users = users_with_tokens(server, &format!("g{tag}x"), size * count);
    for g in 0..count {
        let members: Vec<String> = users[g * size..(g + 1) * size]
            .iter()
            .map(|u| u.0.clone())
            .collect();
        server
            .create_group(&format!("grp{tag}x{g}"), &members, false)
            .await?;
    }
    let n = users.len();
    let (conns, hs_secs) =
        traffic::connect_all(&server.target(), &users, opts.sources(n), opts.concurrency).await?;
    let participants: Vec<Participant> = conns
        .into_iter()
        .enumerate()
        .map(|(i, conn)| Participant {
            idx: i as u32,
            to: Some(conn::group(&format!("grp{tag}x{}", i / size))),
            recipients: (size - 1) as u64,
            conn,
        })
        .collect();
    let load = opts.load(n);
    let before = server.usage();
    let bench_before = Usage::of(std::process::id());
    let o = traffic::run(
        participants,
        load,
        Duration::from_secs_f64(opts.duration),
        None,
        Duration::from_secs_f64(opts.drain),
    )
    .await;
    let after = server.usage();
    let mut v = traffic_json(server, &o, before, after, "deliveries");
    bench_cpu(&mut v, bench_before, o.report.seen.unique);
    v["scenario"] = json!(format!("group of {size}"));
    v["groups"] = json!(count);
    v["users"] = json!(n);
    v["load"] = json!(load.to_string());
    v["offered_per_sec"] = json!(opts.rate);
    v["connect_secs"] = json!(round(hs_secs, 2));
    Ok(v)
}

/// A super group with every member online: one message at a time, timed
/// until it reached the last member.
pub async fn supergroup(server: &Server, opts: &Opts) -> Result<Value, String> {
    let m = opts.members.max(2);
    let tag = crate::stats::now_ns() % 1_000_000;
    let users = users_with_tokens(server, &format!("s{tag}x"), m);
    let names: Vec<String> = users.iter().map(|u| u.0.clone()).collect();
    let group = format!("super{tag}");
    server.create_group(&group, &names, true).await?;
    let (mut conns, hs_secs) =
        traffic::connect_all(&server.target(), &users, opts.sources(m), opts.concurrency).await?;
    let sender = conns.remove(0);
    let before = server.usage();
    let (to_last, o) = traffic::one_to_all(
        sender,
        conns,
        &group,
        opts.messages,
        Duration::from_secs_f64(opts.drain),
    )
    .await;
    let after = server.usage();
    let mut h = Latency::new();
    for ms in &to_last {
        h.record_ns((ms * 1e6) as u64);
    }
    let mut v = traffic_json(server, &o, before, after, "deliveries");
    v["scenario"] = json!("super group");
    v["members"] = json!(m);
    v["messages"] = json!(opts.messages);
    v["to_last_member"] = h.percentiles().json();
    // Every message's time, in order: the first one also pays for warming up
    // 10,000 connections' write paths.
    v["to_last_member_each_ms"] = json!(to_last.iter().map(|ms| round(*ms, 1)).collect::<Vec<_>>());
    v["connect_secs"] = json!(round(hs_secs, 2));
    v["full_handshakes_per_sec"] = json!(round(m as f64 / hs_secs, 0));
    Ok(v)
}

/// Offline store, then drain: receivers are offline while their senders
/// send `messages` each; then they connect and sync everything.
pub async fn offline(server: &Server, opts: &Opts) -> Result<Value, String> {
    let n = opts.users.max(1);
    let tag = crate::stats::now_ns() % 1_000_000;
    let senders = users_with_tokens(server, &format!("os{tag}x"), n);
    let receivers = users_with_tokens(server, &format!("or{tag}x"), n);
    let (conns, _) = traffic::connect_all(
        &server.target(),
        &senders,
        opts.sources(n),
        opts.concurrency,
    )
    .await?;
    let participants: Vec<Participant> = conns
        .into_iter()
        .enumerate()
        .map(|(i, conn)| Participant {
            idx: i as u32,
            to: Some(conn::direct(&receivers[i].0)),
            recipients: 0,
            conn,
        })
        .collect();
    let before = server.usage();
    let store = traffic::run(
        participants,
        Load::Closed {
            window: opts.window,
        },
        Duration::from_secs(3600),
        Some(opts.messages),
        Duration::from_secs_f64(opts.drain),
    )
    .await;
    let mid = server.usage();
    let (conns, _) = traffic::connect_all(
        &server.target(),
        &receivers,
        opts.sources(n),
        opts.concurrency,
    )
    .await?;
    let started = Instant::now();
    let handles: Vec<_> = conns
        .into_iter()
        .map(|c| tokio::spawn(traffic::sync_all(c, 500)))
        .collect();
    let (mut entries, mut unique, mut dups, mut pages) = (0u64, 0u64, 0u64, 0u64);
    let mut page_latency = Latency::new();
    for h in handles {
        let s = h
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("sync: {e}"))?;
        entries += s.entries;
        unique += s.seen.unique;
        dups += s.seen.duplicates;
        pages += s.pages;
        page_latency.add(&s.page_latency);
    }
    let secs = started.elapsed().as_secs_f64();
    let after = server.usage();
    let expected = store.acked;
    Ok(json!({
        "scenario": "offline store, then sync",
        "receivers": n,
        "messages_per_receiver": opts.messages,
        "stored": store.acked,
        "store_failed": store.failed,
        "store_per_sec": round(store.acked_per_sec(), 0),
        "store_ack": store.report.ack.percentiles().json(),
        "store_server_cpu_us_per_message": round((mid.cpu_secs - before.cpu_secs) * 1e6 / store.acked.max(1) as f64, 2),
        "synced_entries": entries,
        "synced_messages": unique,
        "lost": expected.saturating_sub(unique),
        "duplicates": dups,
        "sync_pages": pages,
        "sync_secs": round(secs, 3),
        "synced_per_sec": round(entries as f64 / secs, 0),
        "sync_page": page_latency.percentiles().json(),
        "sync_server_cpu_us_per_entry": round((after.cpu_secs - mid.cpu_secs) * 1e6 / entries.max(1) as f64, 2),
        "server_rss_mib": round(mib(after.rss), 1),
        "server_includes_bench": server.in_process,
        "load_avg": machine_load(),
    }))
}

/// Holds idle authenticated connections; samples server memory as they grow.
pub async fn idle(server: &Server, opts: &Opts) -> Result<Value, String> {
    let n = opts.connections.max(1);
    let sources = opts.sources(n);
    let tag = crate::stats::now_ns() % 1_000_000;
    let target = Arc::new(server.target());
    let base = server.usage();
    let bench_base = Usage::of(std::process::id());
    let steps = 10usize;
    let mut samples = vec![(0.0, mib(base.rss))];
    let mut held: Vec<Established> = Vec::with_capacity(n);
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    for step in 0..steps {
        let (from, to) = (n * step / steps, n * (step + 1) / steps);
        let mut handles = Vec::with_capacity(to - from);
        for i in from..to {
            let user = format!("i{tag}x{i}");
            let token = server.token(&user);
            let (gate, target) = (gate.clone(), target.clone());
            handles.push(tokio::spawn(async move {
                let _p = gate.acquire_owned().await.expect("open");
                traffic::connect_retrying(&target, traffic::source(i, sources), &user, &token).await
            }));
        }
        for (k, h) in handles.into_iter().enumerate() {
            match h.await {
                Ok(Ok(mut e)) => {
                    e.leftover = bytes::BytesMut::new();
                    held.push(e);
                }
                Ok(Err(e)) => return Err(format!("connection {}: {e}", from + k)),
                Err(e) => return Err(e.to_string()),
            }
        }
        samples.push((held.len() as f64, mib(server.usage().rss)));
        eprintln!(
            "bubble-bench: idle: {} connections, server RSS {:.1} MiB, {:.0} handshakes/s so far",
            held.len(),
            samples.last().map(|s| s.1).unwrap_or(0.0),
            held.len() as f64 / started.elapsed().as_secs_f64()
        );
    }
    let hs_secs = started.elapsed().as_secs_f64();
    let after_connect = server.usage();
    tokio::time::sleep(Duration::from_secs_f64(opts.hold)).await;
    let end = server.usage();
    let bench_end = Usage::of(std::process::id());
    let per_conn = (end.rss.saturating_sub(base.rss)) as f64 / n as f64;
    std::fs::create_dir_all(&opts.out).map_err(|e| e.to_string())?;
    let svg = line_chart(
        "Server memory against idle authenticated connections",
        "connections",
        "server RSS (MiB)",
        Scale::Linear,
        &[Series {
            name: "RSS".into(),
            points: samples.clone(),
        }],
    );
    let path = opts.out.join("memory-vs-connections.svg");
    std::fs::write(&path, svg).map_err(|e| e.to_string())?;
    drop(held);
    Ok(json!({
        "scenario": "idle connections",
        "connections": n,
        "sources": sources,
        "connect_secs": round(hs_secs, 2),
        "full_handshakes_per_sec": round(n as f64 / hs_secs, 0),
        "handshake_server_cpu_ms_each": round((after_connect.cpu_secs - base.cpu_secs) * 1e3 / n as f64, 3),
        "server_rss_base_mib": round(mib(base.rss), 1),
        "server_rss_mib": round(mib(end.rss), 1),
        "server_rss_per_connection_kib": round(per_conn / 1024.0, 2),
        "bench_rss_per_connection_kib": round(end_delta(bench_base, bench_end) / n as f64 / 1024.0, 2),
        "samples": samples.iter().map(|(c, r)| json!([c, round(*r, 1)])).collect::<Vec<_>>(),
        "plot": path.display().to_string(),
        "server_includes_bench": server.in_process,
        "load_avg": machine_load(),
    }))
}

fn end_delta(a: Usage, b: Usage) -> f64 {
    b.rss.saturating_sub(a.rss) as f64
}

/// Reconnect storm: connect everyone, drop every connection at once, and
/// reconnect everyone with resumption tickets.
pub async fn reconnect(server: &Server, opts: &Opts) -> Result<Value, String> {
    let n = opts.connections.max(1);
    let sources = opts.sources(n);
    let tag = crate::stats::now_ns() % 1_000_000;
    let users = users_with_tokens(server, &format!("r{tag}x"), n);
    let target = Arc::new(server.target());
    let u0 = server.usage();
    let (conns, full_secs) =
        traffic::connect_all(&target, &users, sources, opts.concurrency).await?;
    let u1 = server.usage();
    let tickets: Vec<_> = conns
        .iter()
        .map(|c| {
            c.ticket
                .clone()
                .ok_or("the server issued no resumption ticket")
        })
        .collect::<Result<_, _>>()?;
    drop(conns);
    // Let the server notice every close before the storm.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let u2 = server.usage();
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let mut handles = Vec::with_capacity(n);
    for (i, ticket) in tickets.into_iter().enumerate() {
        let (gate, target) = (gate.clone(), target.clone());
        handles.push(tokio::spawn(async move {
            let _p = gate.acquire_owned().await.expect("open");
            conn::connect_resume(&target, traffic::source(i, sources), "d1", &ticket).await
        }));
    }
    let mut back = Vec::with_capacity(n);
    let mut refused = 0u64;
    for h in handles {
        match h.await {
            Ok(Ok(e)) => back.push(e),
            Ok(Err(e)) => {
                refused += 1;
                if refused <= 3 {
                    eprintln!("bubble-bench: resumption failed: {e}");
                }
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    let resume_secs = started.elapsed().as_secs_f64();
    let u3 = server.usage();
    let resumed = back.len();
    drop(back);
    Ok(json!({
        "scenario": "reconnect storm",
        "connections": n,
        "concurrency": opts.concurrency,
        "full_handshakes_per_sec": round(n as f64 / full_secs, 0),
        "full_handshake_server_cpu_ms_each": round((u1.cpu_secs - u0.cpu_secs) * 1e3 / n as f64, 3),
        "resumed": resumed,
        "resume_failed": refused,
        "resumptions_per_sec": round(resumed as f64 / resume_secs, 0),
        "resumption_server_cpu_ms_each": round((u3.cpu_secs - u2.cpu_secs) * 1e3 / n as f64, 3),
        "server_includes_bench": server.in_process,
        "load_avg": machine_load(),
    }))
}

/// Open-loop 1:1 at each offered load; plots latency against load.
pub async fn sweep(server: &Server, opts: &Opts) -> Result<Value, String> {
    let mut rows = Vec::new();
    let (mut p50, mut p99, mut p999) = (Vec::new(), Vec::new(), Vec::new());
    for &rate in &opts.rates {
        let mut o = opts.clone();
        o.rate = Some(rate);
        let v = pairs(server, &o).await?;
        eprintln!(
            "bubble-bench: sweep {rate}/s -> {} delivered/s, p50 {} ms, p99 {} ms, p99.9 {} ms",
            v["delivered_per_sec"], v["e2e"]["p50_ms"], v["e2e"]["p99_ms"], v["e2e"]["p999_ms"]
        );
        let get = |k: &str| v["e2e"][k].as_f64().unwrap_or(0.0);
        p50.push((rate, get("p50_ms")));
        p99.push((rate, get("p99_ms")));
        p999.push((rate, get("p999_ms")));
        rows.push(v);
    }
    std::fs::create_dir_all(&opts.out).map_err(|e| e.to_string())?;
    let svg = line_chart(
        "1:1 end-to-end latency against offered load (open loop)",
        "offered messages per second",
        "end-to-end latency (ms, log scale)",
        Scale::Log,
        &[
            Series {
                name: "p50".into(),
                points: p50,
            },
            Series {
                name: "p99".into(),
                points: p99,
            },
            Series {
                name: "p99.9".into(),
                points: p999,
            },
        ],
    );
    let path = opts.out.join("latency-vs-load.svg");
    std::fs::write(&path, svg).map_err(|e| e.to_string())?;
    Ok(json!({
        "scenario": "latency sweep",
        "users": opts.users,
        "runs": rows,
        "plot": path.display().to_string(),
        "lost": rows.iter().map(|r| r["lost"].as_u64().unwrap_or(0)).sum::<u64>(),
        "duplicates": rows.iter().map(|r| r["duplicates"].as_u64().unwrap_or(0)).sum::<u64>(),
    }))
}

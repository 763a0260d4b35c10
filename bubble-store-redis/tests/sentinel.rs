//! The adapter behind Redis Sentinel: the conformance suite through the
//! sentinels, and failovers (forced, and the master killed) under a steady
//! stream of writes, with the time until writes work again and the count
//! of acknowledged writes lost, printed for the record. Needs
//! `scripts/services/redis-sentinel.sh` (a primary and a replica on
//! 127.0.0.1:7201-7202, sentinels on 26401-26403) on this machine; without
//! it the tests say they were skipped, except in CI (`CI=true`), where they
//! fail. A failover that missed its bound while a sentinel was in TILT
//! mode (the machine held it up) is run once more ([`checked_failover`]).
//!
//! The tests of this file share the one set-up, and a failover would fail
//! whatever ran beside it: they take [`SETUP`], the failover alone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bubble_core::ports::{Cache, Presence, Route};
use bubble_core::testkit;
use bubble_core::{AdapterConfig, AppId, DeviceId, ErrorKind, MsgId, NodeId, SendReceipt, UserId};
use bubble_store_redis::RedisStore;
use futures_util::future::join_all;
use tokio::sync::RwLock;

mod common;

/// Shared by the checks, exclusive to a failover.
static SETUP: RwLock<()> = RwLock::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sentinel_cache_conforms() {
    let _setup = SETUP.read().await;
    if !common::sentinel_ready("sentinel_cache_conforms").await {
        return;
    }
    testkit::cache(Arc::new(common::connect(common::sentinel_config()).await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sentinel_presence_conforms() {
    let _setup = SETUP.read().await;
    if !common::sentinel_ready("sentinel_presence_conforms").await {
        return;
    }
    testkit::presence(Arc::new(common::connect(common::sentinel_config()).await)).await;
}

/// Every write followed by `WAIT 1`: the same answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sentinel_cache_conforms_when_writes_wait_for_a_replica() {
    let _setup = SETUP.read().await;
    if !common::sentinel_ready("sentinel_cache_conforms_when_writes_wait_for_a_replica").await {
        return;
    }
    let config = common::sentinel_config().with_wait_replicas(1);
    testkit::cache(Arc::new(common::connect(config).await)).await;
}

#[tokio::test]
async fn a_master_name_the_sentinels_do_not_know_is_unavailable_and_named() {
    let _setup = SETUP.read().await;
    if !common::sentinel_ready("a_master_name_the_sentinels_do_not_know_is_unavailable_and_named")
        .await
    {
        return;
    }
    let err = common::sentinel_config()
        .with_master_name("no-such-master")
        .connect()
        .await
        .expect_err("the sentinels watch no such master");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.message().contains("no-such-master"), "{err}");
    assert!(err.message().contains("`master_name`"), "{err}");
}

/// What the writers saw: each write acknowledged, and each failure's time.
#[derive(Default)]
struct Log {
    /// (writer, sequence number) of every acknowledged route registration.
    routes: Vec<(usize, u64)>,
    /// (writer, sequence number) of every acknowledged dedup entry.
    dedups: Vec<(usize, u64)>,
    /// When each failed write finished, and why.
    failures: Vec<(Instant, String)>,
    /// When each acknowledged write finished.
    acked_at: Vec<Instant>,
}

const WRITERS: usize = 4;
/// How long writes may fail after a failover. A forced failover takes
/// 11-13 s here (Sentinel demotes the old master only after ~10 s): the
/// bound leaves room for a loaded CI machine.
const RECOVERY_BOUND: Duration = Duration::from_secs(25);
const APP: &str = "failover";

fn route(writer: usize, n: u64) -> Route {
    Route {
        user: UserId::new(format!("u{writer}-{n}")),
        device: DeviceId::new("phone"),
        platform: "ios".into(),
        node: NodeId::new("n1"),
        session: n + 1,
        since: 0,
        background: false,
    }
}

fn receipt(n: u64) -> SendReceipt {
    SendReceipt {
        server_msg_id: MsgId([7; 16]),
        version: n + 1,
        seq: n,
        server_time: 0,
        duplicate: false,
        prev_version: 0,
    }
}

fn sender(writer: usize) -> UserId {
    UserId::new(format!("s{writer}"))
}

/// One writer: a route registration and a dedup entry, every few
/// milliseconds, until `stop`.
async fn writer(store: RedisStore, id: usize, stop: Arc<std::sync::atomic::AtomicBool>) -> Log {
    let app = AppId::new(APP);
    // Long enough to read everything back, short enough that the data set
    // (and so each full sync) stays small over many runs.
    let ttl = Duration::from_secs(60);
    let mut log = Log::default();
    let mut n = 0u64;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        match store.register(&app, &route(id, n), ttl).await {
            Ok(()) => {
                log.routes.push((id, n));
                log.acked_at.push(Instant::now());
            }
            Err(e) => log.failures.push((Instant::now(), e.to_string())),
        }
        let m = format!("m{n}");
        match store
            .dedup_put(&app, &sender(id), &m, &receipt(n), ttl)
            .await
        {
            // `false` is someone else's earlier entry: none here, but it
            // is there to read back all the same.
            Ok(_) => {
                log.dedups.push((id, n));
                log.acked_at.push(Instant::now());
            }
            Err(e) => log.failures.push((Instant::now(), e.to_string())),
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    log
}

/// Asks a sentinel to fail over, retrying while it says a failover is
/// under way or it has no replica to promote yet.
async fn force_failover() {
    let started = Instant::now();
    loop {
        for url in common::sentinel_urls() {
            let Some(mut sentinel) = common::raw_at(&url).await else {
                continue;
            };
            let answer: redis::RedisResult<String> = redis::cmd("SENTINEL")
                .arg("FAILOVER")
                .arg(common::sentinel_master())
                .query_async(&mut sentinel)
                .await;
            match answer {
                Ok(_) => return,
                Err(e) => eprintln!("SENTINEL FAILOVER on {url}: {e}; trying again"),
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no sentinel would start a failover in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The master the first answering sentinel names.
async fn named_master() -> Option<String> {
    for url in common::sentinel_urls() {
        if let Some(mut sentinel) = common::raw_at(&url).await {
            let addr: Option<(String, u16)> = redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(common::sentinel_master())
                .query_async(&mut sentinel)
                .await
                .ok()
                .flatten();
            if let Some((host, port)) = addr {
                return Some(format!("{host}:{port}"));
            }
        }
    }
    None
}

/// What one forced failover cost.
struct Outcome {
    /// From forcing the failover until the sentinels named the new master
    /// (none if they did not within the bound).
    switch: Option<Duration>,
    /// Whether a sentinel was in TILT mode at some point of the run.
    tilted: bool,
    /// From forcing the failover until the first acknowledged write after
    /// the last failed one (zero if no write failed; none if every write
    /// after the failover failed).
    recovery: Option<Duration>,
    acked: usize,
    failed: usize,
    lost: usize,
    /// Each kind of failure, how often and when.
    failures: Vec<String>,
}

/// How the failover comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failover {
    /// `SENTINEL FAILOVER`: the old master lives on and is demoted later.
    Forced,
    /// The master is killed with SIGKILL; once the sentinels promoted the
    /// replica, the service script starts it again as a replica of the new
    /// master (what an operator or a supervisor would do).
    Killed,
}

/// Kills the Redis server at `addr` (this machine's) with SIGKILL.
async fn kill(addr: &str) {
    let mut node = common::raw_at(&format!("redis://{addr}"))
        .await
        .expect("the master answers before it is killed");
    let info: String = redis::cmd("INFO")
        .arg("SERVER")
        .query_async(&mut node)
        .await
        .unwrap();
    let pid = info
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .expect("INFO SERVER names the process")
        .trim()
        .to_owned();
    let status = std::process::Command::new("kill")
        .args(["-9", &pid])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -9 {pid} ({addr}) failed");
}

/// Runs `scripts/services/redis-sentinel.sh`, which starts what is down.
async fn restart_what_is_down() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/services/redis-sentinel.sh"
    );
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash").arg(script).output()
    })
    .await
    .unwrap()
    .expect("run redis-sentinel.sh");
    assert!(
        out.status.success(),
        "redis-sentinel.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls the sentinels for TILT mode until `stop`: whether one was in it.
async fn watch_for_tilt(stop: Arc<std::sync::atomic::AtomicBool>) -> bool {
    let mut tilted = false;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        tilted |= common::any_sentinel_in_tilt().await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tilted
}

/// A failover under writes, checked: writes work again within
/// [`RECOVERY_BOUND`] and, when writes wait for a replica, nothing
/// acknowledged is lost. A run in which the sentinels went into TILT mode
/// (the machine held one up over 2 s; it then does not act for 30 s) and
/// the bound was missed says nothing about the adapter: it is reported and
/// the failover run once more, and that run must pass. Nothing
/// acknowledged may be lost in either.
async fn checked_failover(name: &str, wait_replicas: u32, how: Failover) -> Outcome {
    let mut attempt = 1;
    loop {
        let o = failover_under_writes(wait_replicas, how).await;
        report(name, wait_replicas, &o);
        if wait_replicas > 0 {
            assert!(o.acked > 0, "nothing was acknowledged");
            assert_eq!(o.lost, 0, "acknowledged writes lost in the failover");
        }
        let in_time = o.switch.is_some() && o.recovery.is_some_and(|r| r < RECOVERY_BOUND);
        if !in_time && o.tilted && attempt == 1 {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "{name}: a sentinel went into TILT mode during the failover (its timer \
                 was held up over 2 s by the machine's load); waiting for the set-up to \
                 settle and running the failover once more"
            );
            assert!(common::sentinel_ready(name).await);
            attempt += 1;
            continue;
        }
        assert!(
            o.switch.is_some(),
            "the sentinels named no new master within {RECOVERY_BOUND:?} (TILT seen: {})",
            o.tilted
        );
        assert!(
            in_time,
            "writes worked again only {:?} after the failover",
            o.recovery
        );
        return o;
    }
}

/// Writes steadily, fails the master over, keeps writing until the adapter
/// works against the new master (at most 25 s) and a little longer, then
/// reads every acknowledged write back.
async fn failover_under_writes(wait_replicas: u32, how: Failover) -> Outcome {
    let old = common::settled_master().await.expect("a settled set-up");
    let store = common::connect(common::sentinel_config().with_wait_replicas(wait_replicas)).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|id| tokio::spawn(writer(store.clone(), id, stop.clone())))
        .collect();
    let tilt_watch = tokio::spawn(watch_for_tilt(stop.clone()));

    // Writes before the failover.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let forced = Instant::now();
    match how {
        Failover::Forced => force_failover().await,
        Failover::Killed => kill(&old).await,
    }
    let mut switch = None;
    while forced.elapsed() < RECOVERY_BOUND {
        if named_master().await.is_some_and(|m| m != old) {
            switch = Some(forced.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if switch.is_some() {
        if how == Failover::Killed {
            restart_what_is_down().await;
        }
        // Writes after it: until the demoted master is a replica again
        // (what it took after the promotion is then gone), and at least 3 s.
        let after = Instant::now();
        while after.elapsed() < RECOVERY_BOUND {
            if after.elapsed() > Duration::from_secs(3) && common::settled_master().await.is_some()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    } else if how == Failover::Killed {
        restart_what_is_down().await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let tilted = tilt_watch.await.expect("the TILT watch panicked");
    let mut log = Log::default();
    for w in join_all(writers).await {
        let w = w.expect("a writer panicked");
        log.routes.extend(w.routes);
        log.dedups.extend(w.dedups);
        log.failures.extend(w.failures);
        log.acked_at.extend(w.acked_at);
    }

    let last_failure = log.failures.iter().map(|(t, _)| *t).max();
    let recovery = match last_failure {
        None => Some(Duration::ZERO),
        Some(last) => log
            .acked_at
            .iter()
            .filter(|t| **t > last)
            .min()
            .map(|back| back.saturating_duration_since(forced)),
    };
    // What the failures were, for the report: each kind once, with its
    // count and when the first and last came.
    let mut kinds: Vec<(String, usize, Duration, Duration)> = Vec::new();
    for (t, why) in &log.failures {
        let at = t.saturating_duration_since(forced);
        let kind = why.split(" (caused by").next().unwrap_or(why).to_owned();
        match kinds.iter_mut().find(|k| k.0 == kind) {
            Some(k) => {
                k.1 += 1;
                k.2 = k.2.min(at);
                k.3 = k.3.max(at);
            }
            None => kinds.push((kind, 1, at, at)),
        }
    }
    let failures = kinds
        .iter()
        .map(|(kind, count, first, last)| {
            format!(
                "{count} x {kind} (from {:.2} s to {:.2} s after the failover was forced)",
                first.as_secs_f64(),
                last.as_secs_f64()
            )
        })
        .collect();

    // Read back through a fresh store (same prefix): it asks the sentinels
    // anew, so it reads from the master they name now.
    let reader = common::connect(store.config().clone()).await;
    let app = AppId::new(APP);
    // The adapter that lived through the failover writes to the new
    // master: what it writes now, the fresh store reads there.
    let probe = route(WRITERS, 0);
    store
        .register(&app, &probe, Duration::from_secs(60))
        .await
        .expect("the adapter writes again after the failover");
    assert_eq!(
        reader.routes(&app, &probe.user).await.unwrap(),
        vec![probe],
        "the adapter wrote where the sentinels say the master is"
    );
    let mut lost = 0;
    for chunk in log.routes.chunks(200) {
        let found = join_all(chunk.iter().map(|&(w, n)| {
            let (reader, app) = (&reader, &app);
            async move {
                let want = route(w, n);
                reader
                    .routes(app, &want.user)
                    .await
                    .expect("read back a route")
                    == vec![want]
            }
        }))
        .await;
        lost += found.iter().filter(|ok| !**ok).count();
    }
    for chunk in log.dedups.chunks(200) {
        let found = join_all(chunk.iter().map(|&(w, n)| {
            let (reader, app) = (&reader, &app);
            async move {
                let got = reader
                    .dedup_get(app, &sender(w), &format!("m{n}"))
                    .await
                    .expect("read back a dedup entry");
                got.is_some_and(|r| r.version == n + 1)
            }
        }))
        .await;
        lost += found.iter().filter(|ok| !**ok).count();
    }
    Outcome {
        switch,
        tilted,
        recovery,
        acked: log.routes.len() + log.dedups.len(),
        failed: log.failures.len(),
        lost,
        failures,
    }
}

/// Prints what a failover cost, past the test harness' capture (the run
/// is reported from it).
fn report(name: &str, wait_replicas: u32, o: &Outcome) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "{name}: wait_replicas={wait_replicas}: new master named after {}; \
         writes work again {} after the failover; \
         {} writes acknowledged, {} failed, {} acknowledged writes lost{}",
        o.switch
            .map_or("never".into(), |s| format!("{:.2} s", s.as_secs_f64())),
        o.recovery
            .map_or("never".into(), |r| format!("{:.2} s", r.as_secs_f64())),
        o.acked,
        o.failed,
        o.lost,
        if o.tilted {
            "; a sentinel was in TILT mode"
        } else {
            ""
        },
    );
    for failure in &o.failures {
        let _ = writeln!(std::io::stderr(), "  {failure}");
    }
}

/// `SENTINEL FAILOVER` under writes that wait for the replica: the adapter
/// follows the new master within 25 s, and nothing it acknowledged is
/// lost. (The old master keeps taking writes for ~10 s after the replica's
/// promotion, until the sentinels demote it; `WAIT` is what keeps those
/// from being acknowledged.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forced_failover_loses_no_acknowledged_write_and_writes_resume_within_25s() {
    let _setup = SETUP.write().await;
    let name = "a_forced_failover_loses_no_acknowledged_write_and_writes_resume_within_25s";
    if !common::sentinel_ready(name).await {
        return;
    }
    checked_failover(name, 1, Failover::Forced).await;
}

/// The same without `wait_replicas`: the adapter follows the new master
/// too, but what the old master acknowledged after the promotion is lost.
/// A measurement, not a check of the adapter (run it with `--ignored`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement: the loss without wait_replicas"]
async fn a_forced_failover_without_waiting_for_replicas_loses_writes() {
    let _setup = SETUP.write().await;
    let name = "a_forced_failover_without_waiting_for_replicas_loses_writes";
    if !common::sentinel_ready(name).await {
        return;
    }
    checked_failover(name, 0, Failover::Forced).await;
}

/// The master killed with SIGKILL under writes that wait for the replica:
/// the sentinels promote the replica after `down-after-milliseconds`, the
/// adapter follows, and once the killed node is back as a replica writes
/// work again; nothing acknowledged is lost. Needs the set-up on this
/// machine (it kills the process and restarts it with the script).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_master_loses_no_acknowledged_write_and_writes_resume_within_25s() {
    let _setup = SETUP.write().await;
    let name = "a_killed_master_loses_no_acknowledged_write_and_writes_resume_within_25s";
    if !common::sentinel_ready(name).await {
        return;
    }
    checked_failover(name, 1, Failover::Killed).await;
}

/// The master killed without `wait_replicas`: what it had acknowledged but
/// not yet sent to the replica when it died is lost. A measurement, not a
/// check of the adapter (run it with `--ignored`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement: the loss without wait_replicas"]
async fn a_killed_master_without_waiting_for_replicas_loses_what_it_had_not_sent() {
    let _setup = SETUP.write().await;
    let name = "a_killed_master_without_waiting_for_replicas_loses_what_it_had_not_sent";
    if !common::sentinel_ready(name).await {
        return;
    }
    checked_failover(name, 0, Failover::Killed).await;
}

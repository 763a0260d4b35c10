//! Conformance checks for [`JobQueue`].

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::checks;
use crate::jobs::{ClaimOrder, Job, JobQueue, NewJob};
use crate::types::AppId;

/// Runs every job-queue check against `queue`.
pub async fn jobs(queue: Arc<dyn JobQueue>) {
    super::run_checks("JobQueue", queue, CHECKS).await;
}

const CHECKS: &[super::Check<dyn JobQueue>] = checks![dyn JobQueue;
    enqueued_jobs_get_growing_ids_in_the_order_given,
    ids_keep_growing_after_the_newest_job_is_completed,
    payload_bytes_round_trip_exactly,
    a_claim_takes_at_most_limit_jobs_oldest_first,
    a_claim_takes_only_jobs_that_are_due,
    a_leased_job_is_not_offered_again_until_its_lease_runs_out,
    any_order_skips_leased_and_not_due_jobs,
    in_order_takes_nothing_while_the_oldest_job_is_leased,
    in_order_takes_nothing_while_the_oldest_job_is_not_due,
    in_order_takes_only_the_run_of_due_jobs_from_the_oldest_on,
    in_order_stops_at_a_job_still_leased_after_the_oldest,
    complete_removes_jobs_and_ignores_unknown_ids,
    retry_puts_a_job_back_due_later_with_one_more_attempt_and_no_lease,
    retry_of_an_unknown_job_says_it_was_not_there,
    depth_counts_a_queues_jobs_leased_or_not,
    queues_are_independent,
    two_concurrent_claimers_never_get_the_same_job_while_its_lease_runs,
    concurrent_in_order_claimers_take_turns_and_keep_the_order,
];

/// A time the checks start at (ms): any will do, each check has queues of
/// its own.
const T: i64 = 1_700_000_000_000;

/// A lease longer than any check runs through.
const LONG: i64 = 3_600_000;

/// The queue `name` of this check's app.
fn queue(app: &AppId, name: &str) -> String {
    format!("{name}/{app}")
}

fn new_job(queue: &str, payload: &[u8], due_at: i64) -> NewJob {
    NewJob {
        queue: queue.to_owned(),
        payload: payload.to_vec(),
        due_at,
    }
}

/// Enqueues one job per payload, all due at `due_at`, at time `due_at`.
async fn enqueue(s: &Arc<dyn JobQueue>, queue: &str, payloads: &[&str], due_at: i64) {
    let jobs: Vec<NewJob> = payloads
        .iter()
        .map(|p| new_job(queue, p.as_bytes(), due_at))
        .collect();
    s.enqueue(&jobs, due_at).await.unwrap();
}

async fn claim(
    s: &Arc<dyn JobQueue>,
    queue: &str,
    now: i64,
    limit: usize,
    order: ClaimOrder,
) -> Vec<Job> {
    s.claim(queue, "worker-1", now, LONG, limit, order)
        .await
        .unwrap()
}

/// The payloads of `jobs`, as text.
fn payloads(jobs: &[Job]) -> Vec<String> {
    jobs.iter()
        .map(|j| String::from_utf8_lossy(&j.payload).into_owned())
        .collect()
}

fn ids(jobs: &[Job]) -> Vec<u64> {
    jobs.iter().map(|j| j.id).collect()
}

async fn enqueued_jobs_get_growing_ids_in_the_order_given(s: Arc<dyn JobQueue>, app: AppId) {
    let q = queue(&app, "notify");
    enqueue(&s, &q, &["a", "b", "c"], T).await;
    s.enqueue(&[new_job(&q, b"d", T), new_job(&q, b"e", T)], T + 5)
        .await
        .unwrap();
    let got = claim(&s, &q, T + 10, 10, ClaimOrder::Any).await;
    assert_eq!(payloads(&got), ["a", "b", "c", "d", "e"], "oldest first");
    assert!(
        got.windows(2).all(|w| w[0].id < w[1].id),
        "ids grow in the order given: {:?}",
        ids(&got)
    );
    for j in &got {
        assert_eq!(j.queue, q);
        assert_eq!(j.attempts, 0, "a new job has no attempts");
    }
    let times: Vec<i64> = got.iter().map(|j| j.enqueued_at).collect();
    assert_eq!(times, [T, T, T, T + 5, T + 5], "`now` of their enqueue");
    s.enqueue(&[], T).await.unwrap();
    assert_eq!(
        s.depth(&q).await.unwrap(),
        5,
        "enqueueing nothing adds nothing"
    );
}

async fn ids_keep_growing_after_the_newest_job_is_completed(s: Arc<dyn JobQueue>, app: AppId) {
    let q = queue(&app, "notify");
    enqueue(&s, &q, &["a", "b"], T).await;
    let first = claim(&s, &q, T, 10, ClaimOrder::Any).await;
    s.complete(&ids(&first)).await.unwrap();
    enqueue(&s, &q, &["c"], T).await;
    let next = claim(&s, &q, T, 10, ClaimOrder::Any).await;
    assert!(
        next[0].id > first[1].id,
        "an id is never given twice: {} after {:?}",
        next[0].id,
        ids(&first)
    );
}

async fn payload_bytes_round_trip_exactly(s: Arc<dyn JobQueue>, app: AppId) {
    let q = queue(&app, "after_send");
    let every_byte: Vec<u8> = (0..=255u8).rev().collect();
    let large: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let sent: Vec<Vec<u8>> = vec![
        vec![0xff, 0x00, 0xfe, 0x80, 0xc3, 0x28],
        Vec::new(),
        every_byte,
        b"trailing spaces  ".to_vec(),
        vec![0; 16],
        large,
    ];
    let jobs: Vec<NewJob> = sent.iter().map(|p| new_job(&q, p, T)).collect();
    s.enqueue(&jobs, T).await.unwrap();
    let got = claim(&s, &q, T, 10, ClaimOrder::Any).await;
    let back: Vec<Vec<u8>> = got.into_iter().map(|j| j.payload).collect();
    assert_eq!(
        back, sent,
        "non-UTF-8 and empty payloads come back byte for byte"
    );
}

async fn a_claim_takes_at_most_limit_jobs_oldest_first(s: Arc<dyn JobQueue>, app: AppId) {
    let q = queue(&app, "notify");
    enqueue(&s, &q, &["1", "2", "3", "4", "5"], T).await;
    assert!(
        claim(&s, &q, T, 0, ClaimOrder::Any).await.is_empty(),
        "a limit of 0 takes nothing"
    );
    assert_eq!(
        payloads(&claim(&s, &q, T, 2, ClaimOrder::Any).await),
        ["1", "2"]
    );
    assert_eq!(
        payloads(&claim(&s, &q, T, 2, ClaimOrder::Any).await),
        ["3", "4"]
    );
    assert_eq!(payloads(&claim(&s, &q, T, 2, ClaimOrder::Any).await), ["5"]);
    assert!(claim(&s, &q, T, 2, ClaimOrder::Any).await.is_empty());
    let in_order = queue(&app, "after_send");
    enqueue(&s, &in_order, &["1", "2", "3"], T).await;
    assert_eq!(
        payloads(&claim(&s, &in_order, T, 2, ClaimOrder::InOrder).await),
        ["1", "2"]
    );
}

async fn a_claim_takes_only_jobs_that_are_due(s: Arc<dyn JobQueue>, app: AppId) {
    let q = queue(&app, "notify");
    s.enqueue(
        &[
            new_job(&q, b"later", T + 1_000),
            new_job(&q, b"now", T),
            new_job(&q, b"much later", T + 5_000),
        ],
        T,
    )
    .await
    .unwrap();
    assert_eq!(
        payloads(&claim(&s, &q, T, 10, ClaimOrder::Any).await),
        ["now"]
    );
    assert!(claim(&s, &q, T + 999, 10, ClaimOrder::Any).await.is_empty());
    assert_eq!(
        payloads(&claim(&s, &q, T + 1_000, 10, ClaimOrder::Any).await),
        ["later"],
        "due at due_at itself"
    );
    assert_eq!(
        payloads(&claim(&s, &q, T + 9_000, 10, ClaimOrder::Any).await),
        ["much later"]
    );
}

async fn a_leased_job_is_not_offered_again_until_its_lease_runs_out(
    s: Arc<dyn JobQueue>,
    app: AppId,
) {
    let q = queue(&app, "notify");
    enqueue(&s, &q, &["job"], T).await;
    let first = s
        .claim(&q, "worker-1", T, 1_000, 10, ClaimOrder::Any)
        .await
        .unwrap();
    assert_eq!(payloads(&first), ["job"]);
    for now in [T, T + 500, T + 999] {
        let again = s
            .claim(&q, "worker-2", now, 1_000, 10, ClaimOrder::Any)
            .await
            .unwrap();
        assert!(
            again.is_empty(),
            "leased until {}: {again:?} at {now}",
            T + 1_000
        );
    }
    let expired = s
        .claim(&q, "worker-2", T + 1_000, 1_000, 10, ClaimOrder::Any)
        .await
        .unwrap();
    assert_eq!(
        expired, first,
        "offered again when the lease ran out, the same job with the same attempts"
    );
    let held = s
        .claim(&q, "worker-1", T + 1_999, 1_000, 10, ClaimOrder::Any)
        .await
        .unwrap();
    assert!(
        held.is_empty(),
        "the new holder's lease runs from its claim"
    );
    assert_eq!(s.depth(&q).await.unwrap(), 1);
}

async fn any_order_skips_leased_and_not_due_jobs(s: Arc<dyn JobQueue>, app: AppId) {
    let q = queue(&app, "notify");
    enqueue(&s, &q, &["leased"], T).await;
    let leased = claim(&s, &q, T, 1, ClaimOrder::Any).await;
    s.enqueue(
        &[new_job(&q, b"not due", T + 1_000), new_job(&q, b"due", T)],
        T,
    )
    .await
    .unwrap();
    assert_eq!(payloads(&leased), ["leased"]);
    assert_eq!(
        payloads(&claim(&s, &q, T, 10, ClaimOrder::Any).await),
        ["due"],
        "past a leased and a not-due job"
    );
}

async fn in_order_takes_nothing_while_the_oldest_job_is_leased(s: Arc<dyn JobQueue>, app: AppId) {
    let q = queue(&app, "after_send");
    enqueue(&s, &q, &["1", "2", "3"], T).await;
    let head = claim(&s, &q, T, 1, ClaimOrder::InOrder).await;
    assert_eq!(payloads(&head), ["1"]);
    assert!(
        claim(&s, &q, T + 1, 10, ClaimOrder::InOrder)
            .await
            .is_empty(),
        "nothing while the oldest is held"
    );
    s.complete(&ids(&head)).await.unwrap();
    assert_eq!(
        payloads(&claim(&s, &q, T + 2, 10, ClaimOrder::InOrder).await),
        ["2", "3"],
        "the rest once it is done"
    );
    let expiring = queue(&app, "expiring");
    enqueue(&s, &expiring, &["a", "b"], T).await;
    let held = s
        .claim(&expiring, "worker-1", T, 1_000, 1, ClaimOrder::InOrder)
        .await
        .unwrap();
    assert_eq!(payloads(&held), ["a"]);
    assert!(
        s.claim(
            &expiring,
            "worker-2",
            T + 999,
            1_000,
            10,
            ClaimOrder::InOrder
        )
        .await
        .unwrap()
        .is_empty()
    );
    let again = s
        .claim(
            &expiring,
            "worker-2",
            T + 1_000,
            1_000,
            10,
            ClaimOrder::InOrder,
        )
        .await
        .unwrap();
    assert_eq!(
        payloads(&again),
        ["a", "b"],
        "from the oldest on again once its lease ran out"
    );
}

async fn in_order_takes_nothing_while_the_oldest_job_is_not_due(s: Arc<dyn JobQueue>, app: AppId) {
    let q = queue(&app, "after_send");
    s.enqueue(
        &[new_job(&q, b"later", T + 1_000), new_job(&q, b"now", T)],
        T,
    )
    .await
    .unwrap();
    assert!(
        claim(&s, &q, T, 10, ClaimOrder::InOrder).await.is_empty(),
        "a due job waits behind an older one that is not"
    );
    assert_eq!(
        payloads(&claim(&s, &q, T + 1_000, 10, ClaimOrder::InOrder).await),
        ["later", "now"]
    );
}

async fn in_order_takes_only_the_run_of_due_jobs_from_the_oldest_on(
    s: Arc<dyn JobQueue>,
    app: AppId,
) {
    let q = queue(&app, "after_send");
    s.enqueue(
        &[
            new_job(&q, b"1", T),
            new_job(&q, b"2", T),
            new_job(&q, b"3 later", T + 1_000),
            new_job(&q, b"4", T),
        ],
        T,
    )
    .await
    .unwrap();
    assert_eq!(
        payloads(&claim(&s, &q, T, 10, ClaimOrder::InOrder).await),
        ["1", "2"],
        "stops at the first job that is not due"
    );
    let any = queue(&app, "notify");
    s.enqueue(
        &[
            new_job(&any, b"1", T),
            new_job(&any, b"2 later", T + 1_000),
            new_job(&any, b"3", T),
        ],
        T,
    )
    .await
    .unwrap();
    assert_eq!(
        payloads(&claim(&s, &any, T, 10, ClaimOrder::Any).await),
        ["1", "3"],
        "where Any goes past it"
    );
}

async fn in_order_stops_at_a_job_still_leased_after_the_oldest(s: Arc<dyn JobQueue>, app: AppId) {
    let q = queue(&app, "after_send");
    enqueue(&s, &q, &["1", "2", "3"], T).await;
    let all = claim(&s, &q, T, 10, ClaimOrder::InOrder).await;
    assert_eq!(payloads(&all), ["1", "2", "3"]);
    assert!(s.retry(all[0].id, T + 10).await.unwrap());
    let again = claim(&s, &q, T + 10, 10, ClaimOrder::InOrder).await;
    assert_eq!(
        payloads(&again),
        ["1"],
        "the put-back head alone: the next one is still held"
    );
    assert_eq!(again[0].attempts, 1);
}

async fn complete_removes_jobs_and_ignores_unknown_ids(s: Arc<dyn JobQueue>, app: AppId) {
    let q = queue(&app, "notify");
    enqueue(&s, &q, &["1", "2", "3"], T).await;
    let got = s
        .claim(&q, "worker-1", T, 1_000, 10, ClaimOrder::Any)
        .await
        .unwrap();
    s.complete(&[got[0].id, got[2].id, u64::MAX - 1, 0])
        .await
        .unwrap();
    s.complete(&[]).await.unwrap();
    assert_eq!(s.depth(&q).await.unwrap(), 1);
    let after = claim(&s, &q, T + 5_000, 10, ClaimOrder::Any).await;
    assert_eq!(
        payloads(&after),
        ["2"],
        "completed jobs are not offered again, even after their lease"
    );
    s.complete(&[got[0].id]).await.unwrap();
    assert_eq!(
        s.depth(&q).await.unwrap(),
        1,
        "completing twice is harmless"
    );
}

async fn retry_puts_a_job_back_due_later_with_one_more_attempt_and_no_lease(
    s: Arc<dyn JobQueue>,
    app: AppId,
) {
    let q = queue(&app, "notify");
    enqueue(&s, &q, &["flaky"], T).await;
    let got = claim(&s, &q, T, 1, ClaimOrder::Any).await;
    assert!(s.retry(got[0].id, T + 5_000).await.unwrap());
    assert!(
        claim(&s, &q, T + 4_999, 10, ClaimOrder::Any)
            .await
            .is_empty(),
        "not before its new due time"
    );
    let again = claim(&s, &q, T + 5_000, 10, ClaimOrder::Any).await;
    assert_eq!(
        again.len(),
        1,
        "due again, its lease (which ran an hour) released"
    );
    assert_eq!(
        (again[0].id, again[0].attempts, again[0].enqueued_at),
        (got[0].id, 1, T),
        "the same job, one more attempt"
    );
    assert!(s.retry(got[0].id, T + 6_000).await.unwrap());
    let third = claim(&s, &q, T + 6_000, 10, ClaimOrder::Any).await;
    assert_eq!(third[0].attempts, 2);
    assert_eq!(third[0].payload, b"flaky");
}

async fn retry_of_an_unknown_job_says_it_was_not_there(s: Arc<dyn JobQueue>, app: AppId) {
    let q = queue(&app, "notify");
    enqueue(&s, &q, &["done"], T).await;
    let got = claim(&s, &q, T, 1, ClaimOrder::Any).await;
    s.complete(&ids(&got)).await.unwrap();
    assert!(!s.retry(got[0].id, T).await.unwrap(), "a completed job");
    assert!(
        !s.retry(u64::MAX - 1, T).await.unwrap(),
        "an id never given"
    );
    assert_eq!(s.depth(&q).await.unwrap(), 0, "retry brings nothing back");
}

async fn depth_counts_a_queues_jobs_leased_or_not(s: Arc<dyn JobQueue>, app: AppId) {
    let q = queue(&app, "notify");
    assert_eq!(s.depth(&q).await.unwrap(), 0, "an unknown queue is empty");
    enqueue(&s, &q, &["1", "2"], T).await;
    s.enqueue(&[new_job(&q, b"later", T + 60_000)], T)
        .await
        .unwrap();
    assert_eq!(s.depth(&q).await.unwrap(), 3, "due or not");
    let got = claim(&s, &q, T, 1, ClaimOrder::Any).await;
    assert_eq!(s.depth(&q).await.unwrap(), 3, "leased or not");
    s.complete(&ids(&got)).await.unwrap();
    assert_eq!(s.depth(&q).await.unwrap(), 2);
}

async fn queues_are_independent(s: Arc<dyn JobQueue>, app: AppId) {
    let (a, b) = (queue(&app, "notify"), queue(&app, "after_send"));
    s.enqueue(
        &[
            new_job(&a, b"a1", T),
            new_job(&b, b"b1", T),
            new_job(&a, b"a2", T),
        ],
        T,
    )
    .await
    .unwrap();
    let from_a = claim(&s, &a, T, 10, ClaimOrder::Any).await;
    assert_eq!(payloads(&from_a), ["a1", "a2"], "a queue's jobs only");
    assert!(from_a.iter().all(|j| j.queue == a));
    assert_eq!(
        payloads(&claim(&s, &b, T, 10, ClaimOrder::InOrder).await),
        ["b1"],
        "another queue's leases do not hold this one up"
    );
    s.complete(&ids(&from_a)).await.unwrap();
    assert_eq!(
        (s.depth(&a).await.unwrap(), s.depth(&b).await.unwrap()),
        (0, 1)
    );
    let prefix = format!("{a}/");
    enqueue(&s, &prefix, &["p"], T).await;
    assert_eq!(s.depth(&a).await.unwrap(), 0, "no prefix match");
}

async fn two_concurrent_claimers_never_get_the_same_job_while_its_lease_runs(
    s: Arc<dyn JobQueue>,
    app: AppId,
) {
    let q = queue(&app, "notify");
    const JOBS: usize = 120;
    let jobs: Vec<NewJob> = (0..JOBS)
        .map(|i| new_job(&q, i.to_string().as_bytes(), T))
        .collect();
    s.enqueue(&jobs, T).await.unwrap();
    let claimer = |holder: &'static str, limit: usize| {
        let (s, q) = (s.clone(), q.clone());
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                // Every claim at the same time: no lease runs out.
                let got = s
                    .claim(&q, holder, T, LONG, limit, ClaimOrder::Any)
                    .await
                    .unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|j| j.id));
            }
        })
    };
    let (a, b) = (claimer("worker-a", 3), claimer("worker-b", 4));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let (set_a, set_b): (BTreeSet<u64>, BTreeSet<u64>) =
        (a.iter().copied().collect(), b.iter().copied().collect());
    assert_eq!(set_a.len() + set_b.len(), a.len() + b.len(), "no job twice");
    assert!(
        set_a.is_disjoint(&set_b),
        "both got {:?}",
        set_a.intersection(&set_b).collect::<Vec<_>>()
    );
    assert_eq!(set_a.len() + set_b.len(), JOBS, "every job taken once");
}

async fn concurrent_in_order_claimers_take_turns_and_keep_the_order(
    s: Arc<dyn JobQueue>,
    app: AppId,
) {
    let q = queue(&app, "after_send");
    const JOBS: usize = 40;
    let jobs: Vec<NewJob> = (0..JOBS)
        .map(|i| new_job(&q, i.to_string().as_bytes(), T))
        .collect();
    s.enqueue(&jobs, T).await.unwrap();
    // Each claimer notes what it took, then completes it: with one holder
    // at a time the notes come out in id order.
    let done = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let claimer = |holder: &'static str| {
        let (s, q, done) = (s.clone(), q.clone(), done.clone());
        tokio::spawn(async move {
            loop {
                let got = s
                    .claim(&q, holder, T, LONG, 3, ClaimOrder::InOrder)
                    .await
                    .unwrap();
                if got.is_empty() {
                    if s.depth(&q).await.unwrap() == 0 {
                        return;
                    }
                    // The other one holds the head: let it finish.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                done.lock().extend(got.iter().map(|j| j.id));
                s.complete(&ids(&got)).await.unwrap();
            }
        })
    };
    let (a, b) = (claimer("worker-a"), claimer("worker-b"));
    a.await.unwrap();
    b.await.unwrap();
    let done = done.lock().clone();
    assert_eq!(done.len(), JOBS, "every job once: {done:?}");
    assert!(
        done.windows(2).all(|w| w[0] < w[1]),
        "taken in order, one holder at a time: {done:?}"
    );
}

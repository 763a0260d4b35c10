//! The inbox append: one transaction writes a batch of deliveries into
//! per-owner inboxes, one version space per owner.
//!
//! # How an append stays ordered without a global lock
//!
//! One transaction writes one or more deliveries (a batch):
//!
//! 1. the dedup keys `(app, sender, client_msg_id)` go into `inbox_sent`
//!    first, in sorted order. A duplicate key means the message was accepted
//!    before: that delivery writes nothing and answers with the stored
//!    receipt. A racing first attempt that has not committed yet makes the
//!    insert wait for it, so exactly one of them writes;
//! 2. each owner's counter in `inbox_versions` is raised by the number of
//!    entries it gets, in one upsert with the owners in sorted order. The
//!    upsert takes the owner's row lock, held to commit: appends to the same
//!    owner queue on that row (on any node), appends to different owners never
//!    meet, and sorted locking means two group deliveries cannot deadlock on
//!    each other's owners;
//! 3. the new counters are read back under the lock; each owner's entries get
//!    the versions just below its new counter, so versions are consecutive
//!    and `prev_version` is exactly the owner's previous entry;
//! 4. the entries, their search-outbox rows and the senders' versions in
//!    `inbox_sent` are written, and the transaction commits: every entry of a
//!    delivery is there, or none is (a rollback also takes back the counters).
//!
//! InnoDB may still pick a deadlock victim (gap locks of unique checks); the
//! whole transaction is then rolled back and retried.

use std::collections::hash_map::Entry as MapEntry;
use std::collections::{BTreeMap, HashMap};

use sqlx::mysql::{MySql, MySqlConnection, MySqlPool};
use sqlx::query::Query;

use bubble_core::ports::{AppendOutcome, Appended, Delivery};
use bubble_core::{AppId, Direction, Error, InboxEntry, Result, SendReceipt, UserId};

use crate::error::{is_duplicate, map_err};
use crate::rows::{self, dynamic};

type Args = sqlx::mysql::MySqlArguments;

/// Most owners per counter upsert / `IN (…)` list.
pub(crate) const OWNER_CHUNK: usize = 1000;
/// Most inbox rows per insert.
const ROW_CHUNK: usize = 256;
/// Content bytes after which an insert is cut (well below max_allowed_packet).
const BYTES_CHUNK: usize = 4 << 20;
/// Most dedup keys per insert.
const SENT_CHUNK: usize = 500;

const INSERT_INBOX_HEAD: &str = "INSERT INTO inbox (app, owner, version, conv_kind, conv_id, \
    direct, status, entry_kind, server_msg_id, sender, sender_device, client_msg_id, client_seq, \
    create_time, server_time, read_up_to, content_type, content) VALUES ";
const INBOX_COLS: usize = 18;

const FIND_SENT: &str = "SELECT server_msg_id, version, CAST(0 AS UNSIGNED) AS seq, server_time \
     FROM inbox_sent WHERE app = ? AND sender = ? AND client_msg_id = ?";

/// One delivery of a batch.
#[derive(Clone, Copy)]
pub(crate) struct Job<'a> {
    pub(crate) app: &'a AppId,
    pub(crate) delivery: &'a Delivery,
}

/// What the batch does with one job.
#[derive(Clone)]
enum Plan {
    /// Write its entries.
    Write,
    /// Accepted before (by an earlier transaction): answer with this.
    Duplicate(SendReceipt),
    /// An earlier job of this batch has the same dedup key: answer as it does.
    SameAs(usize),
    /// Decided without writing (an empty delivery).
    Done(AppendOutcome),
}

fn b(s: &str) -> &[u8] {
    s.as_bytes()
}

/// The receipt a retry of `d` gets back once it was appended with `appended`.
fn first_receipt(d: &Delivery, appended: &[Appended]) -> SendReceipt {
    SendReceipt {
        duplicate: true,
        ..d.receipt(appended)
    }
}

/// Whether an entry starts out unread for its owner (`status = 0`).
fn starts_unread(e: &InboxEntry) -> bool {
    e.direction == Direction::In && e.kind.counts_as_unread()
}

/// The receipt of an accepted client message id, on `conn`.
pub(crate) async fn find_sent_on(
    conn: &mut MySqlConnection,
    app: &AppId,
    sender: &UserId,
    client_msg_id: &str,
) -> Result<Option<SendReceipt>> {
    let row = sqlx::query(FIND_SENT)
        .bind(b(app.as_str()))
        .bind(b(sender.as_str()))
        .bind(b(client_msg_id))
        .fetch_optional(conn)
        .await
        .map_err(map_err)?;
    row.as_ref().map(rows::receipt).transpose()
}

/// Writes `jobs` in one transaction and says what happened to each, in order.
/// Any error fails the whole batch (nothing is written).
pub(crate) async fn write_batch(pool: &MySqlPool, jobs: &[Job<'_>]) -> Result<Vec<AppendOutcome>> {
    let mut tx = pool.begin().await.map_err(map_err)?;
    let (mut plans, keyed) = plan(&mut tx, jobs).await?;
    claim_dedup_keys(&mut tx, jobs, &keyed, &mut plans).await?;
    let writing: Vec<usize> = (0..jobs.len())
        .filter(|&i| matches!(plans[i], Plan::Write))
        .collect();
    let mut appended = allocate_versions(&mut tx, jobs, &writing).await?;
    insert_entries(&mut tx, jobs, &writing, &appended).await?;
    insert_outbox(&mut tx, jobs, &writing, &appended).await?;
    record_sender_versions(&mut tx, jobs, &keyed, &plans, &appended).await?;
    tx.commit().await.map_err(map_err)?;

    let mut outcomes = Vec::with_capacity(jobs.len());
    for (i, plan) in plans.into_iter().enumerate() {
        let outcome = match plan {
            Plan::Write => AppendOutcome::Appended(appended.remove(&i).unwrap_or_default()),
            Plan::Duplicate(r) => AppendOutcome::Duplicate(r),
            Plan::Done(outcome) => outcome,
            Plan::SameAs(first) => match &outcomes[first] {
                AppendOutcome::Appended(a) => {
                    AppendOutcome::Duplicate(first_receipt(jobs[first].delivery, a))
                }
                AppendOutcome::Duplicate(r) => AppendOutcome::Duplicate(*r),
            },
        };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Decides what each job needs: empty deliveries are answered at once, a
/// dedup key repeated within the batch answers as its first job. Returns the
/// plans and the jobs whose keys must be claimed, in the keys' sorted order
/// (every transaction takes these locks in the same order).
async fn plan(conn: &mut MySqlConnection, jobs: &[Job<'_>]) -> Result<(Vec<Plan>, Vec<usize>)> {
    let mut plans = vec![Plan::Write; jobs.len()];
    let mut firsts: HashMap<(&str, &str, &str), usize> = HashMap::new();
    let mut keyed: Vec<usize> = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        let d = job.delivery;
        if d.entries.is_empty() {
            // Nothing to write; a known key still answers as a duplicate.
            let found = if d.client_msg_id.is_empty() {
                None
            } else {
                find_sent_on(conn, job.app, &d.sender, &d.client_msg_id).await?
            };
            plans[i] = Plan::Done(match found {
                Some(r) => AppendOutcome::Duplicate(r),
                None => AppendOutcome::Appended(Vec::new()),
            });
        } else if !d.client_msg_id.is_empty() {
            match firsts.entry(dedup_key(job)) {
                MapEntry::Occupied(first) => plans[i] = Plan::SameAs(*first.get()),
                MapEntry::Vacant(slot) => {
                    slot.insert(i);
                    keyed.push(i);
                }
            }
        }
    }
    keyed.sort_by(|x, y| dedup_key(&jobs[*x]).cmp(&dedup_key(&jobs[*y])));
    Ok((plans, keyed))
}

fn dedup_key<'a>(job: &Job<'a>) -> (&'a str, &'a str, &'a str) {
    (
        job.app.as_str(),
        job.delivery.sender.as_str(),
        job.delivery.client_msg_id.as_str(),
    )
}

const INSERT_SENT_HEAD: &str = "INSERT INTO inbox_sent (app, sender, client_msg_id, \
    server_msg_id, version, server_time) VALUES ";

/// Step 1: inserts the dedup keys. A key taken by an earlier transaction
/// turns its job into a [`Plan::Duplicate`] with the stored receipt.
async fn claim_dedup_keys(
    conn: &mut MySqlConnection,
    jobs: &[Job<'_>],
    keyed: &[usize],
    plans: &mut [Plan],
) -> Result<()> {
    for chunk in keyed.chunks(SENT_CHUNK) {
        let sql = format!("{INSERT_SENT_HEAD}{}", rows::values(chunk.len(), 6));
        let mut q = sqlx::query(dynamic(sql));
        for &i in chunk {
            q = bind_sent(q, jobs[i], 0);
        }
        match q.execute(&mut *conn).await {
            Ok(_) => continue,
            Err(e) if is_duplicate(&e) => {}
            Err(e) => return Err(map_err(e)),
        }
        // Some key was accepted before. The failed statement wrote nothing
        // (InnoDB rolls back the statement); go key by key to learn which.
        for &i in chunk {
            let one = format!("{INSERT_SENT_HEAD}{}", rows::row_placeholders(6));
            match bind_sent(sqlx::query(dynamic(one)), jobs[i], 0)
                .execute(&mut *conn)
                .await
            {
                Ok(_) => {}
                Err(e) if is_duplicate(&e) => {
                    let d = jobs[i].delivery;
                    let receipt = find_sent_on(conn, jobs[i].app, &d.sender, &d.client_msg_id)
                        .await?
                        .ok_or_else(|| {
                            Error::internal(format!(
                                "mysql: inbox_sent reported {:?} of {} taken but holds no row \
                                 for it",
                                d.client_msg_id, d.sender
                            ))
                        })?;
                    plans[i] = Plan::Duplicate(receipt);
                }
                Err(e) => return Err(map_err(e)),
            }
        }
    }
    Ok(())
}

/// Steps 2 and 3: raises every owner's counter by its number of entries
/// (owners in sorted order), reads the new counters back under their locks,
/// and gives each entry its version: the owner's entries take the versions
/// just below its new counter, in job and entry order.
async fn allocate_versions(
    conn: &mut MySqlConnection,
    jobs: &[Job<'_>],
    writing: &[usize],
) -> Result<HashMap<usize, Vec<Appended>>> {
    let mut counts: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for &i in writing {
        for e in &jobs[i].delivery.entries {
            *counts
                .entry((jobs[i].app.as_str(), e.owner.as_str()))
                .or_default() += 1;
        }
    }
    let owners: Vec<((&str, &str), u64)> = counts.into_iter().collect();
    for chunk in owners.chunks(OWNER_CHUNK) {
        let sql = format!(
            "INSERT INTO inbox_versions (app, owner, version) VALUES {} \
             ON DUPLICATE KEY UPDATE version = version + VALUES(version)",
            rows::values(chunk.len(), 3)
        );
        let mut q = sqlx::query(dynamic(sql));
        for ((app, owner), n) in chunk {
            q = q.bind(b(app)).bind(b(owner)).bind(*n);
        }
        q.execute(&mut *conn).await.map_err(map_err)?;
    }

    let mut by_app: BTreeMap<&str, Vec<(&str, u64)>> = BTreeMap::new();
    for ((app, owner), n) in &owners {
        by_app.entry(*app).or_default().push((*owner, *n));
    }
    let mut next: HashMap<(&str, &str), u64> = HashMap::with_capacity(owners.len());
    for (app, list) in &by_app {
        for chunk in list.chunks(OWNER_CHUNK) {
            let sql = format!(
                "SELECT owner, version FROM inbox_versions WHERE app = ? AND owner IN {} \
                 FOR UPDATE",
                rows::row_placeholders(chunk.len())
            );
            let mut q = sqlx::query(dynamic(sql)).bind(b(app));
            for (owner, _) in chunk {
                q = q.bind(b(owner));
            }
            let found = q.fetch_all(&mut *conn).await.map_err(map_err)?;
            let mut ends: HashMap<String, u64> = HashMap::with_capacity(found.len());
            for row in &found {
                ends.insert(rows::text(row, "owner")?, rows::get(row, "version")?);
            }
            for (owner, n) in chunk {
                let end = ends.get(*owner).copied().ok_or_else(|| {
                    Error::internal(format!(
                        "mysql: inbox_versions has no row for {owner} right after raising it"
                    ))
                })?;
                next.insert((*app, *owner), end - n + 1);
            }
        }
    }

    let mut appended = HashMap::with_capacity(writing.len());
    for &i in writing {
        let mut out = Vec::with_capacity(jobs[i].delivery.entries.len());
        for e in &jobs[i].delivery.entries {
            let slot = next
                .get_mut(&(jobs[i].app.as_str(), e.owner.as_str()))
                .expect("every owner got a counter above");
            out.push(Appended {
                version: *slot,
                prev_version: *slot - 1,
            });
            *slot += 1;
        }
        appended.insert(i, out);
    }
    Ok(appended)
}

/// Step 4a: the inbox rows, in multi-row inserts cut by row count and bytes.
async fn insert_entries(
    conn: &mut MySqlConnection,
    jobs: &[Job<'_>],
    writing: &[usize],
    appended: &HashMap<usize, Vec<Appended>>,
) -> Result<()> {
    let pending: Vec<(&AppId, &InboxEntry, u64)> = writing
        .iter()
        .flat_map(|&i| {
            jobs[i]
                .delivery
                .entries
                .iter()
                .zip(&appended[&i])
                .map(move |(e, a)| (jobs[i].app, e, a.version))
        })
        .collect();
    let mut start = 0;
    while start < pending.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < pending.len()
            && end - start < ROW_CHUNK
            && (end == start || bytes < BYTES_CHUNK)
        {
            bytes += pending[end].1.content.body.len();
            end += 1;
        }
        let sql = format!(
            "{INSERT_INBOX_HEAD}{}",
            rows::values(end - start, INBOX_COLS)
        );
        let mut q = sqlx::query(dynamic(sql));
        for (app, e, version) in &pending[start..end] {
            q = bind_entry(q, app, e, *version);
        }
        q.execute(&mut *conn).await.map_err(map_err)?;
        start = end;
    }
    Ok(())
}

/// Step 4b: the search outbox rows of deliveries that want indexing.
async fn insert_outbox(
    conn: &mut MySqlConnection,
    jobs: &[Job<'_>],
    writing: &[usize],
    appended: &HashMap<usize, Vec<Appended>>,
) -> Result<()> {
    let outbox: Vec<(&AppId, &InboxEntry, u64)> = writing
        .iter()
        .filter(|&&i| jobs[i].delivery.index)
        .flat_map(|&i| {
            jobs[i]
                .delivery
                .entries
                .iter()
                .zip(&appended[&i])
                .map(move |(e, a)| (jobs[i].app, e, a.version))
        })
        .collect();
    for chunk in outbox.chunks(OWNER_CHUNK) {
        let sql = format!(
            "INSERT INTO inbox_index_outbox (app, owner, version) VALUES {}",
            rows::values(chunk.len(), 3)
        );
        let mut q = sqlx::query(dynamic(sql));
        for (app, e, version) in chunk {
            q = q
                .bind(b(app.as_str()))
                .bind(b(e.owner.as_str()))
                .bind(*version);
        }
        q.execute(&mut *conn).await.map_err(map_err)?;
    }
    Ok(())
}

/// Step 4c: the sender's own version goes into the receipt a retry gets.
async fn record_sender_versions(
    conn: &mut MySqlConnection,
    jobs: &[Job<'_>],
    keyed: &[usize],
    plans: &[Plan],
    appended: &HashMap<usize, Vec<Appended>>,
) -> Result<()> {
    let versions: Vec<(usize, u64)> = keyed
        .iter()
        .filter(|&&i| matches!(plans[i], Plan::Write))
        .map(|&i| (i, jobs[i].delivery.receipt(&appended[&i]).version))
        .filter(|&(_, v)| v > 0)
        .collect();
    for chunk in versions.chunks(SENT_CHUNK) {
        let sql = format!(
            "{INSERT_SENT_HEAD}{} ON DUPLICATE KEY UPDATE version = VALUES(version)",
            rows::values(chunk.len(), 6)
        );
        let mut q = sqlx::query(dynamic(sql));
        for &(i, v) in chunk {
            q = bind_sent(q, jobs[i], v);
        }
        q.execute(&mut *conn).await.map_err(map_err)?;
    }
    Ok(())
}

fn bind_sent<'q>(q: Query<'q, MySql, Args>, job: Job<'_>, version: u64) -> Query<'q, MySql, Args> {
    let d = job.delivery;
    let first = &d.entries[0];
    q.bind(b(job.app.as_str()))
        .bind(b(d.sender.as_str()))
        .bind(b(&d.client_msg_id))
        .bind(&first.server_msg_id.0[..])
        .bind(version)
        .bind(first.server_time)
}

fn bind_entry<'q>(
    q: Query<'q, MySql, Args>,
    app: &AppId,
    e: &InboxEntry,
    version: u64,
) -> Query<'q, MySql, Args> {
    q.bind(b(app.as_str()))
        .bind(b(e.owner.as_str()))
        .bind(version)
        .bind(e.conversation.kind as u8)
        .bind(b(e.conversation.id()))
        .bind(e.direction.as_i8())
        .bind(if starts_unread(e) { 0i8 } else { 1i8 })
        .bind(e.kind as u8)
        .bind(&e.server_msg_id.0[..])
        .bind(b(e.sender.as_str()))
        .bind(b(e.sender_device.as_str()))
        .bind(b(&e.client_msg_id))
        .bind(e.client_seq)
        .bind(e.create_time)
        .bind(e.server_time)
        .bind(e.read_up_to)
        .bind(e.content.kind as u8)
        .bind(&e.content.body[..])
}

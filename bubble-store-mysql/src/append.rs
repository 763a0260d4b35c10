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
//! 4. each delivery's message is written once into `messages` (entries of one
//!    delivery whose shared fields are equal share a row), then one small
//!    inbox row per entry naming it, one search-outbox row per delivery that
//!    wants indexing, and the senders' versions in `inbox_sent`; the
//!    transaction commits: every entry of a delivery is there, or none is (a
//!    rollback also takes back the counters).
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
/// Most message rows per insert (11 placeholders each, of at most 65,535).
const MESSAGE_CHUNK: usize = 1000;
/// Most inbox rows per insert: they are small now, so one statement takes a
/// whole batch of group deliveries (9 placeholders each, of at most 65,535).
const INBOX_CHUNK: usize = 4000;
/// Content bytes after which an insert is cut (well below max_allowed_packet).
const BYTES_CHUNK: usize = 4 << 20;
/// Most dedup keys per insert.
const SENT_CHUNK: usize = 500;

const INSERT_MESSAGE_HEAD: &str = "INSERT INTO messages (app, server_msg_id, entry_kind, sender, \
    sender_device, client_msg_id, client_seq, create_time, server_time, content_type, content) \
    VALUES ";
const MESSAGE_COLS: usize = 11;

const INSERT_INBOX_HEAD: &str = "INSERT INTO inbox (app, owner, version, conv_kind, conv_id, \
    direct, status, read_up_to, message_id) VALUES ";
const INBOX_COLS: usize = 9;

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
pub(crate) async fn write_batch(
    pool: &MySqlPool,
    ids: MessageIds,
    jobs: &[Job<'_>],
) -> Result<Vec<AppendOutcome>> {
    let mut tx = pool.begin().await.map_err(map_err)?;
    let (mut plans, keyed) = plan(&mut tx, jobs).await?;
    claim_dedup_keys(&mut tx, jobs, &keyed, &mut plans).await?;
    let writing: Vec<usize> = (0..jobs.len())
        .filter(|&i| matches!(plans[i], Plan::Write))
        .collect();
    let mut appended = allocate_versions(&mut tx, jobs, &writing).await?;
    let messages = distinct_messages(jobs, &writing);
    let message_ids = insert_messages(&mut tx, &messages, ids).await?;
    insert_entries(&mut tx, jobs, &writing, &appended, &messages, &message_ids).await?;
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

/// How the server numbers the rows of one multi-row insert into `messages`
/// (read once when the store opens, see `client`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MessageIds {
    /// `innodb_autoinc_lock_mode` 0 or 1: the ids of one `INSERT … VALUES`
    /// are consecutive (`step` apart, the server's `auto_increment_increment`)
    /// from the one the server reports as the last insert id.
    Consecutive { step: u64 },
    /// Lock mode 2 (MySQL 8's default): one statement's ids may interleave
    /// with a concurrent one's, so each message row gets its own statement.
    OnePerStatement,
}

/// The message rows of a batch: the distinct messages of each delivery, and
/// for every written entry the index of its message row.
struct Messages<'a> {
    /// (app, the first entry that carries the message's fields).
    rows: Vec<(&'a AppId, &'a InboxEntry)>,
    /// Per job being written, per entry: its index in `rows`.
    of_entry: HashMap<usize, Vec<usize>>,
}

/// Whether two entries of one delivery carry the same message fields and can
/// share a row. Compared field by field: a delivery may mix entries of
/// different messages or kinds, and nothing promises it does not.
fn same_message(a: &InboxEntry, b: &InboxEntry) -> bool {
    a.kind == b.kind
        && a.server_msg_id == b.server_msg_id
        && a.sender == b.sender
        && a.sender_device == b.sender_device
        && a.client_msg_id == b.client_msg_id
        && a.client_seq == b.client_seq
        && a.create_time == b.create_time
        && a.server_time == b.server_time
        && a.content.kind == b.content.kind
        && a.content.body == b.content.body
}

/// Groups each delivery's entries into message rows. Rows are never shared
/// across deliveries: each delivery owns its rows, so nothing written by one
/// delivery changes when another is written or fails.
fn distinct_messages<'a>(jobs: &[Job<'a>], writing: &[usize]) -> Messages<'a> {
    let mut rows: Vec<(&'a AppId, &'a InboxEntry)> = Vec::new();
    let mut of_entry = HashMap::with_capacity(writing.len());
    for &i in writing {
        let first_row = rows.len();
        let mut refs = Vec::with_capacity(jobs[i].delivery.entries.len());
        for e in &jobs[i].delivery.entries {
            // A delivery holds one message nearly always: the scan is short.
            let found = rows[first_row..]
                .iter()
                .position(|(_, m)| same_message(m, e));
            refs.push(match found {
                Some(k) => first_row + k,
                None => {
                    rows.push((jobs[i].app, e));
                    rows.len() - 1
                }
            });
        }
        of_entry.insert(i, refs);
    }
    Messages { rows, of_entry }
}

/// Step 4a: the message rows, in multi-row inserts cut by row count and
/// bytes. Returns each row's id.
async fn insert_messages(
    conn: &mut MySqlConnection,
    messages: &Messages<'_>,
    ids: MessageIds,
) -> Result<Vec<u64>> {
    let most_rows = match ids {
        MessageIds::Consecutive { .. } => MESSAGE_CHUNK,
        MessageIds::OnePerStatement => 1,
    };
    let rows = &messages.rows;
    let mut out = Vec::with_capacity(rows.len());
    let mut start = 0;
    while start < rows.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < rows.len() && end - start < most_rows && (end == start || bytes < BYTES_CHUNK) {
            bytes += rows[end].1.content.body.len();
            end += 1;
        }
        let sql = format!(
            "{INSERT_MESSAGE_HEAD}{}",
            rows::values(end - start, MESSAGE_COLS)
        );
        let mut q = sqlx::query(dynamic(sql));
        for (app, e) in &rows[start..end] {
            q = bind_message(q, app, e);
        }
        let done = q.execute(&mut *conn).await.map_err(map_err)?;
        let n = (end - start) as u64;
        if done.rows_affected() != n || done.last_insert_id() == 0 {
            return Err(Error::internal(format!(
                "mysql: inserting {n} message rows reported {} rows and first id {}",
                done.rows_affected(),
                done.last_insert_id()
            )));
        }
        let step = match ids {
            MessageIds::Consecutive { step } => step,
            MessageIds::OnePerStatement => 0,
        };
        out.extend((0..n).map(|k| done.last_insert_id() + k * step));
        start = end;
    }
    Ok(out)
}

/// Step 4b: the inbox rows, each naming its message row.
async fn insert_entries(
    conn: &mut MySqlConnection,
    jobs: &[Job<'_>],
    writing: &[usize],
    appended: &HashMap<usize, Vec<Appended>>,
    messages: &Messages<'_>,
    message_ids: &[u64],
) -> Result<()> {
    let pending: Vec<(&AppId, &InboxEntry, u64, u64)> = writing
        .iter()
        .flat_map(|&i| {
            jobs[i]
                .delivery
                .entries
                .iter()
                .zip(&appended[&i])
                .zip(&messages.of_entry[&i])
                .map(move |((e, a), &m)| (jobs[i].app, e, a.version, message_ids[m]))
        })
        .collect();
    for chunk in pending.chunks(INBOX_CHUNK) {
        let sql = format!(
            "{INSERT_INBOX_HEAD}{}",
            rows::values(chunk.len(), INBOX_COLS)
        );
        let mut q = sqlx::query(dynamic(sql));
        for (app, e, version, message_id) in chunk {
            q = bind_entry(q, app, e, *version, *message_id);
        }
        q.execute(&mut *conn).await.map_err(map_err)?;
    }
    Ok(())
}

/// The `owners` column of a search-outbox row: each owner as one length byte
/// and its bytes. Owner ids fit `VARBINARY(128)`, so one byte holds a length.
fn encode_owners(entries: &[InboxEntry]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(entries.iter().map(|e| e.owner.as_str().len() + 1).sum());
    for e in entries {
        let id = e.owner.as_str().as_bytes();
        let len = u8::try_from(id.len()).map_err(|_| {
            Error::invalid(format!(
                "mysql: owner id of {} bytes is longer than the 128 an inbox row holds",
                id.len()
            ))
        })?;
        out.push(len);
        out.extend_from_slice(id);
    }
    Ok(out)
}

/// Reads an `owners` column written by [`encode_owners`].
pub(crate) fn decode_owners(mut raw: &[u8]) -> Result<Vec<UserId>> {
    let mut owners = Vec::new();
    while let Some((&len, rest)) = raw.split_first() {
        let len = usize::from(len);
        if rest.len() < len {
            return Err(Error::internal(
                "mysql: an inbox_index_outbox.owners value ends inside an owner id",
            ));
        }
        let id = std::str::from_utf8(&rest[..len]).map_err(|_| {
            Error::internal(
                "mysql: an inbox_index_outbox.owners value holds an id that is not UTF-8",
            )
        })?;
        owners.push(UserId::new(id));
        raw = &rest[len..];
    }
    Ok(owners)
}

/// Step 4c: one search-outbox row per delivery that wants indexing, naming
/// its first entry (the message the indexer reads) and every owner.
async fn insert_outbox(
    conn: &mut MySqlConnection,
    jobs: &[Job<'_>],
    writing: &[usize],
    appended: &HashMap<usize, Vec<Appended>>,
) -> Result<()> {
    let mut outbox: Vec<(&AppId, &InboxEntry, u64, Vec<u8>)> = Vec::new();
    for &i in writing.iter().filter(|&&i| jobs[i].delivery.index) {
        let entries = &jobs[i].delivery.entries;
        outbox.push((
            jobs[i].app,
            &entries[0],
            appended[&i][0].version,
            encode_owners(entries)?,
        ));
    }
    let mut start = 0;
    while start < outbox.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < outbox.len()
            && end - start < OWNER_CHUNK
            && (end == start || bytes < BYTES_CHUNK)
        {
            bytes += outbox[end].3.len();
            end += 1;
        }
        let sql = format!(
            "INSERT INTO inbox_index_outbox (app, owner, version, owners) VALUES {}",
            rows::values(end - start, 4)
        );
        let mut q = sqlx::query(dynamic(sql));
        for (app, e, version, owners) in &outbox[start..end] {
            q = q
                .bind(b(app.as_str()))
                .bind(b(e.owner.as_str()))
                .bind(*version)
                .bind(&owners[..]);
        }
        q.execute(&mut *conn).await.map_err(map_err)?;
        start = end;
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

fn bind_message<'q>(
    q: Query<'q, MySql, Args>,
    app: &AppId,
    e: &InboxEntry,
) -> Query<'q, MySql, Args> {
    q.bind(b(app.as_str()))
        .bind(&e.server_msg_id.0[..])
        .bind(e.kind as u8)
        .bind(b(e.sender.as_str()))
        .bind(b(e.sender_device.as_str()))
        .bind(b(&e.client_msg_id))
        .bind(e.client_seq)
        .bind(e.create_time)
        .bind(e.server_time)
        .bind(e.content.kind as u8)
        .bind(&e.content.body[..])
}

fn bind_entry<'q>(
    q: Query<'q, MySql, Args>,
    app: &AppId,
    e: &InboxEntry,
    version: u64,
    message_id: u64,
) -> Query<'q, MySql, Args> {
    q.bind(b(app.as_str()))
        .bind(b(e.owner.as_str()))
        .bind(version)
        .bind(e.conversation.kind as u8)
        .bind(b(e.conversation.id()))
        .bind(e.direction.as_i8())
        .bind(if starts_unread(e) { 0i8 } else { 1i8 })
        .bind(e.read_up_to)
        .bind(message_id)
}

//! The inbox append: one transaction writes a batch of deliveries into
//! per-owner inboxes, one version space per owner, in four round trips.
//!
//! # How an append stays ordered without a global lock
//!
//! One transaction writes one or more deliveries (a batch):
//!
//! 1. `BEGIN`;
//! 2. each owner's counter in `inbox_versions` is raised by the number of
//!    entries it gets, in one upsert with the owners in sorted order, and the
//!    new counters are read back (one round trip, two
//!    statements). The upsert takes the owner's row lock, held to commit:
//!    appends to the same owner queue on that row (on any node), appends to
//!    different owners never meet, and sorted locking means two group
//!    deliveries cannot deadlock on each other's owners. Each owner's entries
//!    get the versions just below its new counter, so versions are
//!    consecutive and `prev_version` is exactly the owner's previous entry;
//! 3. one round trip writes the rest: the dedup keys `(app, sender,
//!    client_msg_id)` with their receipts into `inbox_sent` (sorted), each
//!    delivery's message once into `messages` (entries of one delivery whose
//!    shared fields are equal share a row), one small inbox row per entry
//!    naming its message row, one search-outbox row per delivery that wants
//!    indexing, edits of the messages they name (one update of the message
//!    rows each), and the owners' conversation-list rows (`conversations`:
//!    one upsert for the batch's messages, one update per recall, delete,
//!    read cursor or receipt, one upsert per settings entry). A key
//!    accepted before fails the first statement (a racing first attempt
//!    that has not committed yet makes it wait, so exactly one of them
//!    writes): the transaction is rolled back, the stored receipts are
//!    looked up, and the batch is written again without those deliveries,
//!    which answer with the receipt;
//! 4. `COMMIT`: every entry of a delivery is there, or none is (a rollback
//!    also takes back the counters).
//!
//! Steps 2 and 3 send several statements in one text-protocol round trip,
//! values written in as literals ([`Sql`]): a batch's statements differ in
//! shape from one batch to the next, so as prepared statements each would
//! cost a prepare round trip too, and on a loaded machine every round trip
//! waits for two processes to be scheduled.
//!
//! InnoDB may still pick a deadlock victim (gap locks of unique checks); the
//! whole transaction is then rolled back and retried.

use std::collections::hash_map::Entry as MapEntry;
use std::collections::{BTreeMap, HashMap, btree_map};

use sqlx::Connection;
use sqlx::mysql::{MySqlConnection, MySqlPool};

use bubble_core::ports::{AppendOutcome, Appended, Delivery};
use bubble_core::{
    AppId, ConversationSettings, EntryKind, Error, ErrorKind, InboxEntry, ListRowChange, MsgId,
    Result, SendReceipt, UserId,
};

use crate::error::{commit_err, is_duplicate, map_err};
use crate::galera::{Galera, STILL_OPEN};
use crate::retry::Replay;
use crate::rows::{self, Sql, b, dynamic};

/// Most owners per counter upsert / `IN (…)` list.
pub(crate) const OWNER_CHUNK: usize = 1000;
/// Most message rows per insert.
const MESSAGE_CHUNK: usize = 1000;
/// Most inbox rows per insert: they are small now (about 300 bytes of text
/// each), so one statement takes a whole batch of group deliveries.
const INBOX_CHUNK: usize = 4000;
/// Content bytes after which an insert is cut: written as hex, twice that
/// in statement text, well below MariaDB's default max_allowed_packet (16 MiB).
const BYTES_CHUNK: usize = 2 << 20;
/// Statement text after which a round trip is closed and the next begun.
const PACKET_TEXT: usize = 6 << 20;
/// Most dedup keys per insert.
const SENT_CHUNK: usize = 500;

const INSERT_MESSAGE_HEAD: &str = "INSERT INTO messages (app, server_msg_id, entry_kind, sender, \
    sender_device, client_msg_id, client_seq, create_time, server_time, content_type, content, \
    meta) VALUES ";

const INSERT_INBOX_HEAD: &str = "INSERT INTO inbox (app, owner, version, conv_kind, conv_id, \
    direct, status, read_up_to, message_id) VALUES ";

const FIND_SENT: &str = "SELECT server_msg_id, version, CAST(0 AS UNSIGNED) AS seq, server_time \
     FROM inbox_sent WHERE app = ? AND sender = ? AND client_msg_id = ?";

/// One delivery of a batch.
#[derive(Clone, Copy)]
pub(crate) struct Job<'a> {
    pub(crate) app: &'a AppId,
    pub(crate) delivery: &'a Delivery,
}

/// Whether `jobs` may be written again on another node after their node
/// failed at COMMIT (outcome unknown): when every delivery that writes
/// carries a client message id. Its dedup key then decides: if the first
/// COMMIT went through (and Galera replicated it), the second attempt finds
/// the key in `inbox_sent` and answers `Duplicate` with the stored receipt,
/// so the message is stored once; if not, the second attempt writes it.
/// A delivery without a key could be stored twice, so a batch holding one
/// is run again only when it failed before COMMIT (rolled back for sure).
pub(crate) fn replay(jobs: &[Job<'_>]) -> Replay {
    let keyed = jobs
        .iter()
        .all(|j| j.delivery.entries.is_empty() || !j.delivery.client_msg_id.is_empty());
    if keyed {
        Replay::Always
    } else {
        Replay::BeforeCommit
    }
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

/// The receipt a retry of `d` gets back once it was appended with `appended`.
fn first_receipt(d: &Delivery, appended: &[Appended]) -> SendReceipt {
    SendReceipt {
        duplicate: true,
        prev_version: 0,
        ..d.receipt(appended)
    }
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
    galera: Galera,
    jobs: &[Job<'_>],
) -> Result<Vec<AppendOutcome>> {
    let mut conn = pool.acquire().await.map_err(map_err)?;
    let (mut plans, keyed) = plan(&mut conn, jobs).await?;
    // Each failed attempt turns at least one job into a duplicate.
    let mut appended = loop {
        let writing: Vec<usize> = (0..jobs.len())
            .filter(|&i| matches!(plans[i], Plan::Write))
            .collect();
        let mut tx = conn.begin().await.map_err(map_err)?;
        match write_once(&mut tx, ids, galera, jobs, &writing, &keyed).await {
            Ok(appended) => {
                tx.commit().await.map_err(commit_err)?;
                if galera.0 {
                    confirm_committed(&mut conn, jobs, &appended).await?;
                }
                break appended;
            }
            Err(Failed::Db(e)) if is_duplicate(&e) => {
                tx.rollback().await.map_err(map_err)?;
                let mut found = 0;
                for &i in &keyed {
                    if !matches!(plans[i], Plan::Write) {
                        continue;
                    }
                    let d = jobs[i].delivery;
                    if let Some(r) =
                        find_sent_on(&mut conn, jobs[i].app, &d.sender, &d.client_msg_id).await?
                    {
                        plans[i] = Plan::Duplicate(r);
                        found += 1;
                    }
                }
                if found == 0 {
                    return Err(Error::internal(format!(
                        "mysql: an append failed on a duplicate key but no dedup key of its \
                         batch is taken: {}",
                        map_err(e).message()
                    )));
                }
            }
            Err(Failed::Db(e)) => return Err(map_err(e)),
            Err(Failed::Other(e)) => return Err(e),
        }
    };

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

/// On a Galera node, that the transaction that wrote `appended` was
/// committed: a node can abort it in the last moment with no error (see
/// `galera`), and then the COMMIT after it commits nothing. One entry
/// tells: the guards between statements leave a transaction all written
/// or not at all, and the message id in it is this batch's alone.
async fn confirm_committed(
    conn: &mut MySqlConnection,
    jobs: &[Job<'_>],
    appended: &HashMap<usize, Vec<Appended>>,
) -> Result<()> {
    let Some((i, e, a)) = appended.iter().find_map(|(&i, list)| {
        let d = jobs[i].delivery;
        Some((i, d.entries.first()?, list.first()?))
    }) else {
        return Ok(());
    };
    let found: Option<(u64,)> = sqlx::query_as(
        "SELECT i.message_id FROM inbox i JOIN messages m ON m.id = i.message_id \
         WHERE i.app = ? AND i.owner = ? AND i.version = ? AND m.server_msg_id = ?",
    )
    .bind(b(jobs[i].app.as_str()))
    .bind(b(e.owner.as_str()))
    .bind(a.version)
    .bind(&e.server_msg_id.0[..])
    .fetch_optional(&mut *conn)
    .await
    .map_err(map_err)?;
    match found {
        Some(_) => Ok(()),
        None => Err(Error::new(
            ErrorKind::Conflict,
            "mysql: the Galera node aborted the append's transaction as it committed; \
             nothing was written (retried)",
        )),
    }
}

/// Why one attempt failed: the database said no (a duplicate key may mean a
/// retry of an accepted message), or the store found something wrong.
enum Failed {
    Db(sqlx::Error),
    Other(Error),
}

impl From<sqlx::Error> for Failed {
    fn from(e: sqlx::Error) -> Self {
        Failed::Db(e)
    }
}

/// Steps 2 and 3 for the jobs in `writing`, on `conn` inside a transaction.
async fn write_once(
    conn: &mut MySqlConnection,
    ids: MessageIds,
    galera: Galera,
    jobs: &[Job<'_>],
    writing: &[usize],
    keyed: &[usize],
) -> std::result::Result<HashMap<usize, Vec<Appended>>, Failed> {
    if writing.is_empty() {
        return Ok(HashMap::new());
    }
    let appended = allocate_versions(conn, jobs, writing).await?;
    let messages = distinct_messages(jobs, writing);
    let mut stmts = Vec::new();
    sent_statements(&mut stmts, jobs, writing, keyed, &appended);
    let message_vars = message_statements(&mut stmts, &messages, ids);
    entry_statements(
        &mut stmts,
        jobs,
        writing,
        &appended,
        &messages,
        &message_vars,
    );
    edit_statements(&mut stmts, &messages);
    outbox_statements(&mut stmts, jobs, writing, &appended).map_err(Failed::Other)?;
    conversation_statements(&mut stmts, jobs, writing, &appended);
    if galera.0 {
        // Nothing is written with the versions read unless the transaction
        // that took them is still open, and no statement runs after one
        // that the node aborted (see `galera`): the check goes before each
        // statement, in the same packets (no round trip; a signal stops
        // the rest of its packet).
        stmts = stmts
            .into_iter()
            .map(|s| galera.guarded(s))
            .chain([STILL_OPEN.to_owned()])
            .collect();
    }
    for text in packets(stmts) {
        sqlx::raw_sql(dynamic(text)).execute(&mut *conn).await?;
    }
    Ok(appended)
}

/// Joins statements into as few round trips as fit [`PACKET_TEXT`].
fn packets(stmts: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in stmts {
        match out.last_mut() {
            Some(last) if last.len() + s.len() < PACKET_TEXT => {
                last.push_str(";\n");
                last.push_str(&s);
            }
            _ => out.push(s),
        }
    }
    out
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

/// The dedup keys of the deliveries being written, sorted, with their
/// receipts (the sender's version is known by now).
fn sent_statements(
    stmts: &mut Vec<String>,
    jobs: &[Job<'_>],
    writing: &[usize],
    keyed: &[usize],
    appended: &HashMap<usize, Vec<Appended>>,
) {
    let keys: Vec<usize> = keyed
        .iter()
        .copied()
        .filter(|i| writing.binary_search(i).is_ok())
        .collect();
    for chunk in keys.chunks(SENT_CHUNK) {
        let mut sql = Sql::new(INSERT_SENT_HEAD);
        for (n, &i) in chunk.iter().enumerate() {
            let d = jobs[i].delivery;
            let first = &d.entries[0];
            sql.row(n);
            sql.bytes(b(jobs[i].app.as_str()));
            sql.sep().bytes(b(d.sender.as_str()));
            sql.sep().bytes(b(&d.client_msg_id));
            sql.sep().bytes(&first.server_msg_id.0);
            sql.sep().uint(d.receipt(&appended[&i]).version);
            sql.sep().int(first.server_time);
            sql.end_row();
        }
        stmts.push(sql.into_string());
    }
}

/// Step 2: raises every owner's counter by its number of entries (owners
/// in sorted order), reads the new counters back while holding their locks (one
/// round trip), and gives each entry its version: the owner's entries take
/// the versions just below its new counter, in job and entry order.
async fn allocate_versions(
    conn: &mut MySqlConnection,
    jobs: &[Job<'_>],
    writing: &[usize],
) -> std::result::Result<HashMap<usize, Vec<Appended>>, Failed> {
    let mut counts: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for &i in writing {
        for e in &jobs[i].delivery.entries {
            *counts
                .entry((jobs[i].app.as_str(), e.owner.as_str()))
                .or_default() += 1;
        }
    }
    let owners: Vec<((&str, &str), u64)> = counts.into_iter().collect();
    let mut stmts = Vec::new();
    for chunk in owners.chunks(OWNER_CHUNK) {
        let mut sql = Sql::new("INSERT INTO inbox_versions (app, owner, version) VALUES ");
        for (n, ((app, owner), count)) in chunk.iter().enumerate() {
            sql.row(n);
            sql.bytes(b(app)).sep().bytes(b(owner)).sep().uint(*count);
            sql.end_row();
        }
        sql.push(" ON DUPLICATE KEY UPDATE version = version + VALUES(version)");
        stmts.push(sql.into_string());
    }
    let mut by_app: BTreeMap<&str, Vec<(&str, u64)>> = BTreeMap::new();
    for ((app, owner), n) in &owners {
        by_app.entry(*app).or_default().push((*owner, *n));
    }
    for (app, list) in &by_app {
        for chunk in list.chunks(OWNER_CHUNK) {
            let mut sql = Sql::new("SELECT app, owner, version FROM inbox_versions WHERE app = ");
            sql.bytes(b(app));
            sql.push(" AND owner IN (");
            for (n, (owner, _)) in chunk.iter().enumerate() {
                if n > 0 {
                    sql.sep();
                }
                sql.bytes(b(owner));
            }
            // A plain read: the upsert holds these rows' locks, so it sees
            // our own new values. A locking read would also lock whatever
            // rows its plan passes over, which, with a long IN list of
            // literals, can be other owners' rows that other batches hold.
            sql.push(")");
            stmts.push(sql.into_string());
        }
    }
    let mut ends: HashMap<(String, String), u64> = HashMap::with_capacity(owners.len());
    for text in packets(stmts) {
        for row in sqlx::raw_sql(dynamic(text)).fetch_all(&mut *conn).await? {
            let key = (
                rows::text(&row, "app").map_err(Failed::Other)?,
                rows::text(&row, "owner").map_err(Failed::Other)?,
            );
            ends.insert(key, rows::get(&row, "version").map_err(Failed::Other)?);
        }
    }
    let mut next: HashMap<(&str, &str), u64> = HashMap::with_capacity(owners.len());
    for ((app, owner), n) in &owners {
        let end = ends
            .get(&((*app).to_owned(), (*owner).to_owned()))
            .copied()
            .ok_or_else(|| {
                Failed::Other(Error::internal(format!(
                    "mysql: inbox_versions has no row for {owner} right after raising it"
                )))
            })?;
        next.insert((*app, *owner), end - n + 1);
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
                .position(|(_, m)| m.same_message(e));
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

/// Step 3, the message rows: multi-row inserts cut by row count and bytes,
/// each followed by saving its first id in a session variable
/// (`@bubble_m<n>`), which the inbox rows then name. Returns, per message
/// row, the expression of its id.
fn message_statements(
    stmts: &mut Vec<String>,
    messages: &Messages<'_>,
    ids: MessageIds,
) -> Vec<String> {
    let (most_rows, step) = match ids {
        MessageIds::Consecutive { step } => (MESSAGE_CHUNK, step),
        MessageIds::OnePerStatement => (1, 0),
    };
    let rows = &messages.rows;
    let mut exprs = Vec::with_capacity(rows.len());
    let mut start = 0;
    let mut chunk = 0;
    while start < rows.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < rows.len() && end - start < most_rows && (end == start || bytes < BYTES_CHUNK) {
            bytes += rows[end].1.content.body.len() + rows[end].1.meta.as_bytes().len();
            end += 1;
        }
        let mut sql = Sql::new(INSERT_MESSAGE_HEAD);
        for (n, (app, e)) in rows[start..end].iter().enumerate() {
            sql.row(n);
            sql.bytes(b(app.as_str()));
            sql.sep().bytes(&e.server_msg_id.0);
            sql.sep().uint(e.kind as u64);
            sql.sep().bytes(b(e.sender.as_str()));
            sql.sep().bytes(b(e.sender_device.as_str()));
            sql.sep().bytes(b(&e.client_msg_id));
            sql.sep().uint(e.client_seq);
            sql.sep().int(e.create_time);
            sql.sep().int(e.server_time);
            sql.sep().uint(e.content.kind as u64);
            sql.sep().bytes(&e.content.body);
            sql.sep().bytes_or_null(rows::meta_value(&e.meta));
            sql.end_row();
        }
        stmts.push(sql.into_string());
        // LAST_INSERT_ID() after a multi-row insert is its first row's id.
        stmts.push(format!("SET @bubble_m{chunk} = LAST_INSERT_ID()"));
        exprs.extend((0..(end - start) as u64).map(|k| format!("@bubble_m{chunk} + {}", k * step)));
        chunk += 1;
        start = end;
    }
    exprs
}

/// Step 3, the inbox rows, each naming its message row.
fn entry_statements(
    stmts: &mut Vec<String>,
    jobs: &[Job<'_>],
    writing: &[usize],
    appended: &HashMap<usize, Vec<Appended>>,
    messages: &Messages<'_>,
    message_ids: &[String],
) {
    let pending: Vec<(&AppId, &InboxEntry, u64, &str)> = writing
        .iter()
        .flat_map(|&i| {
            jobs[i]
                .delivery
                .entries
                .iter()
                .zip(&appended[&i])
                .zip(&messages.of_entry[&i])
                .map(move |((e, a), &m)| (jobs[i].app, e, a.version, message_ids[m].as_str()))
        })
        .collect();
    for chunk in pending.chunks(INBOX_CHUNK) {
        let mut sql = Sql::new(INSERT_INBOX_HEAD);
        for (n, (app, e, version, message_id)) in chunk.iter().enumerate() {
            sql.row(n);
            sql.bytes(b(app.as_str()));
            sql.sep().bytes(b(e.owner.as_str()));
            sql.sep().uint(*version);
            sql.sep().uint(e.conversation.kind as u64);
            sql.sep().bytes(b(e.conversation.id()));
            sql.sep().int(i64::from(e.direction.as_i8()));
            sql.sep().int(if e.starts_unread() { 0 } else { 1 });
            sql.sep().uint(e.read_up_to);
            sql.sep().push(message_id);
            sql.end_row();
        }
        stmts.push(sql.into_string());
    }
}

/// Step 3, edits: each edit's message row(s) take its content and meta, in
/// batch order (a later edit of the same message wins). Every owner's entry
/// of a message names the same rows of its delivery, so one statement
/// serves all of them: the rows of that id in the app that are messages
/// (`ix_messages_server_msg`), not the recalls, receipts or edits that name
/// it. An edit's owners are the message's, whose counters this transaction
/// already holds, so two edits of one message never meet on these rows.
fn edit_statements(stmts: &mut Vec<String>, messages: &Messages<'_>) {
    for (app, e) in messages
        .rows
        .iter()
        .filter(|(_, e)| e.kind == EntryKind::Edit)
    {
        let mut sql = Sql::new("UPDATE messages SET content_type = ");
        sql.uint(e.content.kind as u64);
        sql.push(", content = ").bytes(&e.content.body);
        sql.push(", meta = ")
            .bytes_or_null(rows::meta_value(&e.meta));
        sql.push(" WHERE app = ").bytes(b(app.as_str()));
        sql.push(" AND server_msg_id = ").bytes(&e.server_msg_id.0);
        sql.push(" AND entry_kind = ")
            .uint(EntryKind::Message as u64);
        stmts.push(sql.into_string());
    }
}

const UPSERT_CONVERSATION_HEAD: &str = "INSERT INTO conversations (app, owner, conv_kind, \
    conv_id, activity, last_version, last_msg, unread, mention_version, unread_floor, \
    last_received) VALUES ";

/// A batch's newest message of a conversation takes the row's activity and
/// last entry; its received ones add to the unread count; the newest of
/// them that mentions the owner is the row's mention, and the newest is the
/// row's newest received. The unread floor (see `queries::MARKED_ON_CONVERSATION`)
/// moves up to the batch's first received version when nothing was unread,
/// and never stays above an unread entry. MySQL assigns left to right, each
/// assignment seeing the ones before it: the floor is decided before
/// `unread` changes.
const UPSERT_CONVERSATION_TAIL: &str = " ON DUPLICATE KEY UPDATE \
    unread_floor = IF(unread = 0, VALUES(unread_floor), LEAST(unread_floor, VALUES(unread_floor))), \
    last_received = GREATEST(last_received, VALUES(last_received)), \
    activity = VALUES(activity), \
    last_version = VALUES(last_version), last_msg = VALUES(last_msg), \
    unread = unread + VALUES(unread), \
    mention_version = GREATEST(mention_version, VALUES(mention_version))";

const UPSERT_SETTINGS_HEAD: &str = "INSERT INTO conversations (app, owner, conv_kind, conv_id, \
    activity, last_version, last_msg, flags, draft) VALUES ";

/// A settings entry replaces the row's settings whole. A row it creates has
/// no activity (0: not listed) and no last entry until a message arrives.
const UPSERT_SETTINGS_TAIL: &str =
    " ON DUPLICATE KEY UPDATE flags = VALUES(flags), draft = VALUES(draft)";

/// A conversation-list row's key: app, owner, conversation kind and id.
type ConversationKey<'a> = (&'a str, &'a str, u8, &'a str);

/// Step 3, the conversation list (the rules of
/// `InboxStore::conversations`), entry by entry in version order. Messages
/// and notices are gathered per row into one upsert, rows in key order (every
/// transaction locks them in the same order; the owners' counter locks
/// already keep two appends from meeting on a row). A recall, delete, cursor
/// or receipt is one update of its row; one that follows a gathered message
/// of its row in the batch first sends the upsert, so it sees the row as the
/// message left it (a recall of that message, a cursor after the row was
/// made). A settings entry is one upsert of its row's settings, which
/// touches no column the gathered upsert does, so the two give the same row
/// in either order and it sends nothing first. Edits and reactions leave
/// the list alone (an edit shows through the message row the list joins).
fn conversation_statements(
    stmts: &mut Vec<String>,
    jobs: &[Job<'_>],
    writing: &[usize],
    appended: &HashMap<usize, Vec<Appended>>,
) {
    let mut gathered: BTreeMap<ConversationKey<'_>, ListRowChange> = BTreeMap::new();
    for &i in writing {
        let app = jobs[i].app.as_str();
        for (e, a) in jobs[i].delivery.entries.iter().zip(&appended[&i]) {
            let key = (
                app,
                e.owner.as_str(),
                e.conversation.kind as u8,
                e.conversation.id(),
            );
            let update = match e.kind {
                EntryKind::Message | EntryKind::SystemNotice => {
                    // Versions rise in this loop's order: the later is newer.
                    match gathered.entry(key) {
                        btree_map::Entry::Occupied(mut o) => o.get_mut().add(e, a.version),
                        btree_map::Entry::Vacant(v) => {
                            v.insert(ListRowChange::new(e, a.version));
                        }
                    }
                    continue;
                }
                EntryKind::Settings => {
                    if let Some(settings) = e.meta.settings() {
                        stmts.push(upsert_settings(key, &e.server_msg_id, &settings));
                    }
                    continue;
                }
                EntryKind::Edit | EntryKind::Reaction => continue,
                EntryKind::Recall | EntryKind::Delete => RowUpdate::ShownInstead {
                    msg: &e.server_msg_id,
                    version: a.version,
                },
                EntryKind::ReadCursor => RowUpdate::ReadUpTo(e.read_up_to),
                EntryKind::ReadReceipt => RowUpdate::PeerReadUpTo(e.read_up_to),
            };
            if gathered.contains_key(&key) {
                upsert_conversations(stmts, std::mem::take(&mut gathered));
            }
            stmts.push(update_conversation(key, update));
        }
    }
    upsert_conversations(stmts, gathered);
}

/// The upserts of gathered conversation-list rows, in key order.
fn upsert_conversations(
    stmts: &mut Vec<String>,
    rows: BTreeMap<ConversationKey<'_>, ListRowChange>,
) {
    let rows: Vec<_> = rows.into_iter().collect();
    for chunk in rows.chunks(OWNER_CHUNK) {
        let mut sql = Sql::new(UPSERT_CONVERSATION_HEAD);
        for (n, ((app, owner, kind, id), row)) in chunk.iter().enumerate() {
            sql.row(n);
            sql.bytes(b(app)).sep().bytes(b(owner));
            sql.sep().uint(u64::from(*kind)).sep().bytes(b(id));
            sql.sep().uint(row.activity);
            sql.sep().uint(row.version);
            sql.sep().bytes(&row.msg.0);
            sql.sep().uint(row.unread);
            sql.sep().uint(row.mention);
            sql.sep().uint(row.unread_floor());
            sql.sep().uint(row.last_received);
            sql.end_row();
        }
        sql.push(UPSERT_CONVERSATION_TAIL);
        stmts.push(sql.into_string());
    }
}

/// The upsert of one settings entry's settings into its row (`msg`: the
/// entry's message id, the last message of a row it creates).
fn upsert_settings(
    key: ConversationKey<'_>,
    msg: &MsgId,
    settings: &ConversationSettings,
) -> String {
    let (app, owner, kind, id) = key;
    let mut sql = Sql::new(UPSERT_SETTINGS_HEAD);
    sql.row(0);
    sql.bytes(b(app)).sep().bytes(b(owner));
    sql.sep().uint(u64::from(kind)).sep().bytes(b(id));
    sql.sep().uint(0).sep().uint(0).sep().bytes(&msg.0);
    sql.sep().uint(u64::from(settings.flags()));
    sql.sep().bytes(b(&settings.draft));
    sql.end_row();
    sql.push(UPSERT_SETTINGS_TAIL);
    sql.into_string()
}

/// What a recall, delete, read cursor or read receipt does to its
/// conversation's row.
enum RowUpdate<'a> {
    /// A recall or delete (given `version`) of `msg`: shown last in its
    /// place if `msg` is the message shown last.
    ShownInstead { msg: &'a MsgId, version: u64 },
    /// A read cursor: the owner's read mark rises to it.
    ReadUpTo(u64),
    /// A read receipt: the peer's read position rises to it.
    PeerReadUpTo(u64),
}

/// The statement of one [`RowUpdate`]; a conversation without a row (no
/// message yet) matches nothing and stays without one.
fn update_conversation(key: ConversationKey<'_>, update: RowUpdate<'_>) -> String {
    let mut sql = Sql::new("UPDATE conversations SET ");
    match &update {
        RowUpdate::ShownInstead { version, .. } => sql.push("last_version = ").uint(*version),
        RowUpdate::ReadUpTo(v) => sql
            .push("read_up_to = GREATEST(read_up_to, ")
            .uint(*v)
            .push(")"),
        RowUpdate::PeerReadUpTo(v) => sql
            .push("peer_read_up_to = GREATEST(peer_read_up_to, ")
            .uint(*v)
            .push(")"),
    };
    let (app, owner, kind, id) = key;
    sql.push(" WHERE app = ").bytes(b(app));
    sql.push(" AND owner = ").bytes(b(owner));
    sql.push(" AND conv_kind = ").uint(u64::from(kind));
    sql.push(" AND conv_id = ").bytes(b(id));
    if let RowUpdate::ShownInstead { msg, version } = update {
        // Only the message shown last is replaced, and never by an entry
        // older than the one shown.
        sql.push(" AND last_msg = ").bytes(&msg.0);
        sql.push(" AND last_version < ").uint(version);
    }
    sql.into_string()
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

/// Step 3, one search-outbox row per delivery that wants indexing, naming
/// its first entry (the message the indexer reads) and every owner.
fn outbox_statements(
    stmts: &mut Vec<String>,
    jobs: &[Job<'_>],
    writing: &[usize],
    appended: &HashMap<usize, Vec<Appended>>,
) -> Result<()> {
    let mut sql: Option<Sql> = None;
    let mut n = 0;
    for &i in writing.iter().filter(|&&i| jobs[i].delivery.index) {
        let entries = &jobs[i].delivery.entries;
        let q = sql.get_or_insert_with(|| {
            n = 0;
            Sql::new("INSERT INTO inbox_index_outbox (app, owner, version, owners) VALUES ")
        });
        q.row(n);
        q.bytes(b(jobs[i].app.as_str()));
        q.sep().bytes(b(entries[0].owner.as_str()));
        q.sep().uint(appended[&i][0].version);
        q.sep().bytes(&encode_owners(entries)?);
        q.end_row();
        n += 1;
        if n == OWNER_CHUNK || q.len() > BYTES_CHUNK {
            stmts.extend(sql.take().map(Sql::into_string));
        }
    }
    stmts.extend(sql.map(Sql::into_string));
    Ok(())
}

#[cfg(test)]
mod tests {
    use bubble_core::testkit::group_delivery;

    use super::*;

    #[test]
    fn an_outbox_owner_list_reads_back_as_written() {
        let d = group_delivery("g", "ann", &["ann", "bø", "", "c d"], "x");
        let raw = encode_owners(&d.entries).unwrap();
        let owners: Vec<String> = decode_owners(&raw)
            .unwrap()
            .iter()
            .map(|o| o.to_string())
            .collect();
        assert_eq!(owners, ["ann", "bø", "", "c d"]);
        assert!(
            decode_owners(&raw[..raw.len() - 1]).is_err(),
            "a cut list is an error"
        );
    }

    #[test]
    fn an_owner_too_long_for_a_length_byte_is_refused() {
        let long = "x".repeat(300);
        let d = group_delivery("g", "ann", &["ann", &long], "x");
        assert!(encode_owners(&d.entries).is_err());
    }

    #[test]
    fn values_become_hex_literals_and_digits() {
        let mut sql = Sql::new("VALUES ");
        sql.row(0);
        sql.bytes(b"a'\\\0")
            .sep()
            .uint(7)
            .sep()
            .int(-3)
            .sep()
            .bytes(b"");
        sql.end_row();
        assert_eq!(sql.into_string(), "VALUES (X'61275C00', 7, -3, X'')");
    }

    #[test]
    fn statements_share_a_round_trip_until_the_text_is_large() {
        let small = vec!["A".to_owned(), "B".to_owned()];
        assert_eq!(packets(small), ["A;\nB"]);
        let big = "x".repeat(PACKET_TEXT);
        assert_eq!(packets(vec![big.clone(), "B".to_owned()]).len(), 2);
    }
}

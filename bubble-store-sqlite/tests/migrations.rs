//! Migrations across releases: a file written by an earlier release opens
//! as it is and is recognised as up to date, a fresh file gets every
//! migration recorded as the earlier releases recorded them, and a file
//! whose history does not match this build is refused, naming the migration.
//!
//! `tests/fixtures/sqlx-migrated-0.1.0.db` was written by the release whose
//! migrations sqlx ran, `tests/fixtures/bubble-74649e1.db` by the last one
//! that wrote a full copy of each message per owner (see
//! `tests/fixtures/README.md` for what each holds).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use bubble_core::ports::{
    AppStore, AppendOutcome, ChannelAppend, ChannelLog, GroupStore, InboxStore,
};
use bubble_core::testkit::{channel_message, direct_delivery};
use bubble_core::{
    AdapterConfig, AppId, Conversation, ErrorKind, GroupId, GroupKind, InboxEntry, MsgId, Role,
    UserId,
};
use bubble_store_sqlite::{SqliteConfig, SqliteStore};
use rusqlite::Connection;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/sqlx-migrated-0.1.0.db"
);

fn app() -> AppId {
    AppId::new("acme")
}

fn user(name: &str) -> UserId {
    UserId::new(name)
}

/// Written by the store at commit 74649e1 (migrations 1 and 2: a full copy
/// of each message per owner, an outbox row per owner).
const FIXTURE_74649E1: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/bubble-74649e1.db"
);

/// What that store read back from it just before closing it: one line per
/// entry, unread count, dedup receipt and pending outbox owner.
const READ_BACK_74649E1: &str = include_str!("fixtures/bubble-74649e1.tsv");

/// A copy of the fixture in a directory of its own (opening it adds the
/// WAL files beside it, and the tests change it).
fn copy_of_fixture() -> (tempfile::TempDir, PathBuf) {
    copy_of(FIXTURE)
}

fn copy_of(fixture: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bubble.db");
    std::fs::copy(fixture, &path).unwrap();
    (dir, path)
}

async fn open(path: &Path) -> SqliteStore {
    SqliteConfig::new(path)
        .connect()
        .await
        .expect("the store opens")
}

/// A row of `_sqlx_migrations`, every column.
#[derive(Debug, Clone, PartialEq)]
struct Applied {
    version: i64,
    description: String,
    installed_on: String,
    success: bool,
    checksum: Vec<u8>,
    execution_time: i64,
}

/// The bookkeeping table as it is in the file, oldest first.
fn applied(path: &Path) -> Vec<Applied> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT version, description, installed_on, success, checksum, execution_time \
             FROM _sqlx_migrations ORDER BY version",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok(Applied {
            version: r.get(0)?,
            description: r.get(1)?,
            installed_on: r.get(2)?,
            success: r.get(3)?,
            checksum: r.get(4)?,
            execution_time: r.get(5)?,
        })
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Every table, index and trigger with the SQL that made it.
fn schema(path: &Path) -> Vec<(String, String, Option<String>)> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Runs `sql` on the file, outside the store.
fn tamper(path: &Path, sql: &str) {
    Connection::open(path).unwrap().execute_batch(sql).unwrap();
}

// ------------------------------------------------ a file of an earlier release

/// The versions of every migration this build ships (`migrations/*.sql`,
/// numbered from 1 without gaps).
fn shipped() -> Vec<i64> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
    let n = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("sql".as_ref()))
        .count() as i64;
    (1..=n).collect()
}

#[tokio::test]
async fn a_file_of_the_sqlx_release_keeps_its_history_and_gets_only_the_newer_migrations() {
    let (_dir, path) = copy_of_fixture();
    let before = applied(&path);
    let schema_before = schema(&path);
    assert_eq!(before.len(), 1, "the fixture holds migration 1");

    let store = open(&path).await;
    store.close().await;

    let after = applied(&path);
    assert_eq!(
        after[..1],
        before[..],
        "migration 1 did not re-run: same row, checksum, install time"
    );
    assert_eq!(
        after.iter().map(|a| a.version).collect::<Vec<_>>(),
        shipped(),
        "the newer migrations were applied, once each"
    );
    let schema_after = schema(&path);
    for object in &schema_before {
        let replaced = REPLACED_BY_0003.contains(&object.1.as_str())
            || CHANGED_BY_0010.contains(&object.1.as_str());
        assert!(
            object.0 == "table" && object.1 == "_sqlx_migrations"
                || replaced
                || schema_after.contains(object)
                || extended(object, &schema_after),
            "{object:?} is kept as it was"
        );
    }
}

/// Tables later migrations added columns to (`ALTER TABLE ... ADD COLUMN`).
const EXTENDED_BY_0006: &[&str] = &["channel_log", "chat_groups", "group_members"];

/// Whether `object` is one of [`EXTENDED_BY_0006`] and is still there as it
/// was but for the columns migration 6 added: SQLite writes each added
/// column's definition into the stored SQL after the last column, so taking
/// them out again must give the old text exactly.
fn extended(
    object: &(String, String, Option<String>),
    after: &[(String, String, Option<String>)],
) -> bool {
    if !EXTENDED_BY_0006.contains(&object.1.as_str()) {
        return false;
    }
    let migration = include_str!("../migrations/0006_extras.sql");
    let prefix = format!("ALTER TABLE {} ADD COLUMN ", object.1);
    let added: Vec<&str> = migration
        .lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .map(|def| def.trim_end_matches(';'))
        .collect();
    after.iter().any(|(kind, name, sql)| {
        let Some(mut sql) = sql.clone() else {
            return false;
        };
        for def in &added {
            sql = sql.replacen(&format!(", {def}"), "", 1);
        }
        *kind == object.0 && *name == object.1 && Some(sql) == object.2
    })
}

/// What migration 3 (`0003_messages.sql`) rebuilds: the inbox became small
/// rows pointing at `messages` (its key took `inbox_pull`'s place), the
/// outbox one row per message. Everything else of migration 1 stays as it
/// was, down to its SQL text.
const REPLACED_BY_0003: &[&str] = &[
    "inbox",
    "inbox_pull",
    "inbox_by_msg",
    "inbox_conversation",
    "inbox_unread",
    "index_outbox",
];

#[tokio::test]
async fn a_file_of_the_sqlx_release_reads_back_through_every_port() {
    let (_dir, path) = copy_of_fixture();
    let store = open(&path).await;

    let bob = store.pull(&app(), &user("bob"), 0, 100).await.unwrap();
    let texts: Vec<(u64, &str)> = bob
        .entries
        .iter()
        .map(|e| (e.version, e.content.as_text().unwrap()))
        .collect();
    assert_eq!(
        texts,
        [
            (1, "hello bob"),
            (2, "are you there?"),
            (3, "yes"),
            (4, "noon?")
        ]
    );
    let first = &bob.entries[0];
    let got = InboxStore::get(&store, &app(), &user("bob"), &first.server_msg_id)
        .await
        .unwrap()
        .expect("found by its message id");
    assert_eq!(got.content.as_text(), Some("hello bob"));
    assert_eq!(store.last_version(&app(), &user("alice")).await.unwrap(), 4);
    let mut unread: Vec<(String, u64)> = store
        .unread(&app(), &user("bob"))
        .await
        .unwrap()
        .into_iter()
        .map(|u| (u.conversation.id().to_owned(), u.count))
        .collect();
    unread.sort();
    assert_eq!(
        unread,
        [("alice".to_owned(), 1), ("g1".to_owned(), 1)],
        "the read mark bob set is kept"
    );
    let receipt = store
        .find_sent(&app(), &user("alice"), "c2")
        .await
        .unwrap()
        .expect("the receipt of c2");
    assert_eq!(receipt.version, 2);

    let g1 = store
        .group(&app(), &GroupId::new("g1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((g1.name.as_str(), g1.kind), ("Lunch", GroupKind::Normal));
    let members: Vec<(String, Role)> = store
        .members(&app(), &GroupId::new("g1"))
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.user.to_string(), m.role))
        .collect();
    assert_eq!(
        members,
        [
            ("alice".to_owned(), Role::Owner),
            ("bob".to_owned(), Role::Member),
            ("carol".to_owned(), Role::Admin)
        ]
    );
    assert_eq!(
        store.groups_of(&app(), &user("bob")).await.unwrap(),
        [GroupId::new("g1"), GroupId::new("s1")]
    );

    let s1 = GroupId::new("s1");
    let log = store.range(&app(), &s1, 0, 10).await.unwrap();
    assert_eq!(log.entries.len(), 1);
    assert_eq!(log.entries[0].content.as_text(), Some("welcome"));
    assert_eq!(store.read_seq(&app(), &s1, &user("bob")).await.unwrap(), 1);

    let acme = store.get_app(&app()).await.unwrap().expect("the app");
    assert_eq!(acme.name, "Acme Chat");
    assert_eq!(acme.settings.max_group_members, 500);
    assert_eq!(store.list_apps().await.unwrap().len(), 1);
    store.close().await;
}

#[tokio::test]
async fn a_file_of_the_sqlx_release_takes_new_writes_where_it_left_off() {
    let (_dir, path) = copy_of_fixture();
    let store = open(&path).await;

    let d = direct_delivery("alice", "bob", "after the upgrade", "c4");
    match InboxStore::append(&store, &app(), &d).await.unwrap() {
        AppendOutcome::Appended(a) => {
            let versions: Vec<(u64, u64)> = a.iter().map(|a| (a.version, a.prev_version)).collect();
            assert_eq!(versions, [(5, 4), (5, 4)], "versions go on from the file's");
        }
        other => panic!("expected a fresh append, got {other:?}"),
    }
    let again = direct_delivery("alice", "bob", "hello bob", "c1");
    match InboxStore::append(&store, &app(), &again).await.unwrap() {
        AppendOutcome::Duplicate(r) => assert_eq!(r.version, 1, "the old receipt"),
        other => panic!("c1 was accepted by the earlier release: {other:?}"),
    }
    let seq = ChannelLog::append(&store, &app(), &channel_message("s1", "bob", "hi", "k2"))
        .await
        .unwrap();
    assert_eq!(
        seq,
        bubble_core::ports::ChannelAppend::Appended {
            seq: 2,
            prev_seq: 1
        }
    );
    let marked = store
        .mark_read(
            &app(),
            &user("bob"),
            &Conversation::direct(&user("alice")),
            5,
        )
        .await
        .unwrap();
    assert_eq!(marked.marked, 2);
    store.close().await;
}

// ------------------------------------- a file of the full-copy-per-owner store

/// An entry as a line of `bubble-74649e1.tsv` (after `entry\t<app>\t`):
/// every field, the content as hex.
fn entry_line(e: &InboxEntry) -> String {
    let body: String = e.content.body.iter().map(|b| format!("{b:02x}")).collect();
    [
        e.owner.to_string(),
        e.version.to_string(),
        (e.kind as u8).to_string(),
        (e.conversation.kind as u8).to_string(),
        e.conversation.id().to_owned(),
        e.direction.as_i8().to_string(),
        e.server_msg_id.to_hex(),
        e.sender.to_string(),
        e.sender_device.to_string(),
        e.client_msg_id.clone(),
        e.client_seq.to_string(),
        e.create_time.to_string(),
        e.server_time.to_string(),
        (e.content.kind as u8).to_string(),
        body,
        e.read_up_to.to_string(),
    ]
    .join("\t")
}

/// The fixture's read-back lines of one kind (`entry`, `unread`, `sent`,
/// `pending`), without that first column.
fn read_back(kind: &str) -> Vec<String> {
    READ_BACK_74649E1
        .lines()
        .filter_map(|l| l.strip_prefix(kind)?.strip_prefix('\t'))
        .map(str::to_owned)
        .collect()
}

/// The (app, owner) pairs the fixture holds entries of.
fn owners_74649e1() -> BTreeSet<(String, String)> {
    read_back("entry")
        .iter()
        .map(|l| {
            let mut f = l.split('\t');
            (f.next().unwrap().to_owned(), f.next().unwrap().to_owned())
        })
        .collect()
}

#[tokio::test]
async fn a_file_of_the_full_copy_store_reads_back_every_entry_unread_count_and_receipt() {
    let (_dir, path) = copy_of(FIXTURE_74649E1);
    assert_eq!(
        applied(&path).iter().map(|a| a.version).collect::<Vec<_>>(),
        [1, 2],
        "the fixture predates migration 3"
    );
    let store = open(&path).await;

    let mut entries = Vec::new();
    let mut unread = Vec::new();
    for (app, owner) in owners_74649e1() {
        let (app, owner) = (AppId::new(app), UserId::new(owner));
        let page = store.pull(&app, &owner, 0, 1000).await.unwrap();
        assert!(!page.has_more);
        for e in &page.entries {
            entries.push(format!("{app}\t{}", entry_line(e)));
            if matches!(e.kind, bubble_core::EntryKind::Message) {
                let got = InboxStore::get(&store, &app, &owner, &e.server_msg_id)
                    .await
                    .unwrap();
                assert_eq!(got.as_ref(), Some(e), "found by its message id too");
            }
        }
        for c in store.unread(&app, &owner).await.unwrap() {
            unread.push(format!(
                "{app}\t{owner}\t{}\t{}\t{}",
                c.conversation.kind as u8,
                c.conversation.id(),
                c.count
            ));
        }
    }
    assert_eq!(entries, read_back("entry"), "every entry, field for field");
    assert_eq!(unread, read_back("unread"), "every unread count");

    for line in read_back("sent") {
        let f: Vec<&str> = line.split('\t').collect();
        let r = store
            .find_sent(&AppId::new(f[0]), &UserId::new(f[1]), f[2])
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("the receipt of {line}"));
        assert_eq!(
            [
                r.server_msg_id.to_hex(),
                r.version.to_string(),
                r.server_time.to_string()
            ],
            [f[3], f[4], f[5]],
            "{line}"
        );
    }
    store.close().await;
}

#[tokio::test]
async fn a_file_of_the_full_copy_store_keeps_every_pending_index_task() {
    let (_dir, path) = copy_of(FIXTURE_74649E1);
    let store = open(&path).await;
    // (app, message id, kind) -> owners still waiting, as the old store had
    // them: one outbox row per owner.
    let mut before: BTreeMap<(String, String, String), BTreeSet<String>> = BTreeMap::new();
    for line in read_back("pending") {
        let f: Vec<&str> = line.split('\t').collect();
        before
            .entry((f[0].into(), f[1].into(), f[2].into()))
            .or_default()
            .insert(f[3].into());
    }

    let tasks = store.pending_index(1000).await.unwrap();
    assert_eq!(tasks.len(), before.len(), "one task per message: {tasks:?}");
    for t in &tasks {
        let key = (
            t.app.to_string(),
            t.entry.server_msg_id.to_hex(),
            (t.entry.kind as u8).to_string(),
        );
        let waiting = before
            .get(&key)
            .unwrap_or_else(|| panic!("{key:?} was not pending"));
        let owners: BTreeSet<String> = t.owners.iter().map(|o| o.to_string()).collect();
        assert!(
            waiting.is_subset(&owners),
            "every owner still waiting is named: {waiting:?} in {owners:?}"
        );
        assert!(t.owners.contains(&t.entry.owner));
        let theirs = store
            .pull(&t.app, &t.entry.owner, t.entry.version - 1, 1)
            .await
            .unwrap();
        assert_eq!(
            theirs.entries,
            std::slice::from_ref(&t.entry),
            "the task's entry is theirs"
        );
    }
    assert!(
        tasks.windows(2).all(|w| w[0].id < w[1].id),
        "in the old order"
    );

    // New outbox ids continue after every id the old store gave.
    let old_ids = 13;
    let mut d = direct_delivery("alice", "bob", "after the upgrade", "c9");
    d.index = true;
    InboxStore::append(&store, &app(), &d).await.unwrap();
    let ids: Vec<u64> = tasks.iter().map(|t| t.id).collect();
    store.complete_index(&ids).await.unwrap();
    let new = store.pending_index(1000).await.unwrap();
    assert_eq!(new.len(), 1, "{new:?}");
    assert!(new[0].id > old_ids, "{new:?}");
    assert_eq!(
        new[0].entry.version, 8,
        "alice's versions go on from the file's"
    );
    store.close().await;
}

// ------------------------------------------------------------- a fresh file

#[tokio::test]
async fn a_fresh_file_gets_every_migration_recorded_as_the_sqlx_release_did() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bubble.db");
    open(&path).await.close().await;

    let fresh = applied(&path);
    // The fixture brought up to date by this build: what the fresh file
    // must look like.
    let (_old_dir, old_path) = copy_of_fixture();
    open(&old_path).await.close().await;
    let old = applied(&old_path);
    assert_eq!(
        fresh.iter().map(|a| a.version).collect::<Vec<_>>(),
        shipped(),
        "every migration, once"
    );
    for (fresh, old) in fresh.iter().zip(&old) {
        assert_eq!(fresh.version, old.version);
        assert_eq!(fresh.description, old.description);
        assert!(fresh.success);
        assert_eq!(
            fresh.checksum, old.checksum,
            "the checksum is sqlx's (SHA-384 of the migration's SQL)"
        );
        assert!(fresh.execution_time >= 0, "{fresh:?}");
        assert_eq!(fresh.installed_on.len(), "2026-01-01 00:00:00".len());
    }
    assert_eq!(
        schema(&path),
        schema(&old_path),
        "the same tables and indexes, made by the same SQL, bookkeeping included"
    );
}

// ------------------------------------------------------- histories refused

#[tokio::test]
async fn a_migration_changed_after_it_ran_is_refused_naming_its_version() {
    let (_dir, path) = copy_of_fixture();
    tamper(
        &path,
        "UPDATE _sqlx_migrations SET checksum = zeroblob(48) WHERE version = 1",
    );
    let err = SqliteConfig::new(&path)
        .connect()
        .await
        .expect_err("a checksum that does not match");
    assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
    let msg = err.to_string();
    assert!(msg.contains("migration 1 "), "names the version: {msg}");
    assert!(msg.contains("changed"), "says why: {msg}");
    assert!(
        msg.contains(&path.display().to_string()),
        "names the file: {msg}"
    );
}

#[tokio::test]
async fn a_migration_marked_failed_is_refused_naming_its_version() {
    let (_dir, path) = copy_of_fixture();
    tamper(
        &path,
        "UPDATE _sqlx_migrations SET success = FALSE WHERE version = 1",
    );
    let err = SqliteConfig::new(&path)
        .connect()
        .await
        .expect_err("a migration that did not finish");
    assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
    let msg = err.to_string();
    assert!(msg.contains("migration 1 "), "names the version: {msg}");
    assert!(msg.contains("failed"), "says why: {msg}");
}

#[tokio::test]
async fn a_file_migrated_by_a_newer_release_is_refused_and_left_as_it_is() {
    let (_dir, path) = copy_of_fixture();
    tamper(
        &path,
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', TRUE, zeroblob(48), 1)",
    );
    let before = applied(&path);
    let err = SqliteConfig::new(&path)
        .connect()
        .await
        .expect_err("a migration this build does not know");
    assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
    let msg = err.to_string();
    assert!(msg.contains("9999"), "names the version: {msg}");
    assert!(msg.contains("newer"), "says why: {msg}");
    assert_eq!(applied(&path), before, "nothing ran");
}

#[tokio::test]
async fn a_file_of_the_full_copy_store_gets_a_conversation_list_built_from_its_entries() {
    let (_dir, path) = copy_of(FIXTURE_74649E1);
    let store = open(&path).await;
    let (app, alice, bob) = (app(), user("alice"), user("bob"));
    // (conversation, last entry's version and kind, unread, read_up_to, peer_read_up_to)
    let list = |page: bubble_core::ConversationPage| {
        assert!(!page.has_more);
        page.conversations
            .into_iter()
            .map(|c| {
                (
                    c.conversation.id().to_owned(),
                    (c.last.version, c.last.kind),
                    c.unread,
                    c.read_up_to,
                    c.peer_read_up_to,
                )
            })
            .collect::<Vec<_>>()
    };
    use bubble_core::EntryKind::{Message, Recall};
    assert_eq!(
        list(store.conversations(&app, &alice, 0, 10).await.unwrap()),
        [
            ("carol".to_owned(), (6, Message), 1, 0, 0),
            // Her last message (v4) was recalled (v5); bob's receipt named
            // her first message, her version 1.
            ("bob".to_owned(), (5, Recall), 1, 0, 1),
            ("g1".to_owned(), (3, Message), 0, 0, 0),
        ],
        "newest activity first, each with what the old entries say"
    );
    assert_eq!(
        list(store.conversations(&app, &bob, 0, 10).await.unwrap()),
        [
            // bob's read cursor (v6) marked up to 1.
            ("alice".to_owned(), (5, Recall), 0, 1, 0),
            ("g1".to_owned(), (3, Message), 1, 0, 0),
        ]
    );
    let page = store.conversations(&app, &alice, 0, 10).await.unwrap();
    let with_bob = &page.conversations[1];
    let recalled = InboxStore::get(&store, &app, &alice, &with_bob.last.server_msg_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        with_bob.activity,
        bubble_core::activity_key(recalled.server_time, recalled.version),
        "the activity is the recalled message's, not the recall's"
    );
    // New entries keep the rows going from there.
    InboxStore::append(
        &store,
        &app,
        &direct_delivery("bob", "alice", "after the upgrade", ""),
    )
    .await
    .unwrap();
    let after = list(store.conversations(&app, &alice, 0, 10).await.unwrap());
    assert_eq!((after[0].0.as_str(), after[0].2), ("bob", 2));
    store.close().await;
}

#[tokio::test]
async fn a_file_of_the_full_copy_store_reads_back_without_meta_and_with_default_settings() {
    let (_dir, path) = copy_of(FIXTURE_74649E1);
    let store = open(&path).await;
    let (app, alice) = (app(), user("alice"));
    let synced = InboxStore::pull(&store, &app, &alice, 0, 100)
        .await
        .unwrap();
    assert!(!synced.entries.is_empty());
    assert!(
        synced.entries.iter().all(|e| e.meta.is_empty()),
        "entries written before meta existed have none"
    );
    let page = store.conversations(&app, &alice, 0, 10).await.unwrap();
    assert!(
        page.conversations.iter().all(|c| {
            c.settings == bubble_core::ConversationSettings::default() && !c.mentioned
        })
    );
    assert!(store.blocked(&app, &alice).await.unwrap().is_empty());
    // An old message can be edited and reacted to after the upgrade.
    let old = synced
        .entries
        .iter()
        .find(|e| e.kind == bubble_core::EntryKind::Message)
        .unwrap();
    let limits = bubble_core::ports::ReactionLimits {
        per_message: 5,
        per_user: 5,
    };
    assert!(
        store
            .react(&app, &old.server_msg_id, &alice, "👍", true, limits)
            .await
            .unwrap()
    );
    let counts = store
        .reactions(&app, &[old.server_msg_id], &alice)
        .await
        .unwrap();
    assert_eq!(counts[0].1[0].count, 1);
    store.close().await;
}

// ---------------------------------- the job queue and push tokens (migration 7)

/// Makes `path` a file at migration `last`, as the release that shipped
/// migration `last` would have left it: the migrations of `migrations/` up
/// to it, each recorded with its checksum (SHA-384 of its SQL, as sqlx).
fn file_at_migration(path: &Path, last: i64) {
    use sha2::{Digest, Sha384};
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension() == Some("sql".as_ref()))
        .collect();
    files.sort();
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
            version BIGINT PRIMARY KEY,
            description TEXT NOT NULL,
            installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            success BOOLEAN NOT NULL,
            checksum BLOB NOT NULL,
            execution_time BIGINT NOT NULL
        );",
    )
    .unwrap();
    for file in files {
        let name = file.file_stem().unwrap().to_str().unwrap().to_owned();
        let (version, description) = name.split_once('_').unwrap();
        let version: i64 = version.parse().unwrap();
        if version > last {
            continue;
        }
        let sql = std::fs::read_to_string(&file).unwrap();
        conn.execute_batch(&sql).unwrap();
        conn.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (?1, ?2, TRUE, ?3, 1)",
            rusqlite::params![version, description, Sha384::digest(sql.as_bytes()).to_vec()],
        )
        .unwrap();
    }
}

/// What migration 7 (`0007_jobs_push_tokens.sql`) adds.
const ADDED_BY_0007: &[&str] = &[
    "jobs",
    "jobs_by_queue",
    "push_tokens",
    "push_tokens_by_token",
];

#[tokio::test]
async fn a_file_at_migration_6_gets_only_migration_7_which_adds_the_job_queue_and_push_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bubble.db");
    file_at_migration(&path, 6);
    let before = applied(&path);
    let schema_before = schema(&path);
    assert_eq!(
        before.iter().map(|a| a.version).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    assert!(
        !schema_before.iter().any(|o| o.1 == "jobs"),
        "not there yet"
    );

    open(&path).await.close().await;

    let after = applied(&path);
    assert_eq!(after[..6], before[..], "migrations 1 to 6 did not re-run");
    assert_eq!(
        (after[6].version, after[6].description.as_str()),
        (7, "jobs_push_tokens")
    );
    let schema_after = schema(&path);
    for object in &schema_before {
        assert!(
            object.1 == "_sqlx_migrations"
                || CHANGED_BY_0008.contains(&object.1.as_str())
                || CHANGED_BY_0010.contains(&object.1.as_str())
                || schema_after.contains(object),
            "{object:?} is kept as it was"
        );
    }
    let mut added: Vec<&str> = schema_after
        .iter()
        .filter(|o| !schema_before.iter().any(|b| b.1 == o.1))
        .map(|o| o.1.as_str())
        .filter(|name| !name.starts_with("sqlite_autoindex_"))
        .filter(|name| !ADDED_BY_0009.contains(name) && !ADDED_BY_0010.contains(name))
        .collect();
    added.sort();
    assert_eq!(
        added, ADDED_BY_0007,
        "the two tables and their indexes only"
    );
}

#[tokio::test]
async fn a_file_of_an_earlier_release_gains_a_job_queue_and_push_tokens_that_keep_what_they_take() {
    use bubble_core::jobs::{ClaimOrder, JobQueue, NewJob};
    use bubble_core::notify::{PushPlatform, PushToken, PushTokens};

    let (_dir, path) = copy_of(FIXTURE_74649E1);
    let store = open(&path).await;
    let queue = "notify/acme";
    assert_eq!(store.depth(queue).await.unwrap(), 0, "an empty queue");
    assert!(store.tokens(&app(), &user("bob")).await.unwrap().is_empty());
    let job = NewJob {
        queue: queue.into(),
        payload: vec![0xff, 0, 1],
        due_at: 1_000,
    };
    store.enqueue(&[job.clone(), job], 1_000).await.unwrap();
    let token = PushToken {
        device: bubble_core::DeviceId::new("phone"),
        platform: PushPlatform::Apns,
        token: "a1b2".into(),
        locale: "en".into(),
        quiet_until: 0,
        updated_at: 1_000,
    };
    store.put_token(&app(), &user("bob"), &token).await.unwrap();
    let claimed = store
        .claim(queue, "n1", 1_000, 60_000, 1, ClaimOrder::Any)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    store.close().await;

    // What was there before still reads back, and what was taken is kept.
    let store = open(&path).await;
    assert!(
        !store
            .pull(&app(), &user("alice"), 0, 10)
            .await
            .unwrap()
            .entries
            .is_empty()
    );
    assert_eq!(store.depth(queue).await.unwrap(), 2);
    let rest = store
        .claim(queue, "n2", 1_000, 60_000, 10, ClaimOrder::Any)
        .await
        .unwrap();
    assert_eq!(rest.len(), 1, "the claimed job is still leased");
    assert!(rest[0].id > claimed[0].id);
    assert_eq!(rest[0].payload, [0xff, 0, 1]);
    assert_eq!(store.tokens(&app(), &user("bob")).await.unwrap(), [token]);
    store.close().await;
}

// ------------------------------- unread state on the list rows (migration 8)

/// What migration 9 (`0009_retention.sql`) adds: the time indexes of the
/// messages and the super-group logs, and the version and seq floors.
const ADDED_BY_0009: &[&str] = &[
    "channel_floors",
    "channel_log_by_time",
    "messages_by_time",
    "version_floors",
];

/// What migration 10 (`0010_numbered_names.sql`) adds: the names and their
/// index.
const ADDED_BY_0010: &[&str] = &["names", "names_by_name"];

/// What migration 10 rebuilds with numbers: the inbox and the list, and
/// their indexes.
const CHANGED_BY_0010: &[&str] = &[
    "inbox_sent",
    "inbox_sent_by_time",
    "inbox",
    "inbox_by_msg",
    "inbox_history",
    "conversations",
    "conversations_by_activity",
];

/// What migration 8 (`0008_unread_on_the_list.sql`) changes: two columns on
/// the list rows, and the received-entries index dropped.
const CHANGED_BY_0008: &[&str] = &["conversations", "inbox_received"];

/// Bob's inbox at migration 7, written as that release's append wrote it:
/// alice's messages 1, 3 and 4 (1 read, 3 and 4 unread), bob's own 2 and 5,
/// and a group message he read; his list row of alice says 7 unread (wrong:
/// the migration counts again from the entries).
const BOB_AT_MIGRATION_7: &str = "
    INSERT INTO messages (id, app, server_msg_id, kind, sender, sender_device, client_msg_id,
                          client_seq, create_time, server_time, content_type, content)
    VALUES (1, 'acme', X'01000000000000000000000000000000', 1, 'alice', 'd', 'a1', 1, 10, 10, 1, X'61'),
           (2, 'acme', X'02000000000000000000000000000000', 1, 'bob',   'd', 'b1', 1, 20, 20, 1, X'62'),
           (3, 'acme', X'03000000000000000000000000000000', 1, 'alice', 'd', 'a2', 2, 30, 30, 1, X'63'),
           (4, 'acme', X'04000000000000000000000000000000', 1, 'alice', 'd', 'a3', 3, 40, 40, 1, X'64'),
           (5, 'acme', X'05000000000000000000000000000000', 1, 'bob',   'd', 'b2', 2, 50, 50, 1, X'65'),
           (6, 'acme', X'06000000000000000000000000000000', 1, 'carol', 'd', 'c1', 1, 60, 60, 1, X'66');
    INSERT INTO inbox (app, owner, version, message, peer, conv_kind, direction, status, read_up_to)
    VALUES ('acme', 'bob', 1, 1, 'alice', 1, -1, 1, 0),
           ('acme', 'bob', 2, 2, 'alice', 1, 1, NULL, 0),
           ('acme', 'bob', 3, 3, 'alice', 1, -1, 0, 0),
           ('acme', 'bob', 4, 4, 'alice', 1, -1, 0, 0),
           ('acme', 'bob', 5, 5, 'alice', 1, 1, NULL, 0),
           ('acme', 'bob', 6, 6, 'g1', 2, -1, 1, 0);
    INSERT INTO conversations (app, owner, conv_kind, peer, activity, last_version, last_msg, unread)
    VALUES ('acme', 'bob', 1, 'alice', (50 << 20) | 5, 5, X'05000000000000000000000000000000', 7),
           ('acme', 'bob', 2, 'g1', (60 << 20) | 6, 6, X'06000000000000000000000000000000', 0);
";

/// The two new columns of bob's list rows: (peer, unread, unread_floor,
/// last_received), in key order.
fn bobs_list_rows(path: &Path) -> Vec<(String, i64, i64, i64)> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT p.name, c.unread, c.unread_floor, c.last_received FROM conversations c \
             JOIN names o ON o.id = c.owner JOIN names p ON p.id = c.peer \
             WHERE o.app = 'acme' AND o.name = 'bob' ORDER BY c.conv_kind, p.name",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn a_file_at_migration_7_moves_its_unread_state_onto_the_list_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bubble.db");
    file_at_migration(&path, 7);
    tamper(&path, BOB_AT_MIGRATION_7);

    let store = open(&path).await;
    let eighth = applied(&path).into_iter().find(|m| m.version == 8).unwrap();
    assert_eq!(eighth.description, "unread_on_the_list");
    assert!(
        !schema(&path).iter().any(|o| o.1 == "inbox_received"),
        "the received-entries index is gone"
    );
    assert_eq!(
        bobs_list_rows(&path),
        [
            // Counted again: 3 and 4 are unread, 3 the oldest; 4 the
            // newest received.
            ("alice".to_owned(), 2, 3, 4),
            // Nothing unread: the floor is past the row's last entry.
            ("g1".to_owned(), 0, 7, 6),
        ]
    );
    let unread = store.unread(&app(), &user("bob")).await.unwrap();
    assert_eq!(
        unread
            .iter()
            .map(|u| (u.conversation.clone(), u.count))
            .collect::<Vec<_>>(),
        [(Conversation::direct(&user("alice")), 2)]
    );

    // A mark below the newest received reads back from the mark.
    let alice = Conversation::direct(&user("alice"));
    let marked = store
        .mark_read(&app(), &user("bob"), &alice, 3)
        .await
        .unwrap();
    assert_eq!(marked.marked, 1);
    assert_eq!(marked.last_read.map(|e| e.version), Some(3));
    // A mark past everything: the rest, and the newest received is 4, not
    // bob's own 5.
    let marked = store
        .mark_read(&app(), &user("bob"), &alice, 99)
        .await
        .unwrap();
    assert_eq!(marked.marked, 1);
    assert_eq!(marked.last_read.map(|e| e.version), Some(4));
    assert!(store.unread(&app(), &user("bob")).await.unwrap().is_empty());
    // Marking again changes nothing and still names message 4.
    let marked = store
        .mark_read(&app(), &user("bob"), &alice, 99)
        .await
        .unwrap();
    assert_eq!(marked.marked, 0);
    assert_eq!(marked.last_read.map(|e| e.version), Some(4));
    store.close().await;
    assert_eq!(bobs_list_rows(&path)[0], ("alice".to_owned(), 0, 100, 4));
}

#[tokio::test]
async fn a_file_at_migration_8_gains_retention_and_expires_its_old_messages_without_reusing_versions()
 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bubble.db");
    file_at_migration(&path, 8);
    tamper(&path, BOB_AT_MIGRATION_7);
    tamper(
        &path,
        "INSERT INTO channel_log (app, group_id, seq, kind, server_msg_id, sender, sender_device, \
         client_msg_id, client_seq, create_time, server_time, content_type, content) \
         VALUES ('acme', 'sg', 1, 1, X'07000000000000000000000000000000', 'alice', 'd', '', 1, \
         10, 10, 1, X'67')",
    );
    // As migration 8 left such a file: alice's 3 and 4 unread.
    tamper(
        &path,
        "UPDATE conversations SET unread = 2, unread_floor = 3, last_received = 4 \
         WHERE peer = 'alice'; \
         UPDATE conversations SET unread_floor = 7, last_received = 6 WHERE peer = 'g1'",
    );

    let store = open(&path).await;
    let ninth = applied(&path).into_iter().find(|m| m.version == 9).unwrap();
    assert_eq!(ninth.description, "retention");
    let names: Vec<String> = schema(&path).into_iter().map(|o| o.1).collect();
    for added in ADDED_BY_0009 {
        assert!(names.iter().any(|n| n == added), "{added} is there");
    }
    let (app, bob) = (AppId::new("acme"), UserId::new("bob"));
    let id = |n: u8| {
        let mut raw = [0u8; 16];
        raw[0] = n;
        MsgId(raw)
    };

    // Everything up to alice's last message (time 50) goes; carol's stays.
    let expired = InboxStore::expire(&store, &app, 55, 100).await.unwrap();
    assert_eq!(expired.messages, (1..=5).map(id).collect::<Vec<_>>());
    assert!(!expired.more);
    let pulled = store.pull(&app, &bob, 0, 10).await.unwrap();
    let held: Vec<u64> = pulled.entries.iter().map(|e| e.version).collect();
    assert_eq!(held, [6]);
    assert_eq!(
        store.unread(&app, &bob).await.unwrap(),
        [],
        "alice's two unread went with her messages"
    );
    let list = store.conversations(&app, &bob, 0, 10).await.unwrap();
    let peers: Vec<String> = list
        .conversations
        .iter()
        .map(|c| c.conversation.id().to_owned())
        .collect();
    assert_eq!(
        peers,
        ["g1"],
        "alice's row, its last message gone, is not listed"
    );

    // The newest entry goes too: its version is kept, never given again.
    InboxStore::expire(&store, &app, 100, 100).await.unwrap();
    assert_eq!(store.last_version(&app, &bob).await.unwrap(), 6);
    let next = direct_delivery("alice", "bob", "again", "");
    let AppendOutcome::Appended(appended) = InboxStore::append(&store, &app, &next).await.unwrap()
    else {
        panic!("appended");
    };
    assert_eq!((appended[1].version, appended[1].prev_version), (7, 6));

    // A super group's only entry goes; its seq is not given again.
    let sg = GroupId::new("sg");
    let gone = ChannelLog::expire(&store, &app, 100, 100).await.unwrap();
    assert_eq!(gone.messages, [id(7)]);
    assert_eq!(ChannelLog::last_seq(&store, &app, &sg).await.unwrap(), 1);
    let next = ChannelLog::append(&store, &app, &channel_message("sg", "alice", "again", ""))
        .await
        .unwrap();
    assert_eq!(
        next,
        ChannelAppend::Appended {
            seq: 2,
            prev_seq: 1
        }
    );
    store.close().await;
}

// ------------------------------------------- numbered names (migration 10)

/// Every `(app, name)` the file numbers, by number.
fn numbered(path: &Path) -> BTreeMap<i64, (String, String)> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn.prepare("SELECT id, app, name FROM names").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn a_file_at_migration_9_numbers_its_owners_and_peers_and_reads_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bubble.db");
    file_at_migration(&path, 9);
    tamper(&path, BOB_AT_MIGRATION_7);
    // As migration 8 left such a file: alice's 3 and 4 unread, the group
    // row muted with a draft (its flags and draft must come across too).
    tamper(
        &path,
        "UPDATE conversations SET unread = 2, unread_floor = 3, last_received = 4 \
         WHERE peer = 'alice'; \
         UPDATE conversations SET unread_floor = 7, last_received = 6, flags = 2, \
         draft = 'half a thought' WHERE peer = 'g1'; \
         INSERT INTO inbox (app, owner, version, message, peer, conv_kind, direction, status, \
         read_up_to) VALUES ('other', 'bob', 1, 6, 'g1', 2, -1, 0, 0); \
         INSERT INTO inbox_sent (app, sender, client_msg_id, server_msg_id, version, server_time) \
         VALUES ('acme', 'bob', 'b2', X'05000000000000000000000000000000', 5, 50), \
                ('acme', 'erin', 'e1', X'09000000000000000000000000000000', 1, 90)",
    );

    let store = open(&path).await;
    let tenth = applied(&path).pop().unwrap();
    assert_eq!(
        (tenth.version, tenth.description.as_str()),
        (10, "numbered_names")
    );
    let names: BTreeSet<(String, String)> = numbered(&path).into_values().collect();
    let expected: BTreeSet<(String, String)> = [
        ("acme", "alice"),
        ("acme", "bob"),
        ("acme", "erin"),
        ("acme", "g1"),
        ("other", "bob"),
        ("other", "g1"),
    ]
    .iter()
    .map(|(a, n)| (a.to_string(), n.to_string()))
    .collect();
    assert_eq!(names, expected, "each (app, name) once, apps apart");
    let columns = |table: &str| -> Vec<(String, String)> {
        let conn = Connection::open(&path).unwrap();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT name, type FROM pragma_table_info('{table}')"
            ))
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    for table in ["inbox", "conversations", "inbox_sent"] {
        let cols = columns(table);
        assert!(!cols.iter().any(|(n, _)| n == "app"), "{table}: {cols:?}");
        let keys: &[&str] = if table == "inbox_sent" {
            &["sender"]
        } else {
            &["owner", "peer"]
        };
        for key in keys {
            assert!(
                cols.contains(&(key.to_string(), "INTEGER".to_owned())),
                "{table}.{key} is a number: {cols:?}"
            );
        }
    }

    let (app, bob) = (AppId::new("acme"), UserId::new("bob"));
    let alice = Conversation::direct(&user("alice"));
    let pulled = store.pull(&app, &bob, 0, 10).await.unwrap();
    let lines: Vec<(u64, String, String)> = pulled
        .entries
        .iter()
        .map(|e| {
            (
                e.version,
                e.owner.to_string(),
                e.conversation.id().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            (1, "bob".into(), "alice".into()),
            (2, "bob".into(), "alice".into()),
            (3, "bob".into(), "alice".into()),
            (4, "bob".into(), "alice".into()),
            (5, "bob".into(), "alice".into()),
            (6, "bob".into(), "g1".into()),
        ],
        "every entry, names given back"
    );
    let history = store.history(&app, &bob, &alice, 0, 2).await.unwrap();
    assert_eq!(
        history
            .entries
            .iter()
            .map(|e| e.version)
            .collect::<Vec<_>>(),
        [5, 4]
    );
    let unread = store.unread(&app, &bob).await.unwrap();
    assert_eq!(
        unread
            .iter()
            .map(|u| (u.conversation.clone(), u.count))
            .collect::<Vec<_>>(),
        [(alice.clone(), 2)]
    );
    let list = store.conversations(&app, &bob, 0, 10).await.unwrap();
    let rows: Vec<(String, u64, bool, String)> = list
        .conversations
        .iter()
        .map(|c| {
            (
                c.conversation.id().to_owned(),
                c.unread,
                c.settings.muted,
                c.settings.draft.clone(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("g1".into(), 0, true, "half a thought".into()),
            ("alice".into(), 2, false, String::new()),
        ]
    );
    // The other app's bob is another owner.
    let other = store.pull(&AppId::new("other"), &bob, 0, 10).await.unwrap();
    assert_eq!(other.entries.len(), 1);
    assert_eq!(other.entries[0].conversation.id(), "g1");

    // The dedup receipts came across: a retry of bob's b2 gets its first
    // receipt back, and erin's (a sender with no entries) is found too.
    let receipt = store
        .find_sent(&app, &bob, "b2")
        .await
        .unwrap()
        .expect("b2's receipt");
    assert_eq!((receipt.version, receipt.server_time), (5, 50));
    let erin = store.find_sent(&app, &user("erin"), "e1").await.unwrap();
    assert_eq!(erin.map(|r| r.version), Some(1));
    let retry = direct_delivery("bob", "alice", "again", "b2");
    let AppendOutcome::Duplicate(first) = InboxStore::append(&store, &app, &retry).await.unwrap()
    else {
        panic!("a retry of b2 is a duplicate");
    };
    assert_eq!(first.server_time, 50);

    // Writes go on where the file left off: bob's next version is 7, and
    // a name never seen before is numbered.
    let next = direct_delivery("dave", "bob", "hello", "");
    let AppendOutcome::Appended(appended) = InboxStore::append(&store, &app, &next).await.unwrap()
    else {
        panic!("appended");
    };
    assert_eq!((appended[1].version, appended[1].prev_version), (7, 6));
    let marked = store.mark_read(&app, &bob, &alice, 99).await.unwrap();
    assert_eq!(marked.marked, 2);
    assert_eq!(marked.last_read.map(|e| e.version), Some(4));
    store.close().await;
    assert!(
        numbered(&path)
            .values()
            .any(|n| n == &("acme".to_owned(), "dave".to_owned())),
        "dave is numbered"
    );
}

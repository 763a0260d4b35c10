//! The hot statements use the index written for them (checked with
//! `EXPLAIN QUERY PLAN` on the real schema), so none of them turns into a
//! scan of a table that grows with every message.

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Row};

use crate::{append, channel, inbox};

async fn plan(sql: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = SqliteConnectOptions::new()
        .filename(dir.path().join("plan.db"))
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    sqlx::raw_sql(include_str!("../migrations/0001_init.sql"))
        .execute(&mut conn)
        .await
        .unwrap();
    let mut q = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")));
    for _ in 0..sql.matches('?').count() {
        q = q.bind(None::<i64>);
    }
    let found = q.fetch_all(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    found
        .iter()
        .map(|r| r.get::<String, _>(3))
        .collect::<Vec<_>>()
        .join(" | ")
}

async fn assert_uses(sql: &str, index: &str) {
    let p = plan(sql).await;
    assert!(
        p.contains(index),
        "expected {index} in the plan of\n{sql}\ngot: {p}"
    );
    assert!(
        !p.contains("SCAN inbox") && !p.contains("SCAN channel_log"),
        "a table scan in: {p}"
    );
}

#[tokio::test]
async fn pull_is_a_range_of_inbox_pull() {
    assert_uses(inbox::PULL, "inbox_pull (app=? AND owner=? AND version>?)").await;
}

#[tokio::test]
async fn get_by_message_id_uses_inbox_by_msg() {
    assert_uses(
        inbox::GET,
        "inbox_by_msg (app=? AND server_msg_id=? AND owner=?)",
    )
    .await;
}

#[tokio::test]
async fn unread_reads_only_the_unread_partial_index() {
    assert_uses(inbox::UNREAD, "inbox_unread (app=? AND owner=?)").await;
}

#[tokio::test]
async fn mark_read_touches_only_unread_rows_of_the_conversation() {
    assert_uses(
        inbox::MARK_READ,
        "inbox_unread (app=? AND owner=? AND conv_kind=? AND peer=? AND version<?)",
    )
    .await;
    assert_uses(
        inbox::LAST_READ,
        "inbox_conversation (app=? AND owner=? AND conv_kind=? AND peer=? AND version<?)",
    )
    .await;
    assert_uses(inbox::MARK_MESSAGE_READ, "inbox_by_msg").await;
}

#[tokio::test]
async fn batch_lookups_seek_an_index_per_key() {
    let p = plan(append::LAST_VERSION).await;
    assert!(
        p.contains("SEARCH inbox USING COVERING INDEX inbox_pull (app=? AND owner=?)"),
        "{p}"
    );
    let p = plan(append::FIND_SENT).await;
    assert!(
        p.contains("SEARCH inbox_sent USING PRIMARY KEY (app=? AND sender=? AND client_msg_id=?)"),
        "{p}"
    );
}

#[tokio::test]
async fn outbox_entries_are_found_by_owner_and_version() {
    assert_uses(
        inbox::PENDING_INDEX,
        "SEARCH i USING INDEX inbox_pull (app=? AND owner=? AND version=?)",
    )
    .await;
}

#[tokio::test]
async fn channel_reads_use_their_indexes() {
    assert_uses(
        channel::RANGE,
        "channel_log_range (app=? AND group_id=? AND seq>?)",
    )
    .await;
    assert_uses(
        channel::GET,
        "channel_log_by_msg (app=? AND group_id=? AND server_msg_id=?)",
    )
    .await;
}

#[tokio::test]
async fn the_channel_seq_counter_is_one_seek_to_the_newest_row() {
    let p = plan(channel::NEXT_SEQ).await;
    assert!(
        p.contains("SEARCH channel_log USING COVERING INDEX channel_log_range"),
        "{p}"
    );
}

#[tokio::test]
async fn groups_of_uses_the_by_user_index() {
    let p = plan("SELECT group_id FROM group_members WHERE app = ? AND user = ? ORDER BY group_id")
        .await;
    assert!(
        p.contains("group_members_by_user (app=? AND user=?)"),
        "{p}"
    );
    assert!(!p.contains("TEMP B-TREE"), "already in order: {p}");
}

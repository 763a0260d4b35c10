//! The hot statements use the index written for them (checked with
//! `EXPLAIN QUERY PLAN` on the real schema), so none of them turns into a
//! scan of a table that grows with every message.

use rusqlite::Connection;

use crate::{append, channel, inbox, schema, search_source};

fn plan(sql: &str) -> String {
    let mut conn = Connection::open_in_memory().unwrap();
    schema::migrate(&mut conn).unwrap();
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let nulls = vec![None::<i64>; stmt.parameter_count()];
    let found = stmt
        .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<rusqlite::Result<Vec<_>>>()
        .unwrap();
    found.join(" | ")
}

fn assert_uses(sql: &str, index: &str) {
    let p = plan(sql);
    assert!(
        p.contains(index),
        "expected {index} in the plan of\n{sql}\ngot: {p}"
    );
    assert!(
        !p.contains("SCAN inbox") && !p.contains("SCAN channel_log"),
        "a table scan in: {p}"
    );
}

#[test]
fn pull_is_a_range_of_the_inbox_key_joined_by_rowid() {
    let p = plan(inbox::PULL);
    assert_eq!(
        p,
        "SEARCH i USING PRIMARY KEY (owner=? AND version>?) | \
         SCALAR SUBQUERY 2 | SEARCH names USING COVERING INDEX names_by_name (app=? AND name=?) | \
         SEARCH m USING INTEGER PRIMARY KEY (rowid=?) | \
         CORRELATED SCALAR SUBQUERY 1 | SEARCH names USING INTEGER PRIMARY KEY (rowid=?)",
        "one indexed read after the owner's number: no sort, no other index; the peer's name by rowid"
    );
}

#[test]
fn history_is_a_backwards_range_of_the_conversation_index_joined_by_rowid() {
    let p = plan(inbox::HISTORY);
    assert_eq!(
        p,
        "SEARCH i USING INDEX inbox_history (owner=? AND conv_kind=? AND peer=? AND version<?) | \
         SCALAR SUBQUERY 1 | SEARCH names USING COVERING INDEX names_by_name (app=? AND name=?) | \
         SCALAR SUBQUERY 2 | SEARCH names USING COVERING INDEX names_by_name (app=? AND name=?) | \
         SEARCH m USING INTEGER PRIMARY KEY (rowid=?)",
        "one indexed read, newest first: no sort"
    );
}

#[test]
fn a_conversation_list_page_is_a_backwards_range_of_its_index_joined_by_keys() {
    let p = plan(inbox::CONVERSATIONS);
    assert_eq!(
        p,
        "SEARCH c USING INDEX conversations_by_activity (owner=? AND activity>? AND activity<?) | \
         SCALAR SUBQUERY 2 | SEARCH names USING COVERING INDEX names_by_name (app=? AND name=?) | \
         SEARCH i USING PRIMARY KEY (owner=? AND version=?) | REUSE SUBQUERY 2 | \
         SEARCH m USING INTEGER PRIMARY KEY (rowid=?) | \
         CORRELATED SCALAR SUBQUERY 1 | SEARCH names USING INTEGER PRIMARY KEY (rowid=?)",
        "one indexed read, newest first: no sort, no scan"
    );
}

#[test]
fn channel_history_is_a_backwards_range_of_the_log() {
    let p = plan(channel::RANGE_BEFORE);
    assert!(
        p.contains("channel_log_range (app=? AND group_id=? AND seq<?)")
            && !p.contains("TEMP B-TREE"),
        "one indexed read, newest first, no sort: {p}"
    );
}

#[test]
fn get_by_message_id_goes_from_the_message_to_the_owners_entry() {
    assert_uses(inbox::GET, "messages_by_id (app=? AND server_msg_id=?)");
    assert_uses(inbox::GET, "inbox_by_msg (message=? AND owner=?)");
    assert!(
        !plan(inbox::GET).contains("PRIMARY KEY (owner=?)"),
        "not the owner's whole inbox"
    );
}

#[test]
fn unread_reads_only_the_owners_list_rows() {
    let p = plan(inbox::UNREAD);
    assert_eq!(
        p,
        "SEARCH conversations USING PRIMARY KEY (owner=?) | \
         SCALAR SUBQUERY 2 | SEARCH names USING COVERING INDEX names_by_name (app=? AND name=?) | \
         CORRELATED SCALAR SUBQUERY 1 | SEARCH names USING INTEGER PRIMARY KEY (rowid=?) | \
         USE TEMP B-TREE FOR LAST TERM OF ORDER BY",
        "the list rows alone, no entry; sorted by the peers' names (the rows with unread only)"
    );
}

#[test]
fn mark_read_touches_only_the_conversation_from_its_unread_floor_to_the_mark() {
    assert_uses(
        inbox::MARK_READ,
        "inbox_history (owner=? AND conv_kind=? AND peer=? AND version>? AND version<?)",
    );
    assert_uses(inbox::MARK_READ, "conversations USING PRIMARY KEY");
    assert_uses(
        inbox::LAST_READ,
        "inbox_history (owner=? AND conv_kind=? AND peer=? AND version<?)",
    );
    assert_uses(
        inbox::MARK_MESSAGE_READ,
        "inbox_by_msg (message=? AND owner=?",
    );
    assert_uses(
        inbox::MARK_MESSAGE_READ,
        "messages_by_id (app=? AND server_msg_id=?)",
    );
}

#[test]
fn batch_lookups_seek_an_index_per_key() {
    let p = plan(append::LAST_VERSION);
    assert!(
        p.contains("SEARCH inbox USING PRIMARY KEY (owner=?)")
            && p.contains("SEARCH names USING COVERING INDEX names_by_name (app=? AND name=?)"),
        "{p}"
    );
    assert!(
        p.contains("SEARCH version_floors USING PRIMARY KEY (app=? AND owner=?)"),
        "{p}"
    );
    let p = plan(append::NEWEST_ENTRY);
    assert_eq!(p, "SEARCH inbox USING PRIMARY KEY (owner=?)");
    let p = plan(append::FIND_SENT);
    assert!(
        p.contains("SEARCH inbox_sent USING PRIMARY KEY (sender=? AND client_msg_id=?)")
            && p.contains("SEARCH names USING COVERING INDEX names_by_name (app=? AND name=?)"),
        "{p}"
    );
    let p = plan(append::FIND_SENT_BY_NUMBER);
    assert_eq!(
        p,
        "SEARCH inbox_sent USING PRIMARY KEY (sender=? AND client_msg_id=?)"
    );
}

#[test]
fn outbox_tasks_find_their_message_and_owners_by_rowid() {
    let p = plan(search_source::PENDING_INDEX);
    assert_uses(
        search_source::PENDING_INDEX,
        "SEARCH m USING INTEGER PRIMARY KEY (rowid=?)",
    );
    assert_uses(
        search_source::PENDING_INDEX,
        "SEARCH i USING INDEX inbox_by_msg (message=? AND owner=?)",
    );
    assert!(!p.contains("TEMP B-TREE"), "already in outbox order: {p}");
    assert_eq!(
        plan(search_source::TASK_OWNERS),
        "SEARCH inbox USING COVERING INDEX inbox_by_msg (message=?) | \
         CORRELATED SCALAR SUBQUERY 1 | SEARCH names USING INTEGER PRIMARY KEY (rowid=?)",
        "the owners from the index alone, names by rowid"
    );
}

#[test]
fn channel_reads_use_their_indexes() {
    assert_uses(
        channel::RANGE,
        "channel_log_range (app=? AND group_id=? AND seq>?)",
    );
    assert_uses(
        channel::GET,
        "channel_log_by_msg (app=? AND group_id=? AND server_msg_id=?)",
    );
}

#[test]
fn the_channel_seq_counter_is_one_seek_to_the_newest_row() {
    let p = plan(channel::LAST_SEQ);
    assert!(
        p.contains("SEARCH channel_log USING COVERING INDEX channel_log_range")
            && p.contains("SEARCH channel_floors USING PRIMARY KEY (app=? AND group_id=?)"),
        "{p}"
    );
}

#[test]
fn groups_of_uses_the_by_user_index() {
    let p = plan("SELECT group_id FROM group_members WHERE app = ? AND user = ? ORDER BY group_id");
    assert!(
        p.contains("group_members_by_user (app=? AND user=?)"),
        "{p}"
    );
    assert!(!p.contains("TEMP B-TREE"), "already in order: {p}");
}

#[test]
fn settings_and_blocks_read_the_owners_list_rows_by_key() {
    assert_uses(
        crate::extras::SETTINGS,
        "SEARCH conversations USING PRIMARY KEY (owner=? AND conv_kind=? AND peer=?)",
    );
    let p = plan(crate::extras::BLOCKED);
    assert!(
        p.contains("SEARCH conversations USING PRIMARY KEY (owner=? AND conv_kind=?)"),
        "the owner's 1:1 rows: {p}"
    );
}

#[test]
fn group_read_state_goes_from_the_message_to_each_copy_and_its_list_row() {
    let p = plan(crate::extras::READERS);
    assert_uses(
        crate::extras::READERS,
        "messages_by_id (app=? AND server_msg_id=?)",
    );
    assert_uses(crate::extras::READERS, "inbox_by_msg (message=?)");
    assert!(
        p.contains("SEARCH c USING PRIMARY KEY (owner=? AND conv_kind=? AND peer=?) LEFT-JOIN"),
        "{p}"
    );
}

#[test]
fn reaction_counts_read_only_the_emoji_index() {
    let p = plan(crate::extras::REACTIONS);
    assert!(
        p.contains(
            "SEARCH reactions USING COVERING INDEX reactions_by_emoji (app=? AND server_msg_id=?)"
        ) && !p.contains("TEMP B-TREE"),
        "{p}"
    );
}

#[test]
fn a_claim_walks_its_queue_in_id_order_without_a_sort() {
    for sql in [crate::jobs::CLAIM_ANY, crate::jobs::CLAIM_HEAD] {
        let p = plan(sql);
        assert!(
            p.contains("SEARCH jobs USING INDEX jobs_by_queue (queue=?)")
                && !p.contains("TEMP B-TREE"),
            "{p}"
        );
    }
    let p = plan(crate::jobs::DEPTH);
    assert!(
        p.contains("SEARCH jobs USING COVERING INDEX jobs_by_queue (queue=?)"),
        "counted from the index alone: {p}"
    );
}

#[test]
fn a_users_push_tokens_are_a_range_of_the_key() {
    let p = plan(crate::push_tokens::TOKENS);
    assert!(
        p.contains("SEARCH push_tokens USING PRIMARY KEY (app=? AND user=?)")
            && !p.contains("TEMP B-TREE"),
        "already in device order: {p}"
    );
}

#[test]
fn retention_reads_an_apps_oldest_messages_and_log_entries_in_time_order_and_entries_by_message() {
    let p = plan(crate::retention::OLDEST);
    assert!(
        p.contains("SEARCH messages USING INDEX messages_by_time (app=? AND server_time<?)")
            && !p.contains("TEMP B-TREE"),
        "a range of the time index, already in order: {p}"
    );
    let p = plan(crate::retention::CHANNEL_OLDEST);
    assert!(
        p.contains("SEARCH channel_log USING INDEX channel_log_by_time (app=? AND server_time<?)")
            && !p.contains("TEMP B-TREE"),
        "{p}"
    );
    assert_uses(
        crate::retention::ENTRIES,
        "SEARCH inbox USING INDEX inbox_by_msg (message=?)",
    );
}

#[test]
fn the_appends_name_lookup_is_one_seek_of_the_name_index() {
    let p = plan("SELECT id FROM names WHERE app = ?1 AND name = ?2");
    assert_eq!(
        p,
        "SEARCH names USING COVERING INDEX names_by_name (app=? AND name=?)"
    );
}

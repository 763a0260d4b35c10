-- bubble's embedded store: every table of InboxStore, GroupStore, ChannelLog
-- and AppStore in one SQLite file. docs/storage/sqlite.md explains each
-- table and index and the query it serves.
--
-- Text ids are compared with SQLite's default BINARY collation, which orders
-- UTF-8 byte for byte: the same order as Rust's `str`, so "ordered by id" in
-- the ports is a plain ORDER BY.

-- ------------------------------------------------------------------ inbox

-- One row per owner of a message (the seed's message table): the sender's
-- copy (direction 1) and each receiver's copy (direction -1).
--
-- What a write costs here is mostly how many B-tree pages it dirties: each
-- commit appends every dirty page (4 KiB) to the WAL, and the checkpoint
-- writes it again. Rows go to the end of the table (a rowid table, so a
-- batch fills a few shared pages); each index below is one more page per
-- row in a place that depends on the owner, so there are as few as the
-- queries allow and the message-id index keeps one message's rows together.
CREATE TABLE inbox (
    id            INTEGER PRIMARY KEY,   -- rowid: rows append at the end of the tree
    app           TEXT    NOT NULL,
    owner         TEXT    NOT NULL,      -- the seed's qID
    version       INTEGER NOT NULL,      -- the owner's version
    peer          TEXT    NOT NULL,      -- the seed's pID: other user, or group id
    conv_kind     INTEGER NOT NULL,      -- ConversationKind: 1 direct, 2 group, 3 super, 4 system
    direction     INTEGER NOT NULL,      -- 1 sent by the owner, -1 received
    status        INTEGER NOT NULL DEFAULT 0, -- 1 once read
    kind          INTEGER NOT NULL,      -- EntryKind: 1 message, 2 recall, ... 6 notice
    server_msg_id BLOB    NOT NULL,      -- 16 bytes
    sender        TEXT    NOT NULL,
    sender_device TEXT    NOT NULL,
    client_msg_id TEXT    NOT NULL,
    client_seq    INTEGER NOT NULL,
    create_time   INTEGER NOT NULL,      -- sender's clock, ms
    server_time   INTEGER NOT NULL,      -- server's clock, ms
    content_type  INTEGER NOT NULL,
    content       BLOB    NOT NULL,
    read_up_to    INTEGER NOT NULL
);

-- Sync: `pull(owner, after_version, limit)` is one range scan. It is also
-- the version counter: an append reads the owner's MAX(version) here (one
-- seek to the page it is about to write anyway) inside the writer's
-- transaction, so versions strictly increase without a counter table that
-- would cost one more page per entry. Unique, so a version can never be
-- given twice even by a buggy writer.
CREATE UNIQUE INDEX inbox_pull ON inbox (app, owner, version);

-- `get(owner, server_msg_id)` and `mark_message_read`. The message id
-- comes first so all copies of one message (sender, receiver, every group
-- member) sit side by side: one page per message, not one per owner.
CREATE INDEX inbox_by_msg ON inbox (app, server_msg_id, owner);

-- The newest received message a read mark covers (`mark_read` names it in
-- the read receipt, also when it was read before). Received messages only:
-- the sender's copies and receipts never need it.
CREATE INDEX inbox_conversation ON inbox (app, owner, conv_kind, peer, version)
    WHERE direction = -1 AND kind IN (1, 6);

-- The seed's unread query (`direct = -1 AND qID = B AND status = 0`) as a
-- partial index: it holds only unread received messages, so it shrinks as
-- they are read, `unread()` is a scan of it grouped by conversation and
-- `mark_read` touches only what is still unread.
CREATE INDEX inbox_unread ON inbox (app, owner, conv_kind, peer, version)
    WHERE status = 0 AND direction = -1 AND kind IN (1, 6);

-- Accepted client message ids: the dedup key is the primary key, so a
-- second acceptance of (app, sender, client_msg_id) cannot be written.
-- Holds the receipt a retry gets back.
CREATE TABLE inbox_sent (
    app           TEXT    NOT NULL,
    sender        TEXT    NOT NULL,
    client_msg_id TEXT    NOT NULL,
    server_msg_id BLOB    NOT NULL,
    version       INTEGER NOT NULL,      -- the sender's own version of the message
    server_time   INTEGER NOT NULL,
    PRIMARY KEY (app, sender, client_msg_id)
) WITHOUT ROWID;

-- The search indexer's durable outbox, written in the same transaction as
-- the entries: nothing acknowledged goes unindexed. The id gives the order.
CREATE TABLE index_outbox (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    app     TEXT    NOT NULL,
    owner   TEXT    NOT NULL,
    version INTEGER NOT NULL
);

-- ----------------------------------------------------------------- groups

-- ("groups" is an SQL keyword, hence chat_groups.)
CREATE TABLE chat_groups (
    app        TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    kind       INTEGER NOT NULL,         -- GroupKind: 1 normal, 2 super
    owner      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (app, id)
) WITHOUT ROWID;

-- Members in user order under their group: `members()` is one range scan.
CREATE TABLE group_members (
    app       TEXT    NOT NULL,
    group_id  TEXT    NOT NULL,
    user      TEXT    NOT NULL,
    role      INTEGER NOT NULL,          -- Role: 1 member, 2 admin, 3 owner
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (app, group_id, user)
) WITHOUT ROWID;

-- `groups_of(user)`, already in group order.
CREATE INDEX group_members_by_user ON group_members (app, user, group_id);

-- ------------------------------------------------------------ channel log

-- Super-group logs: one row per message, numbered per group.
CREATE TABLE channel_log (
    id            INTEGER PRIMARY KEY,
    app           TEXT    NOT NULL,
    group_id      TEXT    NOT NULL,
    seq           INTEGER NOT NULL,
    kind          INTEGER NOT NULL,
    server_msg_id BLOB    NOT NULL,
    sender        TEXT    NOT NULL,
    sender_device TEXT    NOT NULL,
    client_msg_id TEXT    NOT NULL,
    client_seq    INTEGER NOT NULL,
    create_time   INTEGER NOT NULL,
    server_time   INTEGER NOT NULL,
    content_type  INTEGER NOT NULL,
    content       BLOB    NOT NULL
);

-- `range(group, after_seq, limit)` and `count_messages_after`; also the seq
-- counter (MAX(seq), read inside the writer's transaction).
CREATE UNIQUE INDEX channel_log_range ON channel_log (app, group_id, seq);

-- `get(group, server_msg_id)`.
CREATE INDEX channel_log_by_msg ON channel_log (app, group_id, server_msg_id);

-- Channel dedup: (group, sender, client_msg_id) accepted once.
CREATE TABLE channel_sent (
    app           TEXT    NOT NULL,
    group_id      TEXT    NOT NULL,
    sender        TEXT    NOT NULL,
    client_msg_id TEXT    NOT NULL,
    server_msg_id BLOB    NOT NULL,
    seq           INTEGER NOT NULL,
    server_time   INTEGER NOT NULL,
    PRIMARY KEY (app, group_id, sender, client_msg_id)
) WITHOUT ROWID;

-- Members' read positions in super groups (only ever moved forward).
CREATE TABLE channel_reads (
    app      TEXT    NOT NULL,
    group_id TEXT    NOT NULL,
    user     TEXT    NOT NULL,
    read_seq INTEGER NOT NULL,
    PRIMARY KEY (app, group_id, user)
) WITHOUT ROWID;

-- ------------------------------------------------------------------- apps

CREATE TABLE apps (
    id       TEXT NOT NULL PRIMARY KEY,
    name     TEXT NOT NULL,
    secret   TEXT NOT NULL,
    settings TEXT NOT NULL              -- AppSettings as JSON (AppConfig::settings_json)
) WITHOUT ROWID;

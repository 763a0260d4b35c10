-- The conversation list (docs/storage/mysql.md): a chat app's home screen, "my
-- conversations, newest first, each with its last message and unread count",
-- as one indexed read however large the inbox. One row per owner and
-- conversation (as the owner sees it), kept by the append in the delivery's
-- own transaction by the rules of InboxStore::conversations: a message or
-- notice sets the activity and the last entry and, received, adds an unread;
-- a recall or delete of the last message becomes the last entry; read cursors
-- and receipts raise the read positions; mark_read and mark_message_read take
-- off what they marked.
--
-- MySQL runs DDL outside transactions: if a statement after CREATE TABLE
-- fails, drop `conversations`, delete version 4 from `_sqlx_migrations` and
-- start the store again.
CREATE TABLE conversations (
    app             VARBINARY(128)   NOT NULL,
    owner           VARBINARY(128)   NOT NULL,
    conv_kind       TINYINT UNSIGNED NOT NULL,
    conv_id         VARBINARY(128)   NOT NULL,
    activity        BIGINT UNSIGNED  NOT NULL
        COMMENT '(server_time << 20) | (version & 0xFFFFF) of the newest message or notice',
    last_version    BIGINT UNSIGNED  NOT NULL COMMENT 'the owner''s entry shown as the last one',
    last_msg        BINARY(16)       NOT NULL COMMENT 'the message that entry is, or names',
    unread          BIGINT UNSIGNED  NOT NULL DEFAULT 0,
    read_up_to      BIGINT UNSIGNED  NOT NULL DEFAULT 0
        COMMENT 'the owner''s read mark: a version of their inbox',
    peer_read_up_to BIGINT UNSIGNED  NOT NULL DEFAULT 0
        COMMENT '1:1: the highest of the owner''s versions the peer has read',
    -- The append's upserts and updates, one row each.
    PRIMARY KEY (app, owner, conv_kind, conv_id),
    -- A page of the list: the owner's rows backwards from an activity.
    KEY ix_conversations_activity (app, owner, activity)
) ENGINE = InnoDB;

-- The rows of the inboxes written so far, in one grouped pass over the inbox
-- (per owner and conversation: the newest message or notice, the unread count
-- as `unread()` counts it, the highest read cursor and read receipt), each
-- joined by primary keys to its newest message's id and server time.
-- Conversations without a message or notice get no row. Receipts written
-- before the engine put a version in them hold 0 and raise nothing.
INSERT INTO conversations (app, owner, conv_kind, conv_id, activity, last_version,
                           last_msg, unread, read_up_to, peer_read_up_to)
SELECT l.app, l.owner, l.conv_kind, l.conv_id,
       (CAST(GREATEST(m.server_time, 0) AS UNSIGNED) << 20) | (l.newest & 1048575),
       l.newest, m.server_msg_id, l.unread, l.read_up_to, l.peer_read_up_to
FROM (
    SELECT i.app, i.owner, i.conv_kind, i.conv_id,
           MAX(CASE WHEN e.entry_kind IN (1, 6) THEN i.version END) AS newest,
           SUM(i.direct = -1 AND i.status = 0) AS unread,
           MAX(CASE WHEN e.entry_kind = 5 THEN i.read_up_to ELSE 0 END) AS read_up_to,
           MAX(CASE WHEN e.entry_kind = 4 THEN i.read_up_to ELSE 0 END) AS peer_read_up_to
    FROM inbox i JOIN messages e ON e.id = i.message_id
    GROUP BY i.app, i.owner, i.conv_kind, i.conv_id
) l
JOIN inbox i ON i.app = l.app AND i.owner = l.owner AND i.version = l.newest
JOIN messages m ON m.id = i.message_id;

-- A newest message the owner holds a later recall or delete of (in the same
-- conversation) shows the newest of those in its place: from each row's
-- message id to its recall and delete rows (ix_messages_server_msg), then
-- the owner's entries of them (ix_inbox_message). The grouped derived table
-- is materialized before the update, so MySQL lets it read the table it
-- updates.
UPDATE conversations c
JOIN (
    SELECT r.app, r.owner, r.conv_kind, r.conv_id, MAX(i.version) AS version
    FROM conversations r
    JOIN messages m ON m.app = r.app AND m.server_msg_id = r.last_msg
                   AND m.entry_kind IN (2, 3)
    JOIN inbox i ON i.app = r.app AND i.owner = r.owner AND i.message_id = m.id
                AND i.conv_kind = r.conv_kind AND i.conv_id = r.conv_id
                AND i.version > r.last_version
    GROUP BY r.app, r.owner, r.conv_kind, r.conv_id
) u ON u.app = c.app AND u.owner = c.owner AND u.conv_kind = c.conv_kind
   AND u.conv_id = c.conv_id
SET c.last_version = u.version;

-- Read receipts written before this release carry no version (read_up_to
-- 0): the peer's position is the owner's version of the message each one
-- names, as the SQLite store's migration 5 finds it too.
UPDATE conversations c
JOIN (
    SELECT r.app, r.owner, r.conv_kind, r.conv_id, MAX(o.version) AS version
    FROM inbox r
    JOIN messages rm ON rm.id = r.message_id AND rm.entry_kind = 4
    JOIN messages om ON om.app = rm.app AND om.server_msg_id = rm.server_msg_id
                    AND om.entry_kind IN (1, 6)
    JOIN inbox o ON o.app = r.app AND o.owner = r.owner AND o.message_id = om.id
    GROUP BY r.app, r.owner, r.conv_kind, r.conv_id
) p ON p.app = c.app AND p.owner = c.owner AND p.conv_kind = c.conv_kind
   AND p.conv_id = c.conv_id
SET c.peer_read_up_to = GREATEST(c.peer_read_up_to, p.version);

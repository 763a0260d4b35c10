-- What an entry says beyond its content, the owner's own settings of each
-- conversation, and reactions (docs/storage/mysql.md):
--
-- - `messages.meta` and `channel_log.meta` keep each entry's EntryMeta (reply,
--   forward, mentions, edit time, reaction, settings) as the encoded bytes the
--   engine gave, never re-encoded; NULL (every row written before this
--   migration, and most rows after it) is no meta. An edit rewrites the
--   content and meta of its message's row in place, so no new column is
--   needed for it.
-- - `conversations` gets the owner's settings of the conversation (flags,
--   draft) and the version of the newest received message that mentions the
--   owner, so the list and the unread counts say "mentioned" without reading
--   any message.
-- - `reactions`, one row per user and emoji on a message, and
--   `reaction_heads`, one row per message ever reacted to, whose row lock
--   orders the adds on one message so the app's caps hold on every node.
-- - `chat_groups` gets a group's avatar URL, announcement and group-wide mute
--   (only the owner and admins write), `group_members` a member's own mute
--   (until a time, ms; 0: not muted).
-- - `inbox` gets `ix_inbox_owners (message_id)`: every owner of a message row,
--   so a search rebuild (InboxStore::scan_messages) lists each message with
--   its owners without scanning the inbox.
--
-- Existing rows need no conversion: no meta, default settings, no mention, no
-- reaction; groups with no avatar, no announcement, not muted, members not
-- muted. Every added column is NULL or has a constant default, so MariaDB
-- 10.3+ and MySQL 8 add them without copying the tables.
--
-- MySQL runs DDL outside transactions: if a statement fails, undo the ones
-- before it that went through (in the file's order: `ALTER TABLE messages DROP
-- COLUMN meta`, the same for `channel_log`; `ALTER TABLE conversations DROP
-- COLUMN flags, DROP COLUMN draft, DROP COLUMN mention_version`; `DROP TABLE
-- reactions`; `DROP TABLE reaction_heads`; `ALTER TABLE chat_groups DROP
-- COLUMN avatar_url, DROP COLUMN announcement, DROP COLUMN muted`; `ALTER
-- TABLE group_members DROP COLUMN muted_until`; the index on `inbox` is the
-- last statement, and a failed CREATE INDEX leaves no index behind), delete
-- version 5 from `_sqlx_migrations` and start the store again. Nothing writes
-- the new columns before the migration is recorded. The index is built in
-- place while appends go on (InnoDB online DDL), in a time that grows with
-- the number of inbox rows.

ALTER TABLE messages
    ADD COLUMN meta MEDIUMBLOB NULL COMMENT 'EntryMeta, encoded; NULL: none';

ALTER TABLE channel_log
    ADD COLUMN meta MEDIUMBLOB NULL COMMENT 'EntryMeta, encoded; NULL: none';

ALTER TABLE conversations
    ADD COLUMN flags TINYINT UNSIGNED NOT NULL DEFAULT 0
        COMMENT 'ConversationSettings::flags(): 1 pinned, 2 muted, 4 archived, 8 blocked',
    ADD COLUMN draft MEDIUMBLOB NULL COMMENT 'the unsent text, UTF-8; NULL: none',
    ADD COLUMN mention_version BIGINT UNSIGNED NOT NULL DEFAULT 0
        COMMENT 'the newest received message that mentions the owner (0: none)';

-- Who put which emoji on a message (of any conversation: a super group's
-- messages are in the channel log, the others in `messages`; the id is the
-- key either way).
CREATE TABLE reactions (
    app           VARBINARY(128) NOT NULL,
    server_msg_id BINARY(16)     NOT NULL,
    emoji         VARBINARY(64)  NOT NULL COMMENT 'the engine takes at most 32 bytes',
    user_id       VARBINARY(128) NOT NULL,
    -- The counts of many messages in one range read, per message in emoji
    -- order; the number of distinct emoji on one message (loose index scan).
    PRIMARY KEY (app, server_msg_id, emoji, user_id),
    -- One user's emoji on one message: the per-user cap.
    KEY ix_reactions_user (app, server_msg_id, user_id)
) ENGINE = InnoDB;

-- One row per message ever reacted to: an add raises `adds` first, which
-- takes the row's lock (held to commit), so adds on one message check the
-- caps one after another, on every node (on Galera the raise is what two
-- nodes' adds conflict on). Removes never raise a count, so they skip it.
CREATE TABLE reaction_heads (
    app           VARBINARY(128)  NOT NULL,
    server_msg_id BINARY(16)      NOT NULL,
    adds          BIGINT UNSIGNED NOT NULL,
    PRIMARY KEY (app, server_msg_id)
) ENGINE = InnoDB;

-- A group's picture, announcement and group-wide mute. Byte columns (UTF-8)
-- with a constant default, so the add is in place on every server (MySQL 8
-- before 8.0.13 takes no default on TEXT). The engine takes at most 512
-- bytes of URL and 4096 of announcement; a longer value is refused
-- (`InvalidInput`: strict mode), never cut.
ALTER TABLE chat_groups
    ADD COLUMN avatar_url VARBINARY(2048) NOT NULL DEFAULT ''
        COMMENT 'URL of its picture, UTF-8; empty: none',
    ADD COLUMN announcement VARBINARY(4096) NOT NULL DEFAULT ''
        COMMENT 'pinned for every member, UTF-8; empty: none',
    ADD COLUMN muted TINYINT UNSIGNED NOT NULL DEFAULT 0
        COMMENT '1: only the owner and admins write';

-- A member's own mute.
ALTER TABLE group_members
    ADD COLUMN muted_until BIGINT NOT NULL DEFAULT 0
        COMMENT 'may not write before this time (ms); 0: not muted';

-- Every owner of a message row, for a search rebuild: the message rows of a
-- page of ids (ix_messages_server_msg), then each row's owners from this
-- index alone (the owner and version are the primary key, which every entry
-- of a secondary index holds). Message ids only grow, so appends add its
-- entries at the right edge.
CREATE INDEX ix_inbox_owners ON inbox (message_id);

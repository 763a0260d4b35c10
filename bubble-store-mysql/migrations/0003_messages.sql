-- Each message once (docs/storage/mysql.md): the fields every owner's entry of
-- a delivery shares (ids, sender, times, content) move into `messages`, and each
-- owner keeps a small inbox row (its version, its view of the conversation, its
-- read state) that names the message row. A group message to 100 members is one
-- body and 100 rows of a few dozen bytes instead of 100 bodies.
--
-- Existing rows are converted: each old inbox row becomes one message row and
-- one new inbox row (old deliveries are not merged: comparing MEDIUMBLOBs in a
-- GROUP BY only compares their first max_sort_length bytes). New appends share
-- a message row among the entries of one delivery whose shared fields are equal.
-- MySQL runs DDL outside transactions: a migration stopped half way leaves
-- `inbox_v3` or `messages` behind; drop them (the old `inbox` is still whole
-- until the last two statements) and start the store again.

-- One row per distinct message of a delivery. `id` is the reference: recalls,
-- deletes and receipts carry the id of the message they refer to in
-- server_msg_id, so (app, server_msg_id, entry_kind) is not unique.
CREATE TABLE messages (
    id            BIGINT UNSIGNED  NOT NULL AUTO_INCREMENT,
    app           VARBINARY(128)   NOT NULL,
    server_msg_id BINARY(16)       NOT NULL,
    entry_kind    TINYINT UNSIGNED NOT NULL,
    sender        VARBINARY(128)   NOT NULL,
    sender_device VARBINARY(128)   NOT NULL,
    client_msg_id VARBINARY(128)   NOT NULL,
    client_seq    BIGINT UNSIGNED  NOT NULL,
    create_time   BIGINT           NOT NULL,
    server_time   BIGINT           NOT NULL,
    content_type  TINYINT UNSIGNED NOT NULL,
    content       MEDIUMBLOB       NOT NULL,
    PRIMARY KEY (id),
    -- A message by its server id (get, mark_message_read), then the owner's
    -- entry through ix_inbox_message.
    KEY ix_messages_server_msg (app, server_msg_id)
) ENGINE = InnoDB;

-- The per-owner part of the seed's message table; same meaning of direct and
-- status as in migration 1.
CREATE TABLE inbox_v3 (
    app        VARBINARY(128)   NOT NULL,
    owner      VARBINARY(128)   NOT NULL,
    version    BIGINT UNSIGNED  NOT NULL,
    conv_kind  TINYINT UNSIGNED NOT NULL,
    conv_id    VARBINARY(128)   NOT NULL,
    direct     TINYINT          NOT NULL,
    status     TINYINT          NOT NULL,
    read_up_to BIGINT UNSIGNED  NOT NULL,
    message_id BIGINT UNSIGNED  NOT NULL COMMENT 'messages.id',
    -- "everything of B after version v": a range of the clustered key, each
    -- row joined to its message by primary key.
    PRIMARY KEY (app, owner, version),
    -- "unread of B", counted per conversation from the index alone, and
    -- mark_read's range within one conversation.
    KEY ix_inbox_unread (app, owner, direct, status, conv_kind, conv_id),
    -- The newest received message of one conversation (the read receipt names it).
    KEY ix_inbox_conversation (app, owner, conv_kind, conv_id, version),
    -- One owner's entries of one message (get, mark_message_read).
    KEY ix_inbox_message (app, owner, message_id)
) ENGINE = InnoDB;

-- Old row n (in primary key order) becomes message n; both statements number
-- the same rows the same way. AUTO_INCREMENT then continues above the largest id.
INSERT INTO messages (id, app, server_msg_id, entry_kind, sender, sender_device,
                      client_msg_id, client_seq, create_time, server_time,
                      content_type, content)
SELECT ROW_NUMBER() OVER (ORDER BY app, owner, version), app, server_msg_id,
       entry_kind, sender, sender_device, client_msg_id, client_seq, create_time,
       server_time, content_type, content
FROM inbox;

INSERT INTO inbox_v3 (app, owner, version, conv_kind, conv_id, direct, status,
                      read_up_to, message_id)
SELECT app, owner, version, conv_kind, conv_id, direct, status, read_up_to,
       ROW_NUMBER() OVER (ORDER BY app, owner, version)
FROM inbox;

-- One outbox row per delivery instead of one per owner: `owners` lists every
-- owner the task is for (each a 1-byte length and the id's bytes); NULL, as in
-- rows written before this migration, means the row's own owner only.
ALTER TABLE inbox_index_outbox ADD COLUMN owners MEDIUMBLOB NULL;

DROP TABLE inbox;
RENAME TABLE inbox_v3 TO inbox;

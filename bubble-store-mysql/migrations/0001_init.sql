-- bubble's schema on MySQL 8 / MariaDB 10.11 (docs/storage/mysql.md explains every table and index).
--
-- Ids (apps, users, groups, devices, client message ids) are VARBINARY: compared byte for
-- byte like the core compares them, with no case folding and no trailing-space padding,
-- and sorted in the same order as Rust strings. Times are milliseconds since the epoch.

-- The businesses (tenants) of a deployment.
CREATE TABLE apps (
    id       VARBINARY(128) NOT NULL,
    name     TEXT           NOT NULL,
    secret   TEXT           NOT NULL,
    settings TEXT           NOT NULL COMMENT 'AppSettings as JSON',
    PRIMARY KEY (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- The seed's message table: one row per owner of a message (fan-out on write).
-- owner = the seed's qID, conv_id = its pID, direct = its direct (1 sent, -1 received),
-- status = its status, except that only received messages and notices are ever 0 (unread):
-- every other entry is stored as 1, so `direct = -1 AND status = 0` is exactly "unread".
CREATE TABLE inbox (
    app           VARBINARY(128)   NOT NULL,
    owner         VARBINARY(128)   NOT NULL,
    version       BIGINT UNSIGNED  NOT NULL,
    conv_kind     TINYINT UNSIGNED NOT NULL,
    conv_id       VARBINARY(128)   NOT NULL,
    direct        TINYINT          NOT NULL,
    status        TINYINT          NOT NULL,
    entry_kind    TINYINT UNSIGNED NOT NULL,
    server_msg_id BINARY(16)       NOT NULL,
    sender        VARBINARY(128)   NOT NULL,
    sender_device VARBINARY(128)   NOT NULL,
    client_msg_id VARBINARY(128)   NOT NULL,
    client_seq    BIGINT UNSIGNED  NOT NULL,
    create_time   BIGINT           NOT NULL,
    server_time   BIGINT           NOT NULL,
    read_up_to    BIGINT UNSIGNED  NOT NULL,
    content_type  TINYINT UNSIGNED NOT NULL,
    content       MEDIUMBLOB       NOT NULL,
    -- "everything of B after version v": a range of the clustered key.
    PRIMARY KEY (app, owner, version),
    -- "unread of B" (direct = -1 AND owner = B AND status = 0), counted per conversation
    -- from the index alone, and mark_read's range within one conversation.
    KEY ix_inbox_unread (app, owner, direct, status, conv_kind, conv_id),
    -- The newest received message of one conversation (the read receipt names it).
    KEY ix_inbox_conversation (app, owner, conv_kind, conv_id, version),
    -- One owner's entries of one message (get, mark_message_read).
    KEY ix_inbox_message (app, owner, server_msg_id)
) ENGINE = InnoDB;

-- Each owner's newest version: the row lock that orders one owner's appends.
CREATE TABLE inbox_versions (
    app     VARBINARY(128)  NOT NULL,
    owner   VARBINARY(128)  NOT NULL,
    version BIGINT UNSIGNED NOT NULL,
    PRIMARY KEY (app, owner)
) ENGINE = InnoDB;

-- Accepted (sender, client_msg_id) pairs and their receipts: the durable dedup key.
CREATE TABLE inbox_sent (
    app           VARBINARY(128)  NOT NULL,
    sender        VARBINARY(128)  NOT NULL,
    client_msg_id VARBINARY(128)  NOT NULL,
    server_msg_id BINARY(16)      NOT NULL,
    version       BIGINT UNSIGNED NOT NULL,
    server_time   BIGINT          NOT NULL,
    PRIMARY KEY (app, sender, client_msg_id)
) ENGINE = InnoDB;

-- Entries the search indexer has not indexed yet, written in the delivery's transaction.
CREATE TABLE inbox_index_outbox (
    id      BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    app     VARBINARY(128)  NOT NULL,
    owner   VARBINARY(128)  NOT NULL,
    version BIGINT UNSIGNED NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB;

-- Groups ("groups" is a reserved word in MySQL 8).
CREATE TABLE chat_groups (
    app        VARBINARY(128)   NOT NULL,
    id         VARBINARY(128)   NOT NULL,
    name       TEXT             NOT NULL,
    kind       TINYINT UNSIGNED NOT NULL COMMENT '1 normal, 2 super',
    owner      VARBINARY(128)   NOT NULL,
    created_at BIGINT           NOT NULL,
    PRIMARY KEY (app, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE group_members (
    app       VARBINARY(128)   NOT NULL,
    group_id  VARBINARY(128)   NOT NULL,
    user_id   VARBINARY(128)   NOT NULL,
    role      TINYINT UNSIGNED NOT NULL COMMENT '1 member, 2 admin, 3 owner',
    joined_at BIGINT           NOT NULL,
    -- A group's members in user order.
    PRIMARY KEY (app, group_id, user_id),
    -- A user's groups in id order.
    KEY ix_group_members_user (app, user_id, group_id)
) ENGINE = InnoDB;

-- Each super group's newest seq: the row lock that orders one group's appends.
CREATE TABLE channel_seqs (
    app      VARBINARY(128)  NOT NULL,
    group_id VARBINARY(128)  NOT NULL,
    seq      BIGINT UNSIGNED NOT NULL,
    PRIMARY KEY (app, group_id)
) ENGINE = InnoDB;

-- The super-group log: one row per message (fan-out on read).
CREATE TABLE channel_log (
    app           VARBINARY(128)   NOT NULL,
    group_id      VARBINARY(128)   NOT NULL,
    seq           BIGINT UNSIGNED  NOT NULL,
    entry_kind    TINYINT UNSIGNED NOT NULL,
    server_msg_id BINARY(16)       NOT NULL,
    sender        VARBINARY(128)   NOT NULL,
    sender_device VARBINARY(128)   NOT NULL,
    client_msg_id VARBINARY(128)   NULL COMMENT 'NULL: no dedup',
    client_seq    BIGINT UNSIGNED  NOT NULL,
    create_time   BIGINT           NOT NULL,
    server_time   BIGINT           NOT NULL,
    content_type  TINYINT UNSIGNED NOT NULL,
    content       MEDIUMBLOB       NOT NULL,
    -- A member's pull: entries after a seq.
    PRIMARY KEY (app, group_id, seq),
    KEY ix_channel_log_message (app, group_id, server_msg_id),
    -- The dedup key; NULLs (no client id) never collide.
    UNIQUE KEY ux_channel_log_client (app, group_id, sender, client_msg_id)
) ENGINE = InnoDB;

-- How far each member of a super group has read.
CREATE TABLE channel_reads (
    app      VARBINARY(128)  NOT NULL,
    group_id VARBINARY(128)  NOT NULL,
    user_id  VARBINARY(128)  NOT NULL,
    read_seq BIGINT UNSIGNED NOT NULL,
    PRIMARY KEY (app, group_id, user_id)
) ENGINE = InnoDB;

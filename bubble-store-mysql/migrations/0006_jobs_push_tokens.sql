-- The durable work queue (JobQueue: push notifications to send, after-send
-- hooks to call) and the push tokens devices register (PushTokens). Two new
-- tables: nothing existing changes, so this is instant on any database.
--
-- MySQL runs DDL outside transactions: if the second statement fails, `DROP
-- TABLE jobs`, delete version 6 from `_sqlx_migrations` and start the store
-- again.

-- One row per job until it is completed. Ids come from AUTO_INCREMENT:
-- rows of one INSERT get growing ids in their order (on Galera, each node's
-- ids are `auto_increment_increment` apart). A job is free to claim when
-- `due_at <= now` and it has no lease or its lease ran out (`lease_until <=
-- now`). A claim locks the rows it looks at (`SELECT ... FOR UPDATE`, with
-- SKIP LOCKED for ClaimOrder::Any) and sets `holder` and `lease_until`; a
-- retry clears them.
CREATE TABLE jobs (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    queue       VARBINARY(255)  NOT NULL COMMENT 'notify/<app>, after_send/<app>...',
    payload     MEDIUMBLOB      NOT NULL COMMENT 'the worker''s own encoding, any bytes',
    due_at      BIGINT          NOT NULL COMMENT 'not before, ms',
    enqueued_at BIGINT          NOT NULL COMMENT 'ms',
    attempts    INT UNSIGNED    NOT NULL DEFAULT 0 COMMENT 'retries so far',
    holder      VARBINARY(255)  NULL COMMENT 'who claimed it last; NULL: nobody holds it',
    lease_until BIGINT          NULL COMMENT 'held until, ms; NULL: nobody holds it',
    PRIMARY KEY (id),
    -- A claim walks one queue oldest first; depth counts one queue.
    KEY ix_jobs_queue (queue, id)
) ENGINE = InnoDB;

-- One token per device of a user (the key). A provider's token reaches one
-- device: `ux_push_tokens_token` finds the row a token registered again
-- moves from, and the row a provider said is no longer valid. Text columns
-- are UTF-8 bytes, compared and sorted byte for byte like the core's ids.
CREATE TABLE push_tokens (
    app         VARBINARY(128)  NOT NULL,
    user_id     VARBINARY(128)  NOT NULL,
    device      VARBINARY(128)  NOT NULL,
    platform    VARBINARY(16)   NOT NULL COMMENT 'apns, fcm or webhook',
    token       VARBINARY(2048) NOT NULL COMMENT 'the provider''s token for the device',
    locale      VARBINARY(255)  NOT NULL COMMENT 'en, zh-CN...',
    quiet_until BIGINT          NOT NULL COMMENT 'do-not-disturb until, ms; 0: not',
    updated_at  BIGINT          NOT NULL COMMENT 'registered at, ms',
    -- A user's tokens in device order.
    PRIMARY KEY (app, user_id, device),
    UNIQUE KEY ux_push_tokens_token (app, platform, token)
) ENGINE = InnoDB;

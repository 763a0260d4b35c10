-- Work that must still happen after an ack (JobQueue: push notifications to
-- send, after-send hooks to call), and the push tokens devices register
-- (PushTokens). Both are new tables: nothing existing changes, so this is
-- instant on a large file.

-- One row per job until it is completed. AUTOINCREMENT: an id is never
-- given twice, not even after the newest job was completed and removed
-- (a plain rowid would reuse it), so ids grow in the order jobs were added.
-- A job is free to claim when due_at <= now and it has no lease or its
-- lease ran out (lease_until <= now); a claim sets holder and lease_until,
-- a retry clears them.
CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    queue       TEXT    NOT NULL,
    payload     BLOB    NOT NULL,        -- the worker's own encoding, any bytes
    due_at      INTEGER NOT NULL,        -- not before, ms
    enqueued_at INTEGER NOT NULL,        -- ms
    attempts    INTEGER NOT NULL DEFAULT 0,
    holder      TEXT,                    -- who claimed it last; NULL: nobody holds it
    lease_until INTEGER                  -- held until, ms; NULL: nobody holds it
);
-- A claim walks one queue oldest first; depth counts one queue.
CREATE INDEX jobs_by_queue ON jobs (queue, id);

-- One token per device of a user (the key). A provider's token reaches one
-- device: push_tokens_by_token finds the row a token registered again moves
-- from, and the row a provider said is no longer valid.
CREATE TABLE push_tokens (
    app         TEXT    NOT NULL,
    user        TEXT    NOT NULL,
    device      TEXT    NOT NULL,
    platform    TEXT    NOT NULL,        -- PushPlatform::as_str: apns, fcm, webhook
    token       TEXT    NOT NULL,
    locale      TEXT    NOT NULL,
    quiet_until INTEGER NOT NULL,        -- ms; 0: not in do-not-disturb
    updated_at  INTEGER NOT NULL,        -- ms
    PRIMARY KEY (app, user, device)
) WITHOUT ROWID;
CREATE UNIQUE INDEX push_tokens_by_token ON push_tokens (app, platform, token);

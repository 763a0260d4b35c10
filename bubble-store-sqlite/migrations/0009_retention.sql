-- Retention (an app's `retention_days`, `InboxStore::expire`,
-- `ChannelLog::expire`).
--
-- `messages_by_time`, `channel_log_by_time`: an app's oldest messages (and
-- super-group log entries) by the server's clock, read
-- in order without a scan. A message's time only grows, so each insert adds
-- at the right edge of its app's range: one page that stays in the cache.
--
-- `version_floors`: an owner's version must never be given again, and the
-- next one is `MAX(version) + 1` over the owner's entries. When retention
-- deletes an owner's newest entries, it records the highest version it
-- deleted here, and the next version is one past the higher of the two.
-- The table holds only owners retention caught up with (quiet ones), and is
-- empty where no app sets `retention_days`. `channel_floors` does the same
-- for super-group seqs.

CREATE INDEX messages_by_time ON messages (app, server_time);

CREATE TABLE version_floors (
    app     TEXT    NOT NULL,
    owner   TEXT    NOT NULL,
    version INTEGER NOT NULL,            -- the highest version retention deleted
    PRIMARY KEY (app, owner)
) WITHOUT ROWID;

CREATE INDEX channel_log_by_time ON channel_log (app, server_time);

CREATE TABLE channel_floors (
    app      TEXT    NOT NULL,
    group_id TEXT    NOT NULL,
    seq      INTEGER NOT NULL,           -- the highest seq retention deleted
    PRIMARY KEY (app, group_id)
) WITHOUT ROWID;

-- Retention (an app's `retention_days`, `InboxStore::expire`).
--
-- `messages_by_time`: an app's oldest messages by the server's clock, read
-- in order without a scan. A message's time only grows, so each insert adds
-- at the right edge of its app's range: one page that stays in the cache.
--
-- `version_floors`: an owner's version must never be given again, and the
-- next one is `MAX(version) + 1` over the owner's entries. When retention
-- deletes an owner's newest entries, it records the highest version it
-- deleted here, and the next version is one past the higher of the two.
-- The table holds only owners retention caught up with (quiet ones), and is
-- empty where no app sets `retention_days`.

CREATE INDEX messages_by_time ON messages (app, server_time);

CREATE TABLE version_floors (
    app     TEXT    NOT NULL,
    owner   TEXT    NOT NULL,
    version INTEGER NOT NULL,            -- the highest version retention deleted
    PRIMARY KEY (app, owner)
) WITHOUT ROWID;

-- Retention (an app's `retention_days`, `InboxStore::expire`): an app's
-- oldest messages by the server's clock, read in order without a scan. A
-- message's time only grows, so each insert lands at the right edge of its
-- app's range. Versions need nothing: they come from `inbox_versions`,
-- which retention leaves alone, so a deleted newest entry's version is
-- never given again.

ALTER TABLE messages ADD KEY ix_messages_time (app, server_time);

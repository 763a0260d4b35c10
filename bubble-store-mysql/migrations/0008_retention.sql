-- Retention (an app's `retention_days`, `InboxStore::expire`,
-- `ChannelLog::expire`): an app's oldest messages and super-group log
-- entries by the server's clock, read in order without a scan. A
-- message's time only grows, so each insert lands at the right edge of its
-- app's range. Versions need nothing: they come from `inbox_versions`,
-- which retention leaves alone, so a deleted newest entry's version is
-- never given again; seqs likewise come from `channel_seqs`.

ALTER TABLE messages ADD KEY ix_messages_time (app, server_time);
ALTER TABLE channel_log ADD KEY ix_channel_log_app_time (app, server_time);

-- The dedup keys by age, so `prune_sent` finds the oldest with one seek
-- instead of a scan of every key ever accepted. A super group's key lives
-- in its log row (ux_channel_log_client); pruning sets it to NULL.
CREATE INDEX ix_inbox_sent_time ON inbox_sent (server_time);
CREATE INDEX ix_channel_log_time ON channel_log (server_time);

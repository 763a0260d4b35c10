-- The dedup keys by age, so `prune_sent` finds the oldest with one seek
-- instead of a scan of every key ever accepted.
CREATE INDEX inbox_sent_by_time ON inbox_sent (server_time);
CREATE INDEX channel_sent_by_time ON channel_sent (server_time);

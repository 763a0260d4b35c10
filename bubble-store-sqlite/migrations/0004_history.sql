-- History per conversation, newest first (issue 14): a chat screen shows
-- the last page of one conversation, then older pages as the user scrolls
-- up. `history(owner, conversation, before, limit)` is one backwards range
-- of this index (app, owner, conversation, version < before), each row
-- joined to its message by rowid, however large the inbox.
--
-- Every entry is in it, whatever its kind or direction (the received-only
-- `inbox_received` cannot serve the owner's own messages). The cost: one
-- more B-tree insert per owner entry on append.
CREATE INDEX inbox_history ON inbox (app, owner, conv_kind, peer, version);

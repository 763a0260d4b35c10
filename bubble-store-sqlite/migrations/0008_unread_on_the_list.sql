-- Unread state moves onto the conversation rows (issue 12): one index entry
-- fewer for every received copy of a message, 99 per message in a group of
-- 100.
--
-- Until now the partial index `inbox_received` (app, owner, status,
-- conv_kind, peer, version) held every received message and notice, and
-- served three reads: the unread counts, a read mark's unread rows, and the
-- newest received message a mark covers. The list's rows already keep the
-- unread count (migration 5). Two columns more let the other two reads use
-- `inbox_history`, which every entry is in anyway:
--
-- * `unread_floor`: every unread entry of the conversation has a version at
--   least this. A read mark updates the rows of `inbox_history` from the
--   floor up to the mark, then raises the floor past the mark; a received
--   message that finds nothing unread sets it to its own version. So a mark
--   reads what arrived since the last one, not the whole conversation.
-- * `last_received`: the version of the newest received message or notice.
--   The newest received one a mark covers is then one seek when the mark
--   is at or past it (a mark below it, rare, reads back from the mark).
--
-- Conversion: each row's unread count is counted again from the entries
-- (so the list and the entries agree from here on), and both columns are
-- filled from `inbox_received` before it is dropped.

ALTER TABLE conversations ADD COLUMN unread_floor INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN last_received INTEGER NOT NULL DEFAULT 0;

UPDATE conversations SET
    unread = (
        SELECT COUNT(*) FROM inbox u INDEXED BY inbox_received
        WHERE u.app = conversations.app AND u.owner = conversations.owner AND u.status = 0
          AND u.conv_kind = conversations.conv_kind AND u.peer = conversations.peer
    ),
    -- With nothing unread, past every entry the row can show: its last
    -- entry is the conversation's newest message or a recall naming it.
    unread_floor = COALESCE((
        SELECT MIN(u.version) FROM inbox u INDEXED BY inbox_received
        WHERE u.app = conversations.app AND u.owner = conversations.owner AND u.status = 0
          AND u.conv_kind = conversations.conv_kind AND u.peer = conversations.peer
    ), last_version + 1),
    last_received = COALESCE((
        SELECT MAX(r.version) FROM inbox r INDEXED BY inbox_received
        WHERE r.app = conversations.app AND r.owner = conversations.owner AND r.status IN (0, 1)
          AND r.conv_kind = conversations.conv_kind AND r.peer = conversations.peer
    ), 0);

DROP INDEX inbox_received;

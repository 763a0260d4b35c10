-- Two fewer index entries for every inbox row (issue 12), from the two
-- secondary indexes of `inbox` that others already answer:
--
-- - `ix_inbox_unread (app, owner, direct, status, conv_kind, conv_id)`: the
--   list's rows already keep each conversation's unread count (migration 4).
--   Two columns more let a read mark do without it: `unread_floor` (no entry
--   of the conversation below it is unread; a received message that finds
--   nothing unread sets it to its own version, a mark raises it past the
--   mark), so a mark reads `ix_inbox_conversation` from the floor to the
--   mark, what arrived since the previous one; and `last_received` (the
--   newest received message or notice), so the message a mark names in its
--   read receipt is one seek back along `ix_inbox_conversation`.
-- - `ix_inbox_message (app, owner, message_id)`: `ix_inbox_owners
--   (message_id)` of migration 5 holds the same columns (every entry of a
--   secondary index carries the primary key, `app, owner, version`), so
--   "the owner's entry of a message row" is a lookup of its first three.
--
-- Existing rows: each list row's unread count is counted again from the
-- entries (the list and the entries agree from here on), and both columns
-- filled from them, before the indexes are dropped. Added columns have
-- constant defaults (no table copy on MariaDB 10.3+ or MySQL 8); dropping a
-- secondary index only changes the dictionary.
--
-- MySQL runs DDL outside transactions: if a statement fails, undo the ones
-- before it that went through (`ALTER TABLE conversations DROP COLUMN
-- unread_floor, DROP COLUMN last_received`; the updates need no undo; a
-- dropped index is created again as migration 3 or 0001 made it), delete
-- version 7 from `_sqlx_migrations` and start the store again.

ALTER TABLE conversations
    ADD COLUMN unread_floor BIGINT UNSIGNED NOT NULL DEFAULT 0
        COMMENT 'no entry of the conversation below this version is unread',
    ADD COLUMN last_received BIGINT UNSIGNED NOT NULL DEFAULT 0
        COMMENT 'the newest received message or notice (0: none)';

-- With nothing unread, the floor is past every entry the row can show (its
-- last entry is the newest message or a recall naming it).
UPDATE conversations SET unread = 0, unread_floor = last_version + 1;

UPDATE conversations c
JOIN (
    SELECT app, owner, conv_kind, conv_id, COUNT(*) AS n, MIN(version) AS lowest
    FROM inbox
    WHERE direct = -1 AND status = 0
    GROUP BY app, owner, conv_kind, conv_id
) u ON u.app = c.app AND u.owner = c.owner AND u.conv_kind = c.conv_kind
   AND u.conv_id = c.conv_id
SET c.unread = u.n, c.unread_floor = u.lowest;

UPDATE conversations c
JOIN (
    SELECT i.app, i.owner, i.conv_kind, i.conv_id, MAX(i.version) AS newest
    FROM inbox i JOIN messages m ON m.id = i.message_id
    WHERE i.direct = -1 AND m.entry_kind IN (1, 6)
    GROUP BY i.app, i.owner, i.conv_kind, i.conv_id
) r ON r.app = c.app AND r.owner = c.owner AND r.conv_kind = c.conv_kind
   AND r.conv_id = c.conv_id
SET c.last_received = r.newest;

DROP INDEX ix_inbox_unread ON inbox;
DROP INDEX ix_inbox_message ON inbox;

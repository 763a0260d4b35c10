-- Each message is written once (issue 12). Until now every owner's inbox
-- row carried a full copy of the message, content and all: a group of 100
-- wrote the body 100 times, and the search outbox had a row per owner.
-- Now `messages` holds what the entries of one delivery share, `inbox`
-- holds a small row per owner pointing at it, and the outbox has a row per
-- message row. docs/storage/sqlite.md explains each table and index.
--
-- Existing data is converted here, inside the migration's one transaction:
-- the old tables are renamed aside, the new ones created and filled from
-- them, the old ones dropped (their indexes with them), and the indexes
-- created on the new tables.

ALTER TABLE inbox RENAME TO inbox_0002;
ALTER TABLE index_outbox RENAME TO index_outbox_0002;

-- ------------------------------------------------------------- messages

-- What the entries of one delivery have in common, once. The rowid is the
-- reference inbox rows and outbox rows hold: the cheapest key there is (an
-- integer, usually 2 to 4 bytes), and rows append at the end of the tree.
-- The append starts a new row whenever an entry of a delivery differs from
-- the rows it already wrote (a read cursor and a read receipt of one
-- delivery differ in kind), so entries never share a row they disagree with.
CREATE TABLE messages (
    id            INTEGER PRIMARY KEY,   -- rowid: referenced by inbox.message
    app           TEXT    NOT NULL,
    server_msg_id BLOB    NOT NULL,      -- 16 bytes
    kind          INTEGER NOT NULL,      -- EntryKind: 1 message, 2 recall, ... 6 notice
    sender        TEXT    NOT NULL,
    sender_device TEXT    NOT NULL,
    client_msg_id TEXT    NOT NULL,
    client_seq    INTEGER NOT NULL,
    create_time   INTEGER NOT NULL,      -- sender's clock, ms
    server_time   INTEGER NOT NULL,      -- server's clock, ms
    content_type  INTEGER NOT NULL,
    content       BLOB    NOT NULL
);

-- `get(owner, server_msg_id)` and `mark_message_read` start here: the rows
-- of one message id (the message and any recall or receipt naming it),
-- then each one's inbox row of that owner through `inbox_by_msg`. Created
-- before the copy below, which finds each old row's message through it.
CREATE INDEX messages_by_id ON messages (app, server_msg_id);

-- Old rows that agree on every shared field become one message row (a
-- delivery's copies, which is what they were written from), in the order
-- they were first written.
INSERT INTO messages (app, server_msg_id, kind, sender, sender_device, client_msg_id,
                      client_seq, create_time, server_time, content_type, content)
SELECT app, server_msg_id, kind, sender, sender_device, client_msg_id,
       client_seq, create_time, server_time, content_type, content
FROM inbox_0002
GROUP BY app, server_msg_id, kind, sender, sender_device, client_msg_id,
         client_seq, create_time, server_time, content_type, content
ORDER BY MIN(id);

-- ---------------------------------------------------------------- inbox

-- One small row per owner of a message: what differs between owners.
--
-- Keyed by (app, owner, version), WITHOUT ROWID: the row is its own pull
-- index, so an owner's entry is one B-tree insert, not a table row plus an
-- `inbox_pull` entry. `pull(owner, after_version, limit)` is one range scan
-- of the key, each row joined to its message by rowid; the newest version
-- (the version counter, read inside the writer's transaction) is one seek
-- to the end of the owner's range. The key is unique, so a version can
-- never be given twice even by a buggy writer.
--
-- `status` says whether an entry counts as unread at all: NULL for the
-- entries that never do (the owner's own messages, recalls, deletes,
-- receipts, cursors), 0 for a received message or notice not yet read, 1
-- once read. The partial indexes below filter on it alone, since an index
-- cannot look at the message's kind in another table.
CREATE TABLE inbox (
    app        TEXT    NOT NULL,
    owner      TEXT    NOT NULL,         -- the seed's qID
    version    INTEGER NOT NULL,         -- the owner's version
    message    INTEGER NOT NULL,         -- messages.id
    peer       TEXT    NOT NULL,         -- the seed's pID: other user, or group id
    conv_kind  INTEGER NOT NULL,         -- ConversationKind: 1 direct, 2 group, 3 super, 4 system
    direction  INTEGER NOT NULL,         -- 1 sent by the owner, -1 received
    status     INTEGER,                  -- NULL never counted, 0 unread, 1 read
    read_up_to INTEGER NOT NULL,         -- a read cursor's mark (per owner)
    PRIMARY KEY (app, owner, version)
) WITHOUT ROWID;

-- In key order: the B-tree is filled page after page.
INSERT INTO inbox (app, owner, version, message, peer, conv_kind, direction, status, read_up_to)
SELECT o.app, o.owner, o.version, m.id, o.peer, o.conv_kind, o.direction,
       CASE WHEN o.direction = -1 AND o.kind IN (1, 6) THEN o.status END,
       o.read_up_to
FROM inbox_0002 o
JOIN messages m ON m.app = o.app AND m.server_msg_id = o.server_msg_id AND m.kind = o.kind
    AND m.sender = o.sender AND m.sender_device = o.sender_device
    AND m.client_msg_id = o.client_msg_id AND m.client_seq = o.client_seq
    AND m.create_time = o.create_time AND m.server_time = o.server_time
    AND m.content_type = o.content_type AND m.content = o.content
ORDER BY o.app, o.owner, o.version;

-- --------------------------------------------------------- search outbox

-- One row per message row of an indexed delivery: `pending_index` gives
-- one task for it, naming every owner whose entry references the message.
-- AUTOINCREMENT: an id is never given twice, so completing a stale id can
-- never remove a newer row.
CREATE TABLE index_outbox (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    message INTEGER NOT NULL             -- messages.id
);

-- The old rows were one per owner; those of one message become one row,
-- keeping the oldest id (so the order of the work is kept). An owner whose
-- own row was already completed is named again: indexing is idempotent,
-- and nothing pending is lost.
INSERT INTO index_outbox (id, message)
SELECT MIN(b.id), i.message
FROM index_outbox_0002 b
JOIN inbox i ON i.app = b.app AND i.owner = b.owner AND i.version = b.version
GROUP BY i.message
ORDER BY MIN(b.id);

-- New ids continue after every id the old table ever gave (completed rows
-- included), not after the highest one still pending.
UPDATE sqlite_sequence
SET seq = (SELECT MAX(seq) FROM sqlite_sequence WHERE name IN ('index_outbox', 'index_outbox_0002'))
WHERE name = 'index_outbox';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'index_outbox', seq FROM sqlite_sequence
WHERE name = 'index_outbox_0002'
  AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'index_outbox');

DROP TABLE index_outbox_0002;
DROP TABLE inbox_0002;

-- ---------------------------------------------------------- inbox indexes

-- The owner's entry of a message row: `get`, `mark_message_read`, and the
-- owners of an outbox task. The message comes first so all copies of one
-- message sit side by side: one page per message, not one per owner.
CREATE INDEX inbox_by_msg ON inbox (message, owner);

-- Received messages and notices by read state, then conversation: one
-- index where there were two (a conversation index of every received
-- message and a partial one of the unread), an entry fewer per received
-- copy, 99 per message in a group of 100. The entries that never count
-- (status NULL: the owner's own copies, recalls, receipts) are left out.
-- * the seed's unread query (`direct = -1 AND qID = B AND status = 0`):
--   `unread()` is the (app, owner, 0) range, already grouped by
--   conversation, as long as what is unread, however much was read;
-- * `mark_read` moves the (app, owner, 0, conversation) range up to the
--   mark to status 1, touching only what is still unread;
-- * the newest received message the mark covers (`mark_read` names it in
--   the read receipt, also when it was read before): after the move every
--   such entry is read, so it is one seek to the end of the (app, owner, 1,
--   conversation) range up to the mark.
CREATE INDEX inbox_received ON inbox (app, owner, status, conv_kind, peer, version)
    WHERE status IS NOT NULL;

-- Every inbox and list key starts with its owner, the history and list
-- keys hold the conversation's peer too, and the dedup receipts are keyed
-- by their sender. Until now each was the app and a name as text (issue 12): a group of 100 compared and stored those strings
-- in about five B-tree entries per member, and `perf` found ~13% of the
-- writer's CPU comparing them. From here on each (app, name) pair is
-- numbered once, in `names`, and the inbox and the list hold the number:
-- a key of two or three small integers, compared as integers.
--
-- A user and a group with the same id in one app share a number; the
-- conversation kind beside the peer tells them apart, as it did for text.
-- Numbers are never reused: a name keeps its number for good (retention
-- deletes messages, not names).
--
-- Existing data is converted here, inside the migration's one transaction,
-- as migration 3 did: the old tables renamed aside, the new ones filled
-- from them in key order, the old ones dropped (their indexes with them),
-- the indexes made on the new ones.

CREATE TABLE names (
    id   INTEGER PRIMARY KEY,            -- rowid: what inbox and list rows hold
    app  TEXT    NOT NULL,
    name TEXT    NOT NULL                -- a user id or a group id
);

-- A name's number: the append looks each new owner up once (the writer
-- keeps the numbers it knows in memory), a read finds its owner's number
-- by one seek here before its range.
CREATE UNIQUE INDEX names_by_name ON names (app, name);

INSERT INTO names (app, name)
SELECT app, owner FROM inbox
UNION SELECT app, peer FROM inbox
UNION SELECT app, owner FROM conversations
UNION SELECT app, peer FROM conversations;

ALTER TABLE inbox RENAME TO inbox_0009;
ALTER TABLE conversations RENAME TO conversations_0009;

-- ---------------------------------------------------------------- inbox

-- As migration 3 made it, keyed by (owner, version): the owner's number
-- says the app too.
CREATE TABLE inbox (
    owner      INTEGER NOT NULL,         -- names.id of the seed's qID
    version    INTEGER NOT NULL,         -- the owner's version
    message    INTEGER NOT NULL,         -- messages.id
    peer       INTEGER NOT NULL,         -- names.id of the seed's pID: other user, or group id
    conv_kind  INTEGER NOT NULL,         -- ConversationKind: 1 direct, 2 group, 3 super, 4 system
    direction  INTEGER NOT NULL,         -- 1 sent by the owner, -1 received
    status     INTEGER,                  -- NULL never counted, 0 unread, 1 read
    read_up_to INTEGER NOT NULL,         -- a read cursor's mark (per owner)
    PRIMARY KEY (owner, version)
) WITHOUT ROWID;

INSERT INTO inbox (owner, version, message, peer, conv_kind, direction, status, read_up_to)
SELECT o.id, i.version, i.message, p.id, i.conv_kind, i.direction, i.status, i.read_up_to
FROM inbox_0009 i
JOIN names o ON o.app = i.app AND o.name = i.owner
JOIN names p ON p.app = i.app AND p.name = i.peer
ORDER BY o.id, i.version;

-- -------------------------------------------------------- conversations

-- As migrations 5, 6 and 8 made it, keyed by (owner, conv_kind, peer).
CREATE TABLE conversations (
    owner           INTEGER NOT NULL,    -- names.id
    conv_kind       INTEGER NOT NULL,    -- ConversationKind
    peer            INTEGER NOT NULL,    -- names.id of the other user, or the group id
    activity        INTEGER NOT NULL,    -- (server_time << 20) | (version & 0xFFFFF) of the newest message
    last_version    INTEGER NOT NULL,    -- the owner's entry shown as the last one
    last_msg        BLOB    NOT NULL,    -- the message that entry is or names
    unread          INTEGER NOT NULL DEFAULT 0,
    read_up_to      INTEGER NOT NULL DEFAULT 0,  -- the owner's read mark (a version)
    peer_read_up_to INTEGER NOT NULL DEFAULT 0,  -- 1:1: the owner's version the peer read up to
    flags           INTEGER NOT NULL DEFAULT 0,
    draft           TEXT    NOT NULL DEFAULT '',
    mention_version INTEGER NOT NULL DEFAULT 0,
    unread_floor    INTEGER NOT NULL DEFAULT 0,
    last_received   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (owner, conv_kind, peer)
) WITHOUT ROWID;

INSERT INTO conversations (owner, conv_kind, peer, activity, last_version, last_msg, unread,
                           read_up_to, peer_read_up_to, flags, draft, mention_version,
                           unread_floor, last_received)
SELECT o.id, c.conv_kind, p.id, c.activity, c.last_version, c.last_msg, c.unread,
       c.read_up_to, c.peer_read_up_to, c.flags, c.draft, c.mention_version,
       c.unread_floor, c.last_received
FROM conversations_0009 c
JOIN names o ON o.app = c.app AND o.name = c.owner
JOIN names p ON p.app = c.app AND p.name = c.peer
ORDER BY o.id, c.conv_kind, p.id;

DROP TABLE inbox_0009;
DROP TABLE conversations_0009;

-- The same indexes as before, without the app and with numbers.
CREATE INDEX inbox_by_msg ON inbox (message, owner);
CREATE INDEX inbox_history ON inbox (owner, conv_kind, peer, version);
CREATE INDEX conversations_by_activity ON conversations (owner, activity);

-- ------------------------------------------------------------- dedup keys

-- The dedup receipts, keyed by the sender's number and the client's id:
-- a third of what is left of a 1:1 message's bytes was this key and its
-- copy in `inbox_sent_by_time`, each repeating the app and the sender.
ALTER TABLE inbox_sent RENAME TO inbox_sent_0009;

INSERT OR IGNORE INTO names (app, name) SELECT DISTINCT app, sender FROM inbox_sent_0009;

CREATE TABLE inbox_sent (
    sender        INTEGER NOT NULL,      -- names.id
    client_msg_id TEXT    NOT NULL,
    server_msg_id BLOB    NOT NULL,
    version       INTEGER NOT NULL,      -- the sender's own version of the message
    server_time   INTEGER NOT NULL,
    PRIMARY KEY (sender, client_msg_id)
) WITHOUT ROWID;

INSERT INTO inbox_sent (sender, client_msg_id, server_msg_id, version, server_time)
SELECT n.id, s.client_msg_id, s.server_msg_id, s.version, s.server_time
FROM inbox_sent_0009 s
JOIN names n ON n.app = s.app AND n.name = s.sender
ORDER BY n.id, s.client_msg_id;

DROP TABLE inbox_sent_0009;

CREATE INDEX inbox_sent_by_time ON inbox_sent (server_time);

-- The conversation list (issue 14): a chat app's home screen, "my
-- conversations, newest first, each with its last message and unread
-- count", as one indexed read. One row per owner and conversation, kept by
-- the append as entries arrive (the rules of InboxStore::conversations):
-- a message or notice sets the activity and the last entry and, received,
-- adds an unread; a recall or delete of the last message becomes the last
-- entry; read cursors and receipts raise the read positions; mark_read and
-- mark_message_read take off what they marked.
CREATE TABLE conversations (
    app             TEXT    NOT NULL,
    owner           TEXT    NOT NULL,
    conv_kind       INTEGER NOT NULL,    -- ConversationKind
    peer            TEXT    NOT NULL,    -- the other user, or the group id
    activity        INTEGER NOT NULL,    -- (server_time << 20) | (version & 0xFFFFF) of the newest message
    last_version    INTEGER NOT NULL,    -- the owner's entry shown as the last one
    last_msg        BLOB    NOT NULL,    -- the message that entry is or names
    unread          INTEGER NOT NULL DEFAULT 0,
    read_up_to      INTEGER NOT NULL DEFAULT 0,  -- the owner's read mark (a version)
    peer_read_up_to INTEGER NOT NULL DEFAULT 0,  -- 1:1: the owner's version the peer read up to
    PRIMARY KEY (app, owner, conv_kind, peer)
) WITHOUT ROWID;

-- A page of the list: the owner's rows by activity, newest first.
CREATE INDEX conversations_by_activity ON conversations (app, owner, activity);

-- The rows of an existing inbox, set-based: each conversation's newest
-- message or notice ...
WITH newest AS (
    SELECT i.app, i.owner, i.conv_kind, i.peer, MAX(i.version) AS version
    FROM inbox i JOIN messages m ON m.id = i.message
    WHERE m.kind IN (1, 6)
    GROUP BY i.app, i.owner, i.conv_kind, i.peer
)
INSERT INTO conversations (app, owner, conv_kind, peer, activity, last_version, last_msg)
SELECT n.app, n.owner, n.conv_kind, n.peer,
       (MAX(m.server_time, 0) << 20) | (n.version & 1048575), n.version, m.server_msg_id
FROM newest n
JOIN inbox i ON i.app = n.app AND i.owner = n.owner AND i.version = n.version
JOIN messages m ON m.id = i.message;

-- ... shown as recalled or deleted when the owner holds a recall or delete
-- of it (found from the message id: `messages_by_id`, `inbox_by_msg`) ...
UPDATE conversations SET last_version = (
    SELECT MAX(i.version) FROM messages m JOIN inbox i ON i.message = m.id AND i.owner = conversations.owner
    WHERE m.app = conversations.app AND m.server_msg_id = conversations.last_msg AND m.kind IN (2, 3)
)
WHERE EXISTS (
    SELECT 1 FROM messages m JOIN inbox i ON i.message = m.id AND i.owner = conversations.owner
    WHERE m.app = conversations.app AND m.server_msg_id = conversations.last_msg AND m.kind IN (2, 3)
);

-- ... with what is unread (the unread range of `inbox_received`) ...
UPDATE conversations SET unread = (
    SELECT COUNT(*) FROM inbox u
    WHERE u.app = conversations.app AND u.owner = conversations.owner AND u.status = 0
      AND u.conv_kind = conversations.conv_kind AND u.peer = conversations.peer
);

-- ... the owner's read mark (the highest read cursor) and, for 1:1, the
-- owner's version of the newest message the peer's receipts name.
UPDATE conversations SET
    read_up_to = COALESCE((
        SELECT MAX(i.read_up_to) FROM inbox i INDEXED BY inbox_history JOIN messages m ON m.id = i.message
        WHERE i.app = conversations.app AND i.owner = conversations.owner
          AND i.conv_kind = conversations.conv_kind AND i.peer = conversations.peer AND m.kind = 5
    ), 0),
    peer_read_up_to = COALESCE((
        SELECT MAX(o.version)
        FROM inbox r INDEXED BY inbox_history
        JOIN messages rm ON rm.id = r.message AND rm.kind = 4
        JOIN messages om ON om.app = rm.app AND om.server_msg_id = rm.server_msg_id AND om.kind IN (1, 6)
        JOIN inbox o ON o.message = om.id AND o.owner = r.owner
        WHERE r.app = conversations.app AND r.owner = conversations.owner
          AND r.conv_kind = conversations.conv_kind AND r.peer = conversations.peer
    ), 0);

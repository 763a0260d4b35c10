-- What a chat app's screens need beyond messages (issue 14): replies,
-- forwards, mentions and edits ride in each message's meta; per-user
-- settings of a conversation (pin, mute, archive, draft, block) and the
-- mention mark live on its list row; reactions have a table of their own.
-- Every change adds; nothing existing is rewritten, so this is instant on a
-- large file (ALTER TABLE ... ADD COLUMN only edits the schema).

-- The encoded EntryMeta (protobuf) of a message, edit, reaction or
-- settings entry; NULL for the many that have none. An edit replaces the
-- message row's content and meta in place (every owner shares the row).
ALTER TABLE messages ADD COLUMN meta BLOB;
ALTER TABLE channel_log ADD COLUMN meta BLOB;

-- The owner's settings: ConversationSettings::flags (1 pinned, 2 muted,
-- 4 archived, 8 blocked) and the draft. A settings entry for a
-- conversation without a row makes one with activity 0, which no list page
-- shows until a message arrives.
ALTER TABLE conversations ADD COLUMN flags INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN draft TEXT NOT NULL DEFAULT '';
-- The version of the newest received message that mentions the owner: the
-- row is "mentioned" while it is above read_up_to.
ALTER TABLE conversations ADD COLUMN mention_version INTEGER NOT NULL DEFAULT 0;

-- One row per user and emoji on a message (of any conversation). The key
-- answers "has this user put this emoji here" and "how many has this user
-- put here"; reactions_by_emoji serves the counts of a page of messages
-- and the distinct-emoji cap, both without touching the table.
CREATE TABLE reactions (
    app           TEXT    NOT NULL,
    server_msg_id BLOB    NOT NULL,
    user          TEXT    NOT NULL,
    emoji         TEXT    NOT NULL,
    created       INTEGER NOT NULL,      -- server's clock, ms
    PRIMARY KEY (app, server_msg_id, user, emoji)
) WITHOUT ROWID;
CREATE INDEX reactions_by_emoji ON reactions (app, server_msg_id, emoji, user);

-- Groups a product can run: a picture, an announcement and a group-wide
-- mute (only the owner and admins write) on the group; a member's own mute
-- (until a time, ms; 0: none) on the membership.
ALTER TABLE chat_groups ADD COLUMN avatar_url TEXT NOT NULL DEFAULT '';
ALTER TABLE chat_groups ADD COLUMN announcement TEXT NOT NULL DEFAULT '';
ALTER TABLE chat_groups ADD COLUMN muted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE group_members ADD COLUMN muted_until INTEGER NOT NULL DEFAULT 0;

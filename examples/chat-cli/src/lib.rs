//! A terminal chat client for a running bubble server.
//!
//! Development mode: it asks the admin API for a token (so it needs the
//! admin secret) and the server key (so pass `--fingerprint` to pin it; the
//! server prints it at start). A real app gets its token from its own
//! backend and ships the pin.
//!
//! Lines typed are sent to the current conversation; commands start with `/`:
//!
//! ```text
//! /to bob            talk to bob (1:1)
//! /group team        talk in group "team"
//! /create team a,b   create group "team" with members a and b
//! /join team         join a group
//! /unread            unread counts
//! /read              mark the current conversation read
//! /history           the last messages of the current conversation
//! /history more      the ones before those
//! /list              the conversation list (also shown at start)
//! /reply N text      answer message (N) (numbers are shown before messages)
//! /edit [N] text     change your message (N), or your last one
//! /react N 👍        react to message (N); /unreact N 👍 takes it back
//! /readby N          who in the group has read message (N)
//! /pin /unpin        pin the current conversation to the top (or not)
//! /mute /unmute      no notifications from it (or again)
//! /block USER        refuse USER's messages; /unblock USER, /blocked
//! /push P TOKEN      notify this device through P (apns, fcm, webhook); /unpush
//! /away /back        the app is in the background (notifications too) or not
//! /search words      search your history
//! /who a,b           who is online
//! /quit
//! ```

use std::time::Duration;

use clap::{CommandFactory, Parser};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

use bubble_client::transport::{http_get, http_request};
use bubble_client::{Client, ClientConfig, Endpoint, Event};
use bubble_core::{
    Content, Conversation, ConversationItem, ConversationKind, ConversationList,
    ConversationSettings, EntryKind, GroupId, InboxEntry, MessageRefs, MsgId, SettingsChange,
    UserId,
};
use bubble_proto::pb;

/// Command-line options.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "chat-cli",
    version,
    about = "A terminal chat client for a running bubble server (development mode: it gets its token from the admin API).",
    after_help = "\
Once connected, lines are sent to the current conversation; commands start with /:
  /to bob            talk to bob (1:1)
  /group team        talk in group \"team\"
  /create team a,b   create group \"team\" with members a and b
  /join team         join a group
  /unread            unread counts
  /read              mark the current conversation read
  /history           the last messages here (/history more: older ones)
  /list              the conversation list
  /reply N text      answer message (N)
  /edit [N] text     change your message (N), or your last one
  /react N 👍        react to message (N) (/unreact N 👍)
  /readby N          who in the group read message (N)
  /pin /unpin        pin the current conversation (or not)
  /mute /unmute      mute the current conversation (or not)
  /block USER        refuse USER's messages (/unblock USER, /blocked)
  /push P TOKEN      push notifications through P: apns, fcm, webhook (/unpush)
  /away /back        the app is in the background (notifications too) or not
  /search words      search your history
  /who a,b           who is online
  /quit"
)]
pub struct Options {
    /// The server's HTTP base URL (selector + admin API).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:7780")]
    pub server: String,
    /// The admin secret, to issue a token (development mode) [default: $BUBBLE_ADMIN_SECRET].
    #[arg(
        long,
        value_name = "SECRET",
        default_value = "",
        hide_default_value = true
    )]
    pub admin_secret: String,
    /// The app.
    #[arg(long, value_name = "APP", default_value = "demo")]
    pub app: String,
    /// Who you are.
    #[arg(long, value_name = "NAME")]
    pub user: String,
    /// This device.
    #[arg(long, value_name = "DEVICE", default_value = "cli")]
    pub device: String,
    /// The server key fingerprint to pin (the server prints it at start) [default: trust what the server announces].
    #[arg(
        long,
        value_name = "HEX",
        default_value = "",
        hide_default_value = true
    )]
    pub fingerprint: String,
    /// Use WebSocket instead of TCP.
    #[arg(long = "ws")]
    pub websocket: bool,
}

impl Options {
    /// Parses the arguments after the program's name: `--user U
    /// [--admin-secret S] [--server URL] [--app A] [--device D]
    /// [--fingerprint F] [--ws]`. The admin secret falls back to
    /// `BUBBLE_ADMIN_SECRET`. `--help` and `--version` come back as errors
    /// whose `exit` prints them.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Options, clap::Error> {
        let mut o = Options::try_parse_from(std::iter::once("chat-cli".to_owned()).chain(args))?;
        if o.admin_secret.is_empty() {
            o.admin_secret = std::env::var("BUBBLE_ADMIN_SECRET").unwrap_or_default();
        }
        if o.admin_secret.is_empty() {
            return Err(Options::command().error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "--admin-secret (or BUBBLE_ADMIN_SECRET) is required in development mode: the server prints where it keeps it",
            ));
        }
        Ok(o)
    }
}

fn show(entry_kind: EntryKind, conversation: &Conversation, sender: &UserId, text: &str) -> String {
    let place = match conversation.kind {
        ConversationKind::Direct => format!("@{}", conversation.id()),
        ConversationKind::System => "system".to_string(),
        _ => format!("#{}", conversation.id()),
    };
    match entry_kind {
        EntryKind::Message | EntryKind::SystemNotice => format!("[{place}] {sender}: {text}"),
        EntryKind::Recall => format!("[{place}] {sender} recalled a message"),
        EntryKind::ReadReceipt => format!("[{place}] {sender} read your messages"),
        EntryKind::Edit => format!("[{place}] {sender} edited a message: {text}"),
        EntryKind::Reaction => format!("[{place}] {sender} {text}"),
        EntryKind::ReadCursor | EntryKind::Delete | EntryKind::Settings => String::new(),
    }
}

/// What a line shows of an entry's content: its text, what a reaction did,
/// whose message a reply answers.
fn shown_text(e: &InboxEntry) -> String {
    let meta = e.meta.decode();
    if let Some(r) = meta.reaction {
        return format!(
            "{} {}",
            if r.added { "reacted" } else { "took back" },
            r.emoji
        );
    }
    let text = e.content.as_text().unwrap_or("<media>");
    let mut line = match meta.reply_to {
        Some(r) => format!("(re {}: {}) {text}", r.sender, r.preview),
        None => text.to_owned(),
    };
    if let Some(f) = meta.forwarded_from {
        line = format!("(forwarded from {}) {line}", f.sender);
    }
    if meta.edited_at > 0 && e.kind == EntryKind::Message {
        line.push_str(" (edited)");
    }
    line
}

/// The messages shown so far, numbered from 1 in the order shown, so
/// commands can name one (`/reply 3 ...`), and the last one this user sent.
#[derive(Default)]
struct Shown {
    messages: Vec<(Conversation, MsgId)>,
    last_sent: Option<(Conversation, MsgId)>,
}

impl Shown {
    /// Numbers a message; its number.
    fn number(&mut self, conversation: &Conversation, id: MsgId) -> usize {
        if let Some(i) = self
            .messages
            .iter()
            .position(|(c, m)| c == conversation && *m == id)
        {
            return i + 1;
        }
        self.messages.push((conversation.clone(), id));
        self.messages.len()
    }

    /// Message (n), or a sentence saying why there is none.
    fn get(&self, n: &str) -> Result<(Conversation, MsgId), String> {
        n.parse::<usize>()
            .ok()
            .and_then(|n| self.messages.get(n.checked_sub(1)?))
            .cloned()
            .ok_or_else(|| {
                format!("no message ({n}) shown; messages are numbered as they are shown")
            })
    }
}

/// An entry as a line, a message numbered.
fn entry_line(shown: &mut Shown, e: &InboxEntry) -> String {
    let line = show(e.kind, &e.conversation, &e.sender, &shown_text(e));
    if e.kind == EntryKind::Message && !line.is_empty() {
        format!(
            "({}) {line}",
            shown.number(&e.conversation, e.server_msg_id)
        )
    } else {
        line
    }
}

/// Connects, then runs until `/quit` or the end of `input`.
pub async fn run(
    options: Options,
    input: impl AsyncBufRead + Unpin,
    mut output: impl AsyncWrite + Unpin,
) -> Result<(), String> {
    let key: serde_json::Value = serde_json::from_slice(
        &http_get(&options.server, "/v1/server-key")
            .await
            .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let pem = key["pem"].as_str().unwrap_or_default().to_owned();
    let fingerprint = if options.fingerprint.is_empty() {
        key["fingerprint_sha256"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    } else {
        options.fingerprint.clone()
    };
    let body = serde_json::json!({"user": options.user}).to_string();
    let (status, answer) = http_request(
        &options.server,
        "POST",
        &format!("/v1/admin/apps/{}/tokens", options.app),
        Some(&options.admin_secret),
        Some(&body),
    )
    .await
    .map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!(
            "the admin API refused a token: {}",
            String::from_utf8_lossy(&answer)
        ));
    }
    let token: serde_json::Value = serde_json::from_slice(&answer).map_err(|e| e.to_string())?;
    let config = ClientConfig::new(
        Endpoint::Selector {
            urls: vec![options.server.clone()],
            prefer_ws: options.websocket,
        },
        pem,
        fingerprint,
        options.app.clone(),
        options.user.clone(),
        options.device.clone(),
        token["token"].as_str().unwrap_or_default(),
    );
    let (client, mut events) = Client::connect(config).await.map_err(|e| e.to_string())?;
    let mut lines = input.lines();
    let mut current: Option<Conversation> = None;
    // Where `/history more` goes on: the oldest version shown so far.
    let mut older: Option<u64> = None;
    let mut shown = Shown::default();
    output
        .write_all(
            format!(
                "connected as {}; /to USER or /group GROUP, then type\n",
                options.user
            )
            .as_bytes(),
        )
        .await
        .map_err(|e| e.to_string())?;
    // The home screen: the newest conversations, before anything else.
    let home = match client.conversations(0, LIST_PAGE).await {
        Ok(list) => list_lines(&list),
        Err(e) => format!("(no conversation list: {e})"),
    };
    output
        .write_all(format!("{home}\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line.map_err(|e| e.to_string())? else { break };
                let reply = handle_line(&client, &mut current, &mut older, &mut shown, line.trim()).await;
                match reply {
                    Some(Reply::Quit) => break,
                    Some(Reply::Text(t)) => output.write_all(format!("{t}\n").as_bytes()).await.map_err(|e| e.to_string())?,
                    None => {}
                }
            }
            event = events.recv() => {
                let Some(event) = event else { break };
                let text = match event {
                    Event::Entry(e) => entry_line(&mut shown, &e),
                    Event::Channel(e) | Event::Broadcast(e) => format!("[#{}] {}: {}", e.group, e.sender, e.content.as_text().unwrap_or("<media>")),
                    Event::Typing { conversation, from } => format!("[{}] {from} is typing…", conversation.id()),
                    Event::Connected { resumed } => format!("(connected{})", if resumed { ", resumed" } else { "" }),
                    Event::Disconnected { reason } => format!("(disconnected: {reason}; reconnecting)"),
                    Event::Kicked { reason } => format!("(signed out: {reason})"),
                    Event::AuthFailed { reason } => format!("(token refused: {reason})"),
                    Event::Business { command, .. } => format!("(business push {command:#06x})"),
                };
                if !text.is_empty() {
                    output.write_all(format!("{text}\n").as_bytes()).await.map_err(|e| e.to_string())?;
                }
            }
        }
        output.flush().await.map_err(|e| e.to_string())?;
    }
    // Let in-flight pushes print before closing.
    tokio::time::sleep(Duration::from_millis(50)).await;
    client.close();
    Ok(())
}

enum Reply {
    Text(String),
    Quit,
}

/// Conversations listed at a time.
const LIST_PAGE: u32 = 20;

/// Lines of history at a time.
const HISTORY_PAGE: u32 = 20;

async fn handle_line(
    client: &Client,
    current: &mut Option<Conversation>,
    older: &mut Option<u64>,
    shown: &mut Shown,
    line: &str,
) -> Option<Reply> {
    let (command, rest) = line.split_once(' ').unwrap_or((line, ""));
    let rest = rest.trim();
    let text = |r: Result<String, bubble_client::ClientError>| {
        Some(Reply::Text(r.unwrap_or_else(|e| format!("error: {e}"))))
    };
    match command {
        "" => None,
        "/quit" => Some(Reply::Quit),
        "/to" => {
            *older = None;
            *current = Some(Conversation::direct(&UserId::new(rest)));
            Some(Reply::Text(format!("talking to {rest}")))
        }
        "/group" => {
            *older = None;
            *current = Some(Conversation::group(&GroupId::new(rest)));
            Some(Reply::Text(format!("talking in #{rest}")))
        }
        "/create" => {
            let (id, members) = rest.split_once(' ').unwrap_or((rest, ""));
            let members: Vec<&str> = members.split(',').filter(|m| !m.is_empty()).collect();
            text(
                client
                    .create_group(id, id, &members, false)
                    .await
                    .map(|g| format!("created #{} ({} members)", g.group_id, g.member_count)),
            )
        }
        "/join" => text(
            client
                .join_group(rest)
                .await
                .map(|_| format!("joined #{rest}")),
        ),
        "/unread" => text(client.unread().await.map(|counts| {
            if counts.is_empty() {
                "nothing unread".to_string()
            } else {
                counts
                    .iter()
                    .map(|c| format!("{}: {}", c.conversation.id(), c.count))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        })),
        "/read" => match current {
            Some(c) => text(
                client
                    .mark_read(c, client.last_version())
                    .await
                    .map(|n| format!("marked {n} read")),
            ),
            None => Some(Reply::Text("pick a conversation first".into())),
        },
        "/history" => {
            match current {
                Some(c) => {
                    // `/history` shows the newest page, `/history more` the page
                    // before the oldest line shown.
                    let before = if rest == "more" {
                        older.unwrap_or(0)
                    } else {
                        0
                    };
                    if rest == "more" && before <= 1 && older.is_some() {
                        return Some(Reply::Text("(no older messages)".into()));
                    }
                    text(client.history(c, before, HISTORY_PAGE).await.map(
                        |(entries, has_more, _)| {
                            *older = entries.last().map(|e| e.version).or(*older);
                            history_lines(shown, &entries, has_more)
                        },
                    ))
                }
                None => Some(Reply::Text("pick a conversation first".into())),
            }
        }
        "/list" => text(
            client
                .conversations(0, LIST_PAGE)
                .await
                .map(|l| list_lines(&l)),
        ),
        "/search" => text(
            client
                .search(pb::SearchRequest {
                    words: rest.into(),
                    limit: 10,
                    ..Default::default()
                })
                .await
                .map(|r| {
                    let hits: Vec<String> = r
                        .hits
                        .iter()
                        .map(|h| format!("  {}: {}", h.sender, h.text))
                        .collect();
                    format!("{} found\n{}", r.total, hits.join("\n"))
                }),
        ),
        "/who" => {
            let users: Vec<&str> = rest.split(',').filter(|u| !u.is_empty()).collect();
            text(client.presence(&users).await.map(|p| {
                p.users
                    .iter()
                    .map(|u| {
                        format!(
                            "{}: {}",
                            u.user_id,
                            if u.online { "online" } else { "offline" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            }))
        }
        "/reply" | "/edit" | "/react" | "/unreact" | "/readby" => Some(Reply::Text(
            about_message(client, shown, command, rest)
                .await
                .unwrap_or_else(|e| format!("error: {e}")),
        )),
        "/pin" | "/unpin" | "/mute" | "/unmute" => match current {
            Some(c) => {
                let on = !command.starts_with("/un");
                let change = if command.ends_with("pin") {
                    SettingsChange {
                        pinned: Some(on),
                        ..Default::default()
                    }
                } else {
                    SettingsChange {
                        muted: Some(on),
                        ..Default::default()
                    }
                };
                text(
                    client
                        .change_settings(c, &change)
                        .await
                        .map(|s| format!("{}: {}", c.id(), flags(&s))),
                )
            }
            None => Some(Reply::Text("pick a conversation first".into())),
        },
        "/block" | "/unblock" => {
            let change = SettingsChange {
                blocked: Some(command == "/block"),
                ..Default::default()
            };
            let peer = Conversation::direct(&UserId::new(rest));
            text(client.change_settings(&peer, &change).await.map(|s| {
                if s.blocked {
                    format!("blocked {rest}: their messages are refused")
                } else {
                    format!("unblocked {rest}")
                }
            }))
        }
        "/blocked" => text(client.blocked().await.map(|users| {
            if users.is_empty() {
                "nobody blocked".to_owned()
            } else {
                let names: Vec<&str> = users.iter().map(|u| u.as_str()).collect();
                format!("blocked: {}", names.join(", "))
            }
        })),
        "/push" => {
            let (platform, token) = rest.split_once(' ').unwrap_or((rest, ""));
            let registered = match platform.parse::<bubble_core::notify::PushPlatform>() {
                Ok(platform) => {
                    let registration = bubble_client::PushRegistration {
                        platform,
                        token: token.trim().to_owned(),
                        locale: "en".to_owned(),
                        quiet_until: 0,
                    };
                    client
                        .register_push(&registration)
                        .await
                        .map(|()| format!("notifications go to this device through {platform}"))
                }
                Err(e) => Ok(e.to_string()),
            };
            text(registered)
        }
        "/unpush" => text(
            client
                .unregister_push()
                .await
                .map(|()| "no more notifications to this device".to_owned()),
        ),
        "/away" | "/back" => {
            let away = command == "/away";
            text(client.set_background(away).await.map(|()| {
                if away {
                    "away: new messages also notify your other devices".to_owned()
                } else {
                    "back".to_owned()
                }
            }))
        }
        c if c.starts_with('/') => Some(Reply::Text(format!("unknown command {c}"))),
        _ => match current {
            Some(c) => match client.send(c.clone(), Content::text(line)).await {
                Ok(receipt) => {
                    shown.last_sent = Some((c.clone(), receipt.server_msg_id));
                    None
                }
                Err(e) => Some(Reply::Text(format!("not sent: {e}"))),
            },
            None => Some(Reply::Text(
                "pick a conversation first: /to USER or /group GROUP".into(),
            )),
        },
    }
}

/// `/reply N text`, `/edit [N] text`, `/react N emoji`, `/unreact N
/// emoji`, `/readby N`: a request about a message shown before.
async fn about_message(
    client: &Client,
    shown: &mut Shown,
    command: &str,
    rest: &str,
) -> Result<String, String> {
    let (n, arg) = rest.split_once(' ').unwrap_or((rest, ""));
    let err = |e: bubble_client::ClientError| e.to_string();
    match command {
        "/edit" => {
            // `/edit text` changes the last message sent; `/edit N text` message (N).
            let ((c, id), text) = match shown.get(n) {
                Ok(found) => (found, arg),
                Err(_) => (
                    shown
                        .last_sent
                        .clone()
                        .ok_or("nothing sent yet to edit; /edit N text names a message")?,
                    rest,
                ),
            };
            client
                .edit(&c, &id, Content::text(text))
                .await
                .map_err(err)?;
            Ok("edited".into())
        }
        "/reply" => {
            let (c, id) = shown.get(n)?;
            let refs = MessageRefs {
                reply_to: Some(id),
                ..Default::default()
            };
            let receipt = client
                .send_with(c.clone(), Content::text(arg), &refs)
                .await
                .map_err(err)?;
            shown.last_sent = Some((c, receipt.server_msg_id));
            Ok("replied".into())
        }
        "/react" | "/unreact" => {
            let (c, id) = shown.get(n)?;
            let remove = command == "/unreact";
            let receipt = client.react(&c, &id, arg, remove).await.map_err(err)?;
            Ok(match (remove, receipt.duplicate) {
                (_, true) => "nothing to change".into(),
                (false, false) => format!("reacted {arg}"),
                (true, false) => format!("took back {arg}"),
            })
        }
        _ => {
            let (c, id) = shown.get(n)?;
            if c.kind != ConversationKind::Group {
                return Err("/readby is for messages of a group".into());
            }
            let state = client
                .read_state(&GroupId::new(c.id()), &id)
                .await
                .map_err(err)?;
            let names: Vec<&str> = state.readers.iter().map(|u| u.as_str()).collect();
            Ok(format!(
                "read by {} of {}{}",
                state.readers.len(),
                state.members,
                if names.is_empty() {
                    String::new()
                } else {
                    format!(": {}", names.join(", "))
                }
            ))
        }
    }
}

/// A conversation's settings as words.
fn flags(s: &ConversationSettings) -> String {
    let mut words = Vec::new();
    if s.pinned {
        words.push("pinned");
    }
    if s.muted {
        words.push("muted");
    }
    if s.archived {
        words.push("archived");
    }
    if words.is_empty() {
        "not pinned, not muted".to_owned()
    } else {
        words.join(", ")
    }
}

/// A history page (newest first) as lines, oldest first, the way a chat
/// screen shows it.
fn history_lines(shown: &mut Shown, entries: &[InboxEntry], has_more: bool) -> String {
    let mut lines: Vec<String> = entries
        .iter()
        .rev()
        .filter(|e| {
            matches!(
                e.kind,
                EntryKind::Message | EntryKind::SystemNotice | EntryKind::Recall
            )
        })
        .map(|e| entry_line(shown, e))
        .collect();
    if lines.is_empty() {
        lines.push("(no messages)".into());
    }
    if has_more {
        lines.insert(0, "(older: /history more)".into());
    }
    lines.join("\n")
}

/// The conversation list as lines: where, unread badge, last line.
fn list_lines(list: &ConversationList) -> String {
    if list.items.is_empty() {
        return "no conversations yet".into();
    }
    let mut lines = vec!["conversations:".to_owned()];
    for item in &list.items {
        let (place, unread, last) = match item {
            ConversationItem::Inbox(c) => (
                match c.conversation.kind {
                    ConversationKind::Direct => format!("@{}", c.conversation.id()),
                    ConversationKind::System => "system".to_owned(),
                    _ => format!("#{}", c.conversation.id()),
                },
                c.unread,
                match c.last.kind {
                    EntryKind::Recall => format!("{} recalled a message", c.last.sender),
                    EntryKind::Delete => "(deleted)".to_owned(),
                    _ => format!(
                        "{}: {}",
                        c.last.sender,
                        c.last.content.as_text().unwrap_or("<media>")
                    ),
                },
            ),
            ConversationItem::SuperGroup {
                group,
                unread,
                last,
                ..
            } => (
                format!("#{group}"),
                *unread,
                format!(
                    "{}: {}",
                    last.sender,
                    last.content.as_text().unwrap_or("<media>")
                ),
            ),
        };
        let mut badge = if unread > 0 {
            format!(" ({unread} unread)")
        } else {
            String::new()
        };
        if let ConversationItem::Inbox(c) = item {
            if c.mentioned {
                badge.push_str(" (you were mentioned)");
            }
            if c.settings.pinned {
                badge.push_str(" [pinned]");
            }
            if c.settings.muted {
                badge.push_str(" [muted]");
            }
        }
        lines.push(format!("  {place}{badge}  {last}"));
    }
    if list.has_more {
        lines.push("  …".into());
    }
    lines.join("\n")
}

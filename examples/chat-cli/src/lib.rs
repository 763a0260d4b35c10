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
    Content, Conversation, ConversationItem, ConversationKind, ConversationList, EntryKind,
    GroupId, InboxEntry, UserId,
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
        EntryKind::ReadCursor | EntryKind::Delete => String::new(),
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
                let reply = handle_line(&client, &mut current, &mut older, line.trim()).await;
                match reply {
                    Some(Reply::Quit) => break,
                    Some(Reply::Text(t)) => output.write_all(format!("{t}\n").as_bytes()).await.map_err(|e| e.to_string())?,
                    None => {}
                }
            }
            event = events.recv() => {
                let Some(event) = event else { break };
                let text = match event {
                    Event::Entry(e) => show(e.kind, &e.conversation, &e.sender, e.content.as_text().unwrap_or("<media>")),
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
                            history_lines(&entries, has_more)
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
        c if c.starts_with('/') => Some(Reply::Text(format!("unknown command {c}"))),
        _ => match current {
            Some(c) => match client.send(c.clone(), Content::text(line)).await {
                Ok(_) => None,
                Err(e) => Some(Reply::Text(format!("not sent: {e}"))),
            },
            None => Some(Reply::Text(
                "pick a conversation first: /to USER or /group GROUP".into(),
            )),
        },
    }
}

/// A history page (newest first) as lines, oldest first, the way a chat
/// screen shows it.
fn history_lines(entries: &[InboxEntry], has_more: bool) -> String {
    let mut lines: Vec<String> = entries
        .iter()
        .rev()
        .filter(|e| {
            matches!(
                e.kind,
                EntryKind::Message | EntryKind::SystemNotice | EntryKind::Recall
            )
        })
        .map(|e| {
            show(
                e.kind,
                &e.conversation,
                &e.sender,
                e.content.as_text().unwrap_or("<media>"),
            )
        })
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
        let badge = if unread > 0 {
            format!(" ({unread} unread)")
        } else {
            String::new()
        };
        lines.push(format!("  {place}{badge}  {last}"));
    }
    if list.has_more {
        lines.push("  …".into());
    }
    lines.join("\n")
}

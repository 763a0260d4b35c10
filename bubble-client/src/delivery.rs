//! Turning pushes into events: inbox entries in version order and each
//! super group's entries in seq order, without gaps or duplicates; a push
//! that shows a gap, and every (re)connect, runs a sync first.

use super::*;

/// Server-to-client frames other than answers.
pub(crate) enum Inbound {
    Connected {
        resumed: bool,
    },
    Push(Frame),
    /// This device's own message to a super group was acknowledged at
    /// `seq`: its cursor moves over it, or a gap before it is pulled.
    OwnChannelSend {
        group: String,
        seq: u64,
    },
}

/// A super group's page from the wire (a pull or a history page).
pub(crate) fn channel_page(
    wire: &[pb::ChannelEntry],
    has_more: bool,
) -> Result<ChannelPage, ClientError> {
    let entries = wire
        .iter()
        .map(channel_entry_from_pb)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    Ok(ChannelPage { entries, has_more })
}

/// Pulls a group's entries after `last` in order, each as an event, up to
/// the newest; the seq delivery reached (at least `seq` when the pull
/// completed). A pull that fails (the connection dropped) leaves the cursor
/// where delivery stopped, so the group's next push repairs the rest.
async fn pull_channel_gap(
    client: &Client,
    events: &mpsc::Sender<Event>,
    group: &str,
    last: u64,
    seq: u64,
    broadcast: bool,
) -> u64 {
    let mut after = last;
    while let Ok((page, _)) = client.pull_channel(group, after, 200).await {
        for e in page.entries {
            after = e.seq;
            let event = if broadcast {
                Event::Broadcast(e)
            } else {
                Event::Channel(e)
            };
            let _ = events.send(event).await;
        }
        if !page.has_more {
            return after.max(seq);
        }
    }
    after
}

/// Turns pushes into ordered, gap-free events, syncing when needed.
pub(crate) async fn inbox_task(
    client: Client,
    mut inbound: mpsc::UnboundedReceiver<Inbound>,
    events: mpsc::Sender<Event>,
) {
    let owner = UserId::new(&client.shared.config.user);
    let mut channel_seqs: HashMap<String, u64> = HashMap::new();
    while let Some(item) = inbound.recv().await {
        match item {
            Inbound::Connected { resumed } => {
                let _ = events.send(Event::Connected { resumed }).await;
                catch_up(&client, &events).await;
            }
            Inbound::OwnChannelSend { group, seq } => match channel_seqs.get(&group).copied() {
                // Entries before it are missing (a notify that never
                // came): pull them, this one included.
                Some(last) if seq > last + 1 => {
                    let after = pull_channel_gap(&client, &events, &group, last, seq, false).await;
                    channel_seqs.insert(group, after);
                }
                Some(last) if seq <= last => {}
                // The next seq, or the first this device hears of the
                // group: the cursor moves over it (`send` returned it).
                _ => {
                    channel_seqs.insert(group, seq);
                }
            },
            Inbound::Push(frame) => match frame.command {
                Command::Push => {
                    let Ok(push) = frame.decode_body::<pb::Push>() else {
                        continue;
                    };
                    let Some(entry) = push
                        .entry
                        .as_ref()
                        .and_then(|e| entry_from_pb(&owner, e).ok())
                    else {
                        continue;
                    };
                    let last = client.last_version();
                    if entry.version <= last {
                        continue; // a sync already delivered it
                    }
                    if push.prev_version > last {
                        catch_up(&client, &events).await; // a gap: pull it (this entry included)
                    } else {
                        client
                            .shared
                            .last_version
                            .store(entry.version, Ordering::Release);
                        let _ = events.send(Event::Entry(entry)).await;
                    }
                }
                Command::ChannelNotify | Command::SystemPush => {
                    let (group, seq, prev_seq, entry) = if frame.command == Command::ChannelNotify {
                        let Ok(n) = frame.decode_body::<pb::ChannelNotify>() else {
                            continue;
                        };
                        (n.group_id, n.seq, n.prev_seq, n.entry)
                    } else {
                        let Ok(n) = frame.decode_body::<pb::SystemPush>() else {
                            continue;
                        };
                        (
                            bubble_core::engine::BROADCAST_CHANNEL.to_owned(),
                            n.seq,
                            n.prev_seq,
                            n.entry,
                        )
                    };
                    let broadcast = frame.command == Command::SystemPush;
                    let wrap = |e: ChannelEntry| {
                        if broadcast {
                            Event::Broadcast(e)
                        } else {
                            Event::Channel(e)
                        }
                    };
                    let known = channel_seqs.get(&group).copied();
                    match known {
                        Some(last) if seq <= last => continue,
                        Some(last) if prev_seq > last => {
                            let after =
                                pull_channel_gap(&client, &events, &group, last, seq, broadcast)
                                    .await;
                            channel_seqs.insert(group, after);
                        }
                        _ => {
                            channel_seqs.insert(group, seq);
                            if let Some(e) =
                                entry.as_ref().and_then(|e| channel_entry_from_pb(e).ok())
                            {
                                let _ = events.send(wrap(e)).await;
                            }
                        }
                    }
                }
                Command::Typing => {
                    let Ok(t) = frame.decode_body::<pb::Typing>() else {
                        continue;
                    };
                    if let Ok(conversation) = conversation_from_pb(t.conversation.as_ref()) {
                        let _ = events
                            .send(Event::Typing {
                                conversation,
                                from: UserId::new(&t.user_id),
                            })
                            .await;
                    }
                }
                Command::Business(code) => {
                    let _ = events
                        .send(Event::Business {
                            command: code,
                            body: frame.body,
                        })
                        .await;
                }
                _ => {}
            },
        }
    }
}

/// Syncs from the newest delivered version until the server has no more.
async fn catch_up(client: &Client, events: &mpsc::Sender<Event>) {
    loop {
        let after = client.last_version();
        match client.sync(after, client.shared.config.sync_page).await {
            Ok((entries, has_more, _)) => {
                for e in entries {
                    if e.version > client.last_version() {
                        client
                            .shared
                            .last_version
                            .store(e.version, Ordering::Release);
                        let _ = events.send(Event::Entry(e)).await;
                    }
                }
                if !has_more {
                    return;
                }
            }
            Err(e) => {
                // The next push or reconnect retries the sync.
                tracing::debug!(error = %e, "sync failed");
                return;
            }
        }
    }
}

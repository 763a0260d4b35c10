//! Pushes this node could not route, sent again when the way is back.
//!
//! A push is dropped when presence cannot say where its receivers are, or
//! when the node that holds them does not answer. What it carried is
//! stored, but a device notices a gap only at its next push, and the last
//! message of a conversation has none after it. So the node notes whose
//! pushes it dropped: inbox owners and super groups. When presence answers
//! again, or the peer does, each of them is pushed its newest entry again
//! through the routes, to whichever node holds the devices now: a device
//! that missed something sees the gap and syncs; one that did not has that
//! entry already and ignores it. (Devices of a node that died reconnect
//! elsewhere and sync anyway.)

use std::collections::{HashMap, HashSet};

use super::Engine;
use super::route::Outgoing;
use crate::push::{Push, PushEvent, Target};
use crate::types::*;

/// How many owners and groups one outage remembers. Past it, the rest are
/// found at their devices' next push or reconnect, as before this module.
const CAP: usize = 100_000;

/// Whose pushes were dropped since they were last pushed again.
#[derive(Default)]
pub(super) struct Missed {
    users: HashSet<(AppId, UserId)>,
    groups: HashSet<(AppId, GroupId)>,
    /// The cap was reached (warned once until the set is emptied).
    full: bool,
}

impl Missed {
    fn room(&mut self) -> bool {
        if self.users.len() + self.groups.len() < CAP {
            return true;
        }
        if !self.full {
            self.full = true;
            tracing::warn!(
                cap = CAP,
                "too many dropped pushes to remember: the rest are found at their devices' next push or reconnect"
            );
        }
        false
    }
}

impl Engine {
    /// Notes pushes that were dropped: their inbox owners and super groups
    /// get their newest entry pushed again when the way is back. Other
    /// pushes (typing, kicks, business pushes) are not worth repeating.
    pub(super) fn missed(&self, pushes: &[Push]) {
        let mut missed = self.inner.degraded.missed.lock();
        for push in pushes {
            match (&push.target, &push.event) {
                (Target::User { user, .. }, PushEvent::Entry { .. }) => {
                    let key = (push.app.clone(), user.clone());
                    if !missed.users.contains(&key) && missed.room() {
                        missed.users.insert(key);
                    }
                }
                (Target::Users { .. }, PushEvent::Channel { entry, .. }) => {
                    let key = (push.app.clone(), entry.group.clone());
                    if !missed.groups.contains(&key) && missed.room() {
                        missed.groups.insert(key);
                    }
                }
                _ => {}
            }
        }
    }

    /// Pushes each noted owner and super group its newest entry again,
    /// through the routes. Each is taken from the set first: a push that is
    /// dropped again is noted again, for the next time the way is back.
    pub(super) async fn push_missed_again(&self) {
        let Missed { users, groups, .. } = std::mem::take(&mut *self.inner.degraded.missed.lock());
        if users.is_empty() && groups.is_empty() {
            return;
        }
        let (owners, channels) = (users.len(), groups.len());
        let mut by_app: HashMap<AppId, Vec<Outgoing>> = HashMap::new();
        for (app, user) in users {
            let entry = match self.newest_inbox_entry(&app, &user).await {
                Ok(Some(entry)) => entry,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the inboxes whose pushes were dropped; their devices find gaps at their next push");
                    break;
                }
            };
            by_app.entry(app).or_default().push(Outgoing {
                user,
                except_device: None,
                event: PushEvent::Entry {
                    prev_version: entry.version - 1,
                    entry,
                },
            });
        }
        for (app, outgoing) in by_app {
            self.push(&app, outgoing).await;
        }
        for (app, group) in groups {
            let Some(entry) = self.newest_channel_entry(&app, &group).await else {
                continue;
            };
            let Ok(members) = self.inner.groups.members(&app, &group).await else {
                continue;
            };
            let members = members.into_iter().map(|m| m.user).collect();
            let event = PushEvent::Channel {
                prev_seq: entry.seq - 1,
                entry,
            };
            self.push_to_members(&app, members, None, event).await;
        }
        tracing::info!(
            owners,
            super_groups = channels,
            "pushes that were dropped: each owner and super group was pushed its newest entry again, to find what it missed"
        );
    }

    /// A user's newest inbox entry (`None`: an empty inbox).
    pub(super) async fn newest_inbox_entry(
        &self,
        app: &AppId,
        user: &UserId,
    ) -> crate::Result<Option<InboxEntry>> {
        let newest = self.inner.inbox.last_version(app, user).await?;
        if newest == 0 {
            return Ok(None);
        }
        let page = self.inner.inbox.pull(app, user, newest - 1, 1).await?;
        Ok(page.entries.into_iter().next())
    }

    /// A super group's newest log entry (`None`: an empty log, or the store
    /// failed): one read, newest first.
    pub(super) async fn newest_channel_entry(
        &self,
        app: &AppId,
        group: &GroupId,
    ) -> Option<ChannelEntry> {
        let page = self
            .inner
            .channels
            .range_before(app, group, 0, 1)
            .await
            .ok()?;
        page.entries.into_iter().next()
    }
}

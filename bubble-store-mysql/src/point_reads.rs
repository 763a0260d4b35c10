//! The hot point reads, gathered ([`Coalescer`]): the settings of a
//! conversation (every 1:1 send's block check) and a group's roster (every
//! group send's audience), many keys to a statement.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use bubble_core::{
    AppId, Conversation, ConversationSettings, Group, GroupId, Member, Result, UserId,
};

use crate::coalesce::Coalescer;
use crate::error::map_err;
use crate::groups::{group_from, member_from};
use crate::nodes::Nodes;
use crate::queries;
use crate::retry;
use crate::rows::{self, b, dynamic};

/// Most conversations one gathered settings read asks for.
const SETTINGS_READ_MAX: usize = 256;
/// Most groups one gathered roster read asks for: their member rows all
/// come back in one result.
const ROSTER_READ_MAX: usize = 16;

/// Conversation settings, gathered.
pub(crate) type SettingsReads = Coalescer<SettingsKey, ConversationSettings>;
/// Group rosters, gathered.
pub(crate) type RosterReads = Coalescer<(AppId, GroupId), (Group, Vec<Member>)>;

/// The coalescers of the hot point reads, on the current runtime.
pub(crate) fn start(nodes: &Arc<Nodes>) -> (SettingsReads, RosterReads) {
    let on = nodes.clone();
    let settings = Coalescer::start("conversation settings", SETTINGS_READ_MAX, move |keys| {
        let nodes = on.clone();
        async move { read_settings(&nodes, keys).await }
    });
    let on = nodes.clone();
    let rosters = Coalescer::start("group rosters", ROSTER_READ_MAX, move |groups| {
        let nodes = on.clone();
        async move { read_rosters(&nodes, groups).await }
    });
    (settings, rosters)
}

/// One conversation's settings row: its owner's, by its primary key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct SettingsKey {
    app: AppId,
    owner: UserId,
    kind: u8,
    id: String,
}

impl SettingsKey {
    pub(crate) fn new(app: &AppId, owner: &UserId, conversation: &Conversation) -> SettingsKey {
        SettingsKey {
            app: app.clone(),
            owner: owner.clone(),
            kind: conversation.kind as u8,
            id: conversation.id().to_owned(),
        }
    }
}

/// The settings rows of `keys` in one read ([`queries::settings_of`]);
/// a key without a row is left out (the defaults). The list is padded to a
/// power of two with its last key, so the prepared statements of all sizes
/// are few.
pub(crate) async fn read_settings(
    nodes: &Nodes,
    keys: Vec<SettingsKey>,
) -> Result<HashMap<SettingsKey, ConversationSettings>> {
    let Some(last) = keys.last() else {
        return Ok(HashMap::new());
    };
    let padded = keys.len().next_power_of_two();
    let sql = queries::settings_of(padded);
    let keys = &keys;
    let sql = &sql;
    let found = retry::run(nodes, 0, retry::Replay::Always, |pool| async move {
        let mut q = sqlx::query(dynamic(sql.clone()));
        for k in keys
            .iter()
            .chain(std::iter::repeat_n(last, padded - keys.len()))
        {
            q = q
                .bind(b(k.app.as_str()))
                .bind(b(k.owner.as_str()))
                .bind(k.kind)
                .bind(b(&k.id));
        }
        q.fetch_all(&pool).await.map_err(map_err)
    })
    .await?;
    let mut settings = HashMap::with_capacity(found.len());
    for row in &found {
        let key = SettingsKey {
            app: AppId::new(rows::text(row, "app")?),
            owner: UserId::new(rows::text(row, "owner")?),
            kind: rows::get(row, "conv_kind")?,
            id: rows::text(row, "conv_id")?,
        };
        let value = ConversationSettings::from_flags(
            rows::get(row, "flags")?,
            rows::text_or_empty(row, "draft")?,
        );
        settings.insert(key, value);
    }
    Ok(settings)
}

/// The rosters of `groups` in one read ([`queries::rosters`]), members in
/// user id order; a group that does not exist is left out. The list is
/// padded to a power of two with its last group, so the prepared
/// statements of all sizes are few.
pub(crate) async fn read_rosters(
    nodes: &Nodes,
    groups: Vec<(AppId, GroupId)>,
) -> Result<HashMap<(AppId, GroupId), (Group, Vec<Member>)>> {
    let Some(last) = groups.last() else {
        return Ok(HashMap::new());
    };
    let padded = groups.len().next_power_of_two();
    let sql = queries::rosters(padded);
    let (groups, sql) = (&groups, &sql);
    let found = retry::run(nodes, 0, retry::Replay::Always, |pool| async move {
        let mut q = sqlx::query(dynamic(sql.clone()));
        for (app, id) in groups
            .iter()
            .chain(std::iter::repeat_n(last, padded - groups.len()))
        {
            q = q.bind(b(app.as_str())).bind(b(id.as_str()));
        }
        q.fetch_all(&pool).await.map_err(map_err)
    })
    .await?;
    let mut rosters: HashMap<(AppId, GroupId), (Group, Vec<Member>)> = HashMap::new();
    for row in &found {
        let key = (
            AppId::new(rows::text(row, "app")?),
            GroupId::from(rows::text(row, "id")?),
        );
        let roster = match rosters.entry(key) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => v.insert((group_from(row)?, Vec::new())),
        };
        let user: Option<Vec<u8>> = rows::get(row, "user_id")?;
        if user.is_some() {
            roster.1.push(member_from(row)?);
        }
    }
    for (_, members) in rosters.values_mut() {
        members.sort_unstable_by(|a, b| a.user.cmp(&b.user));
    }
    Ok(rosters)
}

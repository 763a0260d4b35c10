//! The key layout: every key this crate touches is named here.
//!
//! All keys of one user of one app share the hash tag `{prefix:app:user}`,
//! so in Redis Cluster they sit on one slot and a Lua script may touch them
//! together:
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `{P:A:U}:recent` | list | the recent window: the floor, then entries oldest first |
//! | `{P:A:U}:dedup:<client_msg_id>` | string | a send receipt, `SET NX PX` |
//! | `{P:A:U}:devices` | set | devices that may have a route (pruned lazily) |
//! | `{P:A:U}:route:<device>` | string | one device's route, `PX` = heartbeat TTL |
//!
//! Ids go in escaped: `%`, `{` and `}` become `%25`, `%7B` and `%7D`, so no
//! id can end the hash tag early or make two different keys collide.

use std::borrow::Cow;

use bubble_core::{AppId, DeviceId, UserId};

/// The suffix of the devices set; `scripts::ROUTES` strips it to find the
/// route keys beside it.
pub(crate) const DEVICES: &str = "devices";

// The scripts strip exactly 7 bytes (`string.sub(set, 1, -8)`).
const _: () = assert!(DEVICES.len() == 7);

/// Builds keys under one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix` (already validated: no braces).
    pub(crate) fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_owned(),
        }
    }

    /// `{prefix:app:user}:` — the part every key of that user starts with.
    fn user_base(&self, app: &AppId, user: &UserId) -> String {
        let (app, user) = (escape(app.as_str()), escape(user.as_str()));
        let mut key = String::with_capacity(self.prefix.len() + app.len() + user.len() + 24);
        key.push('{');
        key.push_str(&self.prefix);
        key.push(':');
        key.push_str(&app);
        key.push(':');
        key.push_str(&user);
        key.push_str("}:");
        key
    }

    /// The owner's recent window.
    pub(crate) fn recent(&self, app: &AppId, owner: &UserId) -> String {
        self.user_base(app, owner) + "recent"
    }

    /// A remembered receipt of `(sender, client_msg_id)`.
    pub(crate) fn dedup(&self, app: &AppId, sender: &UserId, client_msg_id: &str) -> String {
        self.user_base(app, sender) + "dedup:" + &escape(client_msg_id)
    }

    /// The set of the user's devices that may be online.
    pub(crate) fn devices(&self, app: &AppId, user: &UserId) -> String {
        self.user_base(app, user) + DEVICES
    }

    /// One device's route.
    pub(crate) fn route(&self, app: &AppId, user: &UserId, device: &DeviceId) -> String {
        self.user_base(app, user) + "route:" + &device_member(device)
    }
}

/// How a device is named inside the devices set (and after `route:`).
pub(crate) fn device_member(device: &DeviceId) -> Cow<'_, str> {
    escape(device.as_str())
}

/// Percent-escapes the three characters that matter in a key.
pub(crate) fn escape(id: &str) -> Cow<'_, str> {
    if !id.contains(['%', '{', '}']) {
        return Cow::Borrowed(id);
    }
    let mut out = String::with_capacity(id.len() + 8);
    for c in id.chars() {
        match c {
            '%' => out.push_str("%25"),
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_tag(key: &str) -> &str {
        let open = key.find('{').unwrap();
        let close = open + key[open..].find('}').unwrap();
        &key[open + 1..close]
    }

    #[test]
    fn every_key_of_a_user_shares_one_hash_tag() {
        let k = Keys::new("bubble");
        let (app, user) = (AppId::new("shop"), UserId::new("ann"));
        let tags = [
            k.recent(&app, &user),
            k.dedup(&app, &user, "m-1"),
            k.devices(&app, &user),
            k.route(&app, &user, &DeviceId::new("phone")),
        ]
        .map(|key| hash_tag(&key).to_owned());
        assert!(tags.iter().all(|t| t == "bubble:shop:ann"), "{tags:?}");
    }

    #[test]
    fn keys_carry_the_prefix_and_the_app() {
        let k = Keys::new("prod");
        let key = k.recent(&AppId::new("shop"), &UserId::new("ann"));
        assert_eq!(key, "{prod:shop:ann}:recent");
    }

    #[test]
    fn braces_in_ids_cannot_move_the_hash_tag() {
        let k = Keys::new("p");
        let key = k.dedup(&AppId::new("a"), &UserId::new("x}y{"), "c}:recent");
        assert_eq!(key, "{p:a:x%7Dy%7B}:dedup:c%7D:recent");
        assert_eq!(hash_tag(&key), "p:a:x%7Dy%7B");
    }

    #[test]
    fn escaping_is_reversible_so_distinct_ids_stay_distinct() {
        let k = Keys::new("p");
        let app = AppId::new("a");
        assert_ne!(
            k.recent(&app, &UserId::new("%7D")),
            k.recent(&app, &UserId::new("}"))
        );
    }

    #[test]
    fn devices_key_ends_with_the_suffix_the_routes_script_strips() {
        let k = Keys::new("p");
        let (app, user) = (AppId::new("a"), UserId::new("u"));
        let devices = k.devices(&app, &user);
        let base = devices.strip_suffix(DEVICES).unwrap();
        assert_eq!(
            format!("{base}route:web"),
            k.route(&app, &user, &DeviceId::new("web"))
        );
    }
}

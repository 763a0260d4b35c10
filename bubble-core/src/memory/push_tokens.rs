use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::error::Result;
use crate::notify::{PushPlatform, PushToken, PushTokens};
use crate::types::*;

#[derive(Default)]
struct State {
    /// Each user's tokens, by device (so already in device order).
    users: HashMap<(AppId, UserId), BTreeMap<DeviceId, PushToken>>,
    /// Who holds each token: how a token registered again finds the
    /// device it moves from, and how `remove_token` finds it.
    holders: HashMap<(AppId, PushPlatform, String), (UserId, DeviceId)>,
}

impl State {
    /// Removes `user`'s `device` token, with its entry in `holders`.
    fn remove_device(&mut self, app: &AppId, user: &UserId, device: &DeviceId) -> bool {
        let key = (app.clone(), user.clone());
        let Some(devices) = self.users.get_mut(&key) else {
            return false;
        };
        let Some(old) = devices.remove(device) else {
            return false;
        };
        if devices.is_empty() {
            self.users.remove(&key);
        }
        self.holders.remove(&(app.clone(), old.platform, old.token));
        true
    }
}

/// [`PushTokens`] in memory.
#[derive(Default)]
pub struct MemoryPushTokens {
    state: Mutex<State>,
}

impl MemoryPushTokens {
    /// No tokens.
    pub fn new() -> MemoryPushTokens {
        MemoryPushTokens::default()
    }
}

#[async_trait]
impl PushTokens for MemoryPushTokens {
    async fn put_token(&self, app: &AppId, user: &UserId, token: &PushToken) -> Result<()> {
        let mut state = self.state.lock();
        let key = (app.clone(), token.platform, token.token.clone());
        if let Some((old_user, old_device)) = state.holders.get(&key).cloned() {
            state.remove_device(app, &old_user, &old_device);
        }
        state.remove_device(app, user, &token.device);
        state
            .users
            .entry((app.clone(), user.clone()))
            .or_default()
            .insert(token.device.clone(), token.clone());
        state
            .holders
            .insert(key, (user.clone(), token.device.clone()));
        Ok(())
    }

    async fn remove_device_token(
        &self,
        app: &AppId,
        user: &UserId,
        device: &DeviceId,
    ) -> Result<bool> {
        Ok(self.state.lock().remove_device(app, user, device))
    }

    async fn remove_token(&self, app: &AppId, platform: PushPlatform, token: &str) -> Result<bool> {
        let mut state = self.state.lock();
        let key = (app.clone(), platform, token.to_owned());
        match state.holders.get(&key).cloned() {
            Some((user, device)) => Ok(state.remove_device(app, &user, &device)),
            None => Ok(false),
        }
    }

    async fn tokens(&self, app: &AppId, user: &UserId) -> Result<Vec<PushToken>> {
        let state = self.state.lock();
        Ok(state
            .users
            .get(&(app.clone(), user.clone()))
            .map(|devices| devices.values().cloned().collect())
            .unwrap_or_default())
    }
}

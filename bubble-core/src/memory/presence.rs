use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::error::Result;
use crate::ports::{Presence, Route};
use crate::types::*;

/// Live routes of one user, each with its expiry.
type Routes = Vec<(Route, Instant)>;

/// [`Presence`] in memory: routes expire when not refreshed within their TTL.
#[derive(Default)]
pub struct MemoryPresence {
    routes: Mutex<HashMap<(AppId, UserId), Routes>>,
}

impl MemoryPresence {
    /// No one online.
    pub fn new() -> MemoryPresence {
        MemoryPresence::default()
    }
}

#[async_trait]
impl Presence for MemoryPresence {
    async fn register(&self, app: &AppId, route: &Route, ttl: Duration) -> Result<()> {
        let mut all = self.routes.lock();
        let routes = all.entry((app.clone(), route.user.clone())).or_default();
        let now = Instant::now();
        routes.retain(|(r, expires)| r.device != route.device && *expires > now);
        routes.push((route.clone(), now + ttl));
        Ok(())
    }

    async fn unregister(
        &self,
        app: &AppId,
        user: &UserId,
        device: &DeviceId,
        session: u64,
    ) -> Result<bool> {
        let mut all = self.routes.lock();
        let key = (app.clone(), user.clone());
        let Some(routes) = all.get_mut(&key) else {
            return Ok(false);
        };
        let before = routes.len();
        routes.retain(|(r, _)| !(r.device == *device && r.session == session));
        let removed = routes.len() != before;
        if routes.is_empty() {
            all.remove(&key);
        }
        Ok(removed)
    }

    async fn routes(&self, app: &AppId, user: &UserId) -> Result<Vec<Route>> {
        self.routes_of(app, std::slice::from_ref(user)).await
    }

    async fn routes_of(&self, app: &AppId, users: &[UserId]) -> Result<Vec<Route>> {
        let all = self.routes.lock();
        let now = Instant::now();
        let mut out = Vec::new();
        for user in users {
            if let Some(routes) = all.get(&(app.clone(), user.clone())) {
                out.extend(
                    routes
                        .iter()
                        .filter(|(_, expires)| *expires > now)
                        .map(|(r, _)| r.clone()),
                );
            }
        }
        Ok(out)
    }
}

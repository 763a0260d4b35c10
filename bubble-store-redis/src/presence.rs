//! [`Presence`] on Redis: one key per device route with a `PX` TTL, so a
//! dead node's routes vanish by themselves, plus a per-user set of devices.

use std::time::Duration;

use async_trait::async_trait;
use bubble_core::ports::{Presence, Route};
use bubble_core::{AppId, DeviceId, Result, UserId};
use futures_util::future::try_join_all;

use crate::client::{RedisStore, Repeat, duration_ms};
use crate::codec::{decode_route, digits, encode_route};
use crate::keys::device_member;
use crate::scripts::{REGISTER, ROUTES, UNREGISTER};

/// Users per `ROUTES` call on a single server: large enough that a big
/// group costs few calls, small enough that one call never blocks Redis
/// for long. The calls of one lookup are sent at once (pipelined).
const USERS_PER_CALL: usize = 256;

#[async_trait]
impl Presence for RedisStore {
    async fn register(&self, app: &AppId, route: &Route, ttl: Duration) -> Result<()> {
        let key = &self.keys.route(app, &route.user, &route.device);
        let devices = &self.keys.devices(app, &route.user);
        let member = &device_member(&route.device);
        let value = &encode_route(route)?;
        let ttl = duration_ms(ttl);
        self.write(Repeat::Safe, |mut conn| async move {
            let mut call = REGISTER.prepare_invoke();
            call.key(key)
                .key(devices)
                .arg(member.as_ref())
                .arg(value)
                .arg(ttl);
            call.invoke_async::<i64>(&mut conn).await
        })
        .await
        .map(drop)
    }

    async fn unregister(
        &self,
        app: &AppId,
        user: &UserId,
        device: &DeviceId,
        session: u64,
    ) -> Result<bool> {
        let key = &self.keys.route(app, user, device);
        let devices = &self.keys.devices(app, user);
        let member = &device_member(device);
        let session = &digits(session);
        // Not repeated: a second run after an unseen first one would say
        // "it was not this session's".
        let removed: i64 = self
            .write(Repeat::Never, |mut conn| async move {
                let mut call = UNREGISTER.prepare_invoke();
                call.key(key).key(devices).arg(member.as_ref()).arg(session);
                call.invoke_async(&mut conn).await
            })
            .await?;
        Ok(removed == 1)
    }

    async fn routes(&self, app: &AppId, user: &UserId) -> Result<Vec<Route>> {
        self.routes_of(app, std::slice::from_ref(user)).await
    }

    async fn routes_of(&self, app: &AppId, users: &[UserId]) -> Result<Vec<Route>> {
        // One script call per batch, every batch sent at once: on a single
        // server batches of USERS_PER_CALL; in a cluster one per slot, since
        // a script may only touch keys of one slot.
        let batches = self.script_batches(users, USERS_PER_CALL, |u| self.keys.devices(app, u));
        let found = try_join_all(batches.iter().map(|batch| self.routes_batch(app, batch))).await?;
        Ok(found.into_iter().flatten().collect())
    }
}

impl RedisStore {
    /// Live routes of users whose keys may share one script call.
    async fn routes_batch(&self, app: &AppId, users: &[&UserId]) -> Result<Vec<Route>> {
        let sets = &users
            .iter()
            .map(|u| self.keys.devices(app, u))
            .collect::<Vec<_>>();
        let per_user: Vec<Vec<Vec<u8>>> = self
            .run(Repeat::Safe, |mut conn| async move {
                let mut call = ROUTES.prepare_invoke();
                for set in sets {
                    call.key(set);
                }
                call.invoke_async(&mut conn).await
            })
            .await?;
        let mut routes = Vec::new();
        for (user, values) in users.iter().zip(per_user) {
            for value in values {
                routes.push(decode_route(user, &value)?);
            }
        }
        Ok(routes)
    }
}

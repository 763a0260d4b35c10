//! Sessions: a device connects (the app's login policy may displace older
//! sessions), refreshes its route on every ping, and disconnects.

use std::sync::atomic::Ordering;

use super::degraded::is_down;
use super::{Engine, Session};
use crate::apps::LoginPolicy;
use crate::error::Result;
use crate::ports::{Identity, Route};
use crate::push::{Push, PushEvent, SessionQueue, Target};
use crate::types::*;

impl Engine {
    /// Registers a connected device: applies the app's login policy (kicking
    /// sessions it displaces), records the route, and returns the session
    /// with its push queue.
    pub async fn connect(
        &self,
        identity: &Identity,
        device: &DeviceId,
        platform: &str,
    ) -> Result<(Session, SessionQueue)> {
        validate_id("device id", device.as_str())?;
        let settings = self.settings(&identity.app).await?;
        let app = &identity.app;
        let user = &identity.user;
        // Without presence the login policy holds on this node only: the
        // other nodes' sessions are not known until it is back.
        let existing = match self.inner.presence.routes(app, user).await {
            Ok(routes) => routes,
            Err(e) if is_down(&e) => {
                self.presence_failed(&e, None);
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        let displaced: Vec<&Route> = existing
            .iter()
            .filter(|r| match settings.login_policy {
                LoginPolicy::AllDevices => r.device == *device,
                LoginPolicy::OnePerPlatform => r.device == *device || r.platform == platform,
                LoginPolicy::Single => true,
            })
            .collect();
        for route in displaced {
            let kick = Push {
                app: app.clone(),
                target: Target::Session {
                    user: user.clone(),
                    session: route.session,
                },
                event: PushEvent::Kick {
                    reason: format!("signed in on another device ({device})"),
                },
            };
            self.deliver_to_node(&route.node, vec![kick]).await;
            if let Err(e) = self
                .inner
                .presence
                .unregister(app, user, &route.device, route.session)
                .await
            {
                // The route expires by itself; the kicked session is gone.
                self.presence_failed(&e, None);
            }
        }
        let id = self.inner.next_session.fetch_add(1, Ordering::Relaxed);
        let session = Session {
            app: app.clone(),
            user: user.clone(),
            device: device.clone(),
            platform: platform.to_owned(),
            id,
        };
        let queue = self
            .inner
            .hub
            .attach(app, user, device, id, self.inner.config.session_queue);
        self.heartbeat(&session).await?;
        Ok((session, queue))
    }

    /// Refreshes a session's route (call on every ping). While presence is
    /// down this succeeds and the route is registered once it is back.
    pub async fn heartbeat(&self, session: &Session) -> Result<()> {
        let route = Route {
            user: session.user.clone(),
            device: session.device.clone(),
            platform: session.platform.clone(),
            node: self.inner.config.node.clone(),
            session: session.id,
            since: now_millis(),
            background: self
                .inner
                .hub
                .is_background(&session.app, &session.user, session.id),
        };
        self.register_route(&session.app, route).await
    }

    /// Records that the session's app went to the background (or came
    /// back): while none of the user's devices is in the foreground, new
    /// messages also make push notifications. The route says so at once,
    /// for the other nodes.
    pub async fn set_background(&self, session: &Session, background: bool) -> Result<()> {
        self.inner
            .hub
            .set_background(&session.app, &session.user, session.id, background);
        self.heartbeat(session).await
    }

    /// Forgets a session (the connection closed).
    pub async fn disconnect(&self, session: &Session) -> Result<()> {
        self.inner
            .hub
            .detach(&session.app, &session.user, session.id);
        self.forget_unregistered(session.id);
        if let Err(e) = self
            .inner
            .presence
            .unregister(&session.app, &session.user, &session.device, session.id)
            .await
        {
            // A route left behind expires by itself, and pushes it draws
            // find no session here.
            if !is_down(&e) {
                return Err(e);
            }
            self.presence_failed(&e, None);
        }
        Ok(())
    }
}

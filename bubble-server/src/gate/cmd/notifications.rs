//! PushRegister (129), PushUnregister (130) and AppState (131) -> Ok:
//! what a device needs for push notifications.

use bubble_core::notify::PushPlatform;
use bubble_core::{Engine, Result, Session};
use bubble_proto::{Command, Frame, pb};

use super::{Reply, decode};

fn ok() -> Reply {
    Reply::message(Command::Ok, &pb::Ok {})
}

/// `PushRegisterRequest` -> `Ok`.
#[derive(Debug)]
pub struct Register {
    platform: PushPlatform,
    token: String,
    locale: String,
    quiet_until: i64,
}

impl Register {
    /// Decodes a `PushRegisterRequest`.
    pub fn parse(frame: &Frame) -> Result<Register> {
        let req: pb::PushRegisterRequest = decode(frame)?;
        Ok(Register {
            platform: req.platform.parse()?,
            token: req.token,
            locale: req.locale,
            quiet_until: req.quiet_until,
        })
    }

    /// Registers the device's token.
    pub async fn apply(self, engine: &Engine, session: &Session) -> Result<Reply> {
        engine
            .register_push_token(
                session,
                self.platform,
                &self.token,
                &self.locale,
                self.quiet_until,
            )
            .await?;
        Ok(ok())
    }
}

/// `PushUnregisterRequest` -> `Ok`.
#[derive(Debug)]
pub struct Unregister;

impl Unregister {
    /// Decodes a `PushUnregisterRequest`.
    pub fn parse(frame: &Frame) -> Result<Unregister> {
        let _: pb::PushUnregisterRequest = decode(frame)?;
        Ok(Unregister)
    }

    /// Forgets the device's token (there need not be one).
    pub async fn apply(self, engine: &Engine, session: &Session) -> Result<Reply> {
        engine.unregister_push_token(session).await?;
        Ok(ok())
    }
}

/// `AppStateRequest` -> `Ok`.
#[derive(Debug)]
pub struct AppState {
    background: bool,
}

impl AppState {
    /// Decodes an `AppStateRequest`.
    pub fn parse(frame: &Frame) -> Result<AppState> {
        let req: pb::AppStateRequest = decode(frame)?;
        Ok(AppState {
            background: req.background,
        })
    }

    /// Records whether the app is in the background.
    pub async fn apply(self, engine: &Engine, session: &Session) -> Result<Reply> {
        engine.set_background(session, self.background).await?;
        Ok(ok())
    }
}

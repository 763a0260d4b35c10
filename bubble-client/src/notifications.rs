//! Push notifications: a device registers the token its push provider gave
//! it, and says when its app goes to the background, so the server notifies
//! it while no device of the user is looking.

use bubble_core::notify::PushPlatform;
use bubble_proto::{Command, pb};

use crate::{Client, ClientError};

/// A device's push registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRegistration {
    /// Which provider: APNs, FCM or the app's own webhook relay.
    pub platform: PushPlatform,
    /// The provider's token for this device.
    pub token: String,
    /// The device's language ("en", "zh-CN").
    pub locale: String,
    /// Do-not-disturb until this time (ms since the epoch); 0: off.
    pub quiet_until: i64,
}

impl Client {
    /// Registers this device's push token (replacing an earlier one).
    pub async fn register_push(&self, registration: &PushRegistration) -> Result<(), ClientError> {
        let _: pb::Ok = self
            .call(
                Command::PushRegister,
                &pb::PushRegisterRequest {
                    platform: registration.platform.as_str().to_owned(),
                    token: registration.token.clone(),
                    locale: registration.locale.clone(),
                    quiet_until: registration.quiet_until,
                },
            )
            .await?;
        Ok(())
    }

    /// Forgets this device's push token (sign-out): no more notifications.
    pub async fn unregister_push(&self) -> Result<(), ClientError> {
        let _: pb::Ok = self
            .call(Command::PushUnregister, &pb::PushUnregisterRequest {})
            .await?;
        Ok(())
    }

    /// Tells the server the app went to the background (`true`) or came
    /// back (`false`). While every connected device of the user is in the
    /// background, new messages also make push notifications.
    pub async fn set_background(&self, background: bool) -> Result<(), ClientError> {
        let _: pb::Ok = self
            .call(Command::AppState, &pb::AppStateRequest { background })
            .await?;
        Ok(())
    }
}

//! Push notifications to devices that are not connected (APNs, FCM, a
//! webhook): the tokens devices register, the notification one message
//! makes for one device, and the port every provider's adapter implements.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::types::{AppId, DeviceId, UserId};

/// Which provider delivers to a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushPlatform {
    /// Apple Push Notification service (iOS, macOS).
    Apns,
    /// Firebase Cloud Messaging (Android, web).
    Fcm,
    /// The app's own HTTP endpoint (a relay the product runs itself).
    Webhook,
}

impl PushPlatform {
    /// Every platform, in a fixed order.
    pub const ALL: [PushPlatform; 3] =
        [PushPlatform::Apns, PushPlatform::Fcm, PushPlatform::Webhook];

    /// The name stores and the wire use.
    pub fn as_str(self) -> &'static str {
        match self {
            PushPlatform::Apns => "apns",
            PushPlatform::Fcm => "fcm",
            PushPlatform::Webhook => "webhook",
        }
    }
}

impl fmt::Display for PushPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PushPlatform {
    type Err = Error;

    fn from_str(s: &str) -> Result<PushPlatform> {
        PushPlatform::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown push platform {s:?}: use \"apns\", \"fcm\" or \"webhook\""
                ))
            })
    }
}

/// A device's registration for push notifications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushToken {
    /// The device it reaches.
    pub device: DeviceId,
    /// Which provider.
    pub platform: PushPlatform,
    /// The provider's token for the device (APNs device token in hex, FCM
    /// registration token, or what the webhook relay understands).
    pub token: String,
    /// The device's language ("en", "zh-CN"), for the text of a notification.
    pub locale: String,
    /// Until when (ms) the device is in do-not-disturb: nothing is sent to
    /// it before then (0: not in do-not-disturb).
    pub quiet_until: i64,
    /// When it was registered (ms).
    pub updated_at: i64,
}

/// Where devices' push tokens are kept.
#[async_trait]
pub trait PushTokens: Send + Sync + 'static {
    /// Registers `token` for `user`'s `token.device`, replacing the
    /// device's earlier one. A token another user or device of the app
    /// held moves to this one (a phone that changed hands notifies only
    /// its new owner).
    async fn put_token(&self, app: &AppId, user: &UserId, token: &PushToken) -> Result<()>;

    /// Removes the token of `user`'s `device`; whether there was one.
    async fn remove_device_token(
        &self,
        app: &AppId,
        user: &UserId,
        device: &DeviceId,
    ) -> Result<bool>;

    /// Removes `token` of `platform` wherever it is registered in `app`
    /// (the provider said it is no longer valid); whether it was.
    async fn remove_token(&self, app: &AppId, platform: PushPlatform, token: &str) -> Result<bool>;

    /// `user`'s registered tokens, in device order.
    async fn tokens(&self, app: &AppId, user: &UserId) -> Result<Vec<PushToken>>;
}

/// How much of a message a notification shows on a lock screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preview {
    /// "New message" only.
    None,
    /// Who sent it, not what it says.
    #[default]
    Sender,
    /// Who sent it and its text.
    Full,
}

/// One notification for one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The app.
    pub app: AppId,
    /// Whose device.
    pub user: UserId,
    /// The device.
    pub device: DeviceId,
    /// Which provider.
    pub platform: PushPlatform,
    /// The provider's token for the device.
    pub token: String,
    /// The device's language.
    pub locale: String,
    /// The title shown (the sender, or the group), if the preview allows.
    pub title: Option<String>,
    /// The text shown.
    pub body: String,
    /// The app icon's number: the user's unread count.
    pub badge: u64,
    /// Notifications with the same key replace each other on the device
    /// (one per conversation).
    pub collapse_key: String,
    /// The conversation, as `kind:id` ("direct:alice", "group:g1").
    pub conversation: String,
    /// The message (hex server message id), so a tap opens it.
    pub message_id: String,
    /// Who sent it.
    pub sender: UserId,
    /// When it was sent (ms).
    pub sent_at: i64,
}

/// What a provider said of a notification it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyOutcome {
    /// Accepted for delivery.
    Sent,
    /// The token is no longer valid (app uninstalled, token rotated): it
    /// is removed and not tried again.
    InvalidToken,
}

/// A push provider. An error of a retryable kind (unavailable, timeout,
/// rate limited) is tried again with backoff; any other drops the
/// notification with a log line and a metric.
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    /// The platform it serves.
    fn platform(&self) -> PushPlatform;

    /// Sends one notification; `app_secret` is the app's secret (the
    /// webhook signs its body with it).
    async fn send(&self, notification: &Notification, app_secret: &str) -> Result<NotifyOutcome>;
}

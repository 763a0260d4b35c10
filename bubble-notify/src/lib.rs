//! bubble's push providers: one adapter of the [`Notifier`] port per
//! [`PushPlatform`], so a device that is not connected still hears of a
//! message.
//!
//! - [`WebhookNotifier`]: the app's own HTTP relay, each notification POSTed
//!   as JSON signed with the app's secret.
//! - [`FcmNotifier`]: Firebase Cloud Messaging's HTTP v1 API, with a
//!   service account's OAuth2 access token.
//! - [`ApnsNotifier`]: Apple Push Notification service over HTTP/2, with a
//!   provider token signed by the team's auth key.
//!
//! Each maps its provider's answers onto the port's: a token the provider
//! no longer knows is [`NotifyOutcome::InvalidToken`] (the engine removes
//! it), a refusal worth retrying has a retryable [`ErrorKind`]
//! (`RateLimited`, `Unavailable`, `Timeout`), and anything else is an
//! error that drops the notification. The module of each provider has the
//! table.
//!
//! # Layout
//!
//! From the bottom up; a module uses only modules listed before it.
//!
//! - `error`: where client errors (timeouts, refused connections) become
//!   core error kinds.
//! - `http`: what the providers' clients share (deadline, no redirects, a
//!   cap on answers read) and the clock.
//! - `keys`: private keys from PEM (Google's service-account key, Apple's
//!   .p8) and the JWTs they sign.
//! - [`webhook`], [`fcm`], [`apns`]: each provider's config (serde,
//!   validated field by field) and notifier, and its protocol.
//! - this file: [`NotifierConfig`], one `[[push]]` entry of the server's
//!   config, which builds whichever notifier it names.
//!
//! The tests run each notifier against a local server that speaks its
//! provider's protocol (HTTP/2 over TLS for APNs) and checks every request
//! as the provider documents it.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> bubble_core::Result<()> {
//! use bubble_notify::NotifierConfig;
//!
//! let entry: NotifierConfig = toml::from_str(
//!     r#"
//!     platform = "apns"
//!     team_id = "ABCDE12345"
//!     key_id = "KEY1234567"
//!     key_file = "/etc/bubble/AuthKey_KEY1234567.p8"
//!     topic = "com.example.chat"
//!     "#,
//! )
//! .expect("a valid entry");
//! let notifier = entry.build().await?;
//! assert_eq!(notifier.platform(), bubble_core::notify::PushPlatform::Apns);
//! # Ok(()) }
//! ```
//!
//! [`Notifier`]: bubble_core::notify::Notifier
//! [`NotifyOutcome::InvalidToken`]: bubble_core::notify::NotifyOutcome::InvalidToken
//! [`ErrorKind`]: bubble_core::ErrorKind

mod error;
mod http;
mod keys;

pub mod apns;
pub mod fcm;
pub mod webhook;

use std::sync::Arc;

use bubble_core::notify::{Notifier, PushPlatform};
use bubble_core::{InvalidConfig, Result};
use serde::{Deserialize, Serialize};

pub use apns::{ApnsConfig, ApnsNotifier};
pub use fcm::{FcmConfig, FcmNotifier};
pub use webhook::{WebhookConfig, WebhookNotifier};

/// One push provider's settings, tagged by `platform`, as a `[[push]]`
/// entry of the server's config holds them (the server adds the `app` key
/// beside them):
///
/// ```toml
/// [[push]]
/// app = "demo"
/// platform = "fcm"
/// service_account_file = "/etc/bubble/firebase-demo.json"
/// ```
///
/// Each variant's fields are its config's; an unknown key is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "platform", rename_all = "snake_case")]
#[non_exhaustive]
pub enum NotifierConfig {
    /// `platform = "webhook"`: the app's own HTTP relay.
    Webhook(WebhookConfig),
    /// `platform = "fcm"`: Firebase Cloud Messaging.
    Fcm(FcmConfig),
    /// `platform = "apns"`: Apple Push Notification service.
    Apns(ApnsConfig),
}

impl NotifierConfig {
    /// The platform whose tokens the notifier serves.
    pub fn platform(&self) -> PushPlatform {
        match self {
            NotifierConfig::Webhook(_) => PushPlatform::Webhook,
            NotifierConfig::Fcm(_) => PushPlatform::Fcm,
            NotifierConfig::Apns(_) => PushPlatform::Apns,
        }
    }

    /// Checks every setting without touching the disk or the network,
    /// naming the first bad key (as it is spelt in the entry).
    pub fn validate(&self) -> std::result::Result<(), InvalidConfig> {
        use bubble_core::AdapterConfig as _;
        match self {
            NotifierConfig::Webhook(c) => c.validate(),
            NotifierConfig::Fcm(c) => c.validate(),
            NotifierConfig::Apns(c) => c.validate(),
        }
    }

    /// Validates, reads the key files the entry names and builds the
    /// notifier. A bad setting, or a key file that is missing or holds the
    /// wrong key, fails with [`ErrorKind::InvalidInput`] naming the key and
    /// the file; nothing is sent to the provider until a notification.
    ///
    /// [`ErrorKind::InvalidInput`]: bubble_core::ErrorKind::InvalidInput
    pub async fn build(&self) -> Result<Arc<dyn Notifier>> {
        Ok(match self {
            NotifierConfig::Webhook(c) => Arc::new(WebhookNotifier::new(c)?),
            NotifierConfig::Fcm(c) => Arc::new(FcmNotifier::open(c).await?),
            NotifierConfig::Apns(c) => Arc::new(ApnsNotifier::open(c).await?),
        })
    }
}

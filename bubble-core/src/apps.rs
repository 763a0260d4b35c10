//! Apps (businesses, tenants) and the settings each one chooses.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::types::{AppId, validate_id};

/// How many devices of one user may be online at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LoginPolicy {
    /// Every device may be online together.
    #[default]
    AllDevices,
    /// One device per platform: a new phone login kicks the old phone.
    OnePerPlatform,
    /// One device only: any new login kicks the others.
    Single,
}

/// What an app allows. Every limit is checked by the engine before anything is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppSettings {
    /// Longest text message, in bytes.
    pub max_text_bytes: usize,
    /// Longest inline voice clip, in bytes (longer ones go to a CDN as media).
    pub max_voice_bytes: usize,
    /// Largest custom (JSON/XML) payload, in bytes.
    pub max_custom_bytes: usize,
    /// How long after sending a sender may recall a message, in milliseconds.
    pub recall_window_ms: i64,
    /// How long after sending a sender may edit a message, in milliseconds
    /// (0: no edits).
    pub edit_window_ms: i64,
    /// The most different reactions (emoji) one message takes.
    pub reactions_per_message: usize,
    /// The most reactions one user puts on one message.
    pub reactions_per_user: usize,
    /// A group with more members than this becomes a super group (fan-out on read).
    pub super_group_threshold: u64,
    /// The most members a group of any kind may have.
    pub max_group_members: u64,
    /// Who may be online together.
    pub login_policy: LoginPolicy,
    /// Whether 1:1 senders get read receipts.
    pub read_receipts: bool,
    /// Whether messages are indexed for history search.
    pub search: bool,
    /// How much of a message its push notification shows.
    pub notification_preview: crate::notify::Preview,
    /// At most one push notification per conversation and user within this
    /// many milliseconds (a burst shows once; the badge catches up with the
    /// next one).
    pub notification_collapse_ms: i64,
    /// Largest file a client may upload for a media message, in bytes
    /// (MediaUpload refuses a larger declared size with TOO_LARGE).
    pub max_media_bytes: u64,
    /// MIME types a client may upload: an entry ending in `/` allows every
    /// type under it (`image/`), any other entry one exact type
    /// (`application/pdf`). Empty: no uploads.
    pub media_types: Vec<String>,
    /// Messages older than this many days are deleted, with their search
    /// documents, by the server's minutely sweep (0: kept forever).
    pub retention_days: u32,
}

impl Default for AppSettings {
    fn default() -> Self {
        AppSettings {
            max_text_bytes: 16 * 1024,
            max_voice_bytes: 64 * 1024,
            max_custom_bytes: 32 * 1024,
            recall_window_ms: 2 * 60 * 1000,
            edit_window_ms: 15 * 60 * 1000,
            reactions_per_message: 20,
            reactions_per_user: 3,
            super_group_threshold: 500,
            max_group_members: 100_000,
            login_policy: LoginPolicy::AllDevices,
            read_receipts: true,
            search: true,
            notification_preview: crate::notify::Preview::Sender,
            notification_collapse_ms: 3_000,
            max_media_bytes: 100 * 1024 * 1024,
            media_types: ["image/", "video/", "audio/", "application/pdf"]
                .map(String::from)
                .to_vec(),
            retention_days: 0,
        }
    }
}

impl AppSettings {
    /// Checks that the settings make sense, naming the bad field.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("max_text_bytes", self.max_text_bytes as u64),
            ("max_voice_bytes", self.max_voice_bytes as u64),
            ("max_custom_bytes", self.max_custom_bytes as u64),
            ("super_group_threshold", self.super_group_threshold),
            ("max_group_members", self.max_group_members),
            ("reactions_per_message", self.reactions_per_message as u64),
            ("reactions_per_user", self.reactions_per_user as u64),
            ("max_media_bytes", self.max_media_bytes),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(Error::invalid(format!(
                    "app setting {name} must be above 0"
                )));
            }
        }
        for (name, window) in [
            ("recall_window_ms", self.recall_window_ms),
            ("edit_window_ms", self.edit_window_ms),
        ] {
            if window < 0 {
                return Err(Error::invalid(format!(
                    "app setting {name} must be 0 (not allowed) or more"
                )));
            }
        }
        if self.notification_collapse_ms < 0 {
            return Err(Error::invalid(
                "app setting notification_collapse_ms must be 0 (no collapsing) or more",
            ));
        }
        for entry in &self.media_types {
            let (kind, sub) = entry.split_once('/').unwrap_or(("", ""));
            let token = |t: &str| {
                t.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$&^_.+-".contains(&b)
                })
            };
            if kind.is_empty() || !token(kind) || !token(sub) {
                return Err(Error::invalid(format!(
                    "app setting media_types: {entry:?} is neither a lowercase MIME type \
                     (application/pdf) nor a type prefix ending in / (image/)"
                )));
            }
        }
        Ok(())
    }
}

/// One app: its id, its token secret and its settings.
#[derive(Clone, PartialEq, Eq)]
pub struct AppConfig {
    /// The app's id.
    pub id: AppId,
    /// A display name.
    pub name: String,
    /// The secret its tokens are signed with (never logged).
    pub secret: String,
    /// What the app allows.
    pub settings: AppSettings,
}

impl AppConfig {
    /// An app with default settings.
    pub fn new(id: impl Into<AppId>, secret: impl Into<String>) -> AppConfig {
        let id = id.into();
        AppConfig {
            name: id.to_string(),
            id,
            secret: secret.into(),
            settings: AppSettings::default(),
        }
    }

    /// Checks the id, the secret and the settings.
    pub fn validate(&self) -> Result<()> {
        validate_id("app id", self.id.as_str())?;
        if self.secret.len() < 32 {
            return Err(Error::invalid(format!(
                "the secret of app {} must be at least 32 bytes (its tokens are signed with it)",
                self.id
            )));
        }
        self.settings.validate()
    }

    /// The settings as JSON, as stores keep them.
    pub fn settings_json(&self) -> String {
        serde_json::to_string(&self.settings).unwrap_or_else(|_| "{}".into())
    }

    /// Settings read back from a store's JSON.
    pub fn parse_settings(json: &str) -> Result<AppSettings> {
        serde_json::from_str(json)
            .map_err(|e| Error::internal(format!("stored app settings are not valid: {e}")))
    }
}

impl fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppConfig")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("secret", &"<hidden>")
            .field("settings", &self.settings)
            .finish()
    }
}

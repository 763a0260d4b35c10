//! `[[push]]` (push-notification providers) and `[[hooks]]` (send hooks),
//! per app, as lists of tables in the config file.

use std::path::PathBuf;

use bubble_core::hooks::WordAction;
use bubble_notify::NotifierConfig;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ConfigError;

/// One push provider: `app` (or `"*"` for every app without its own) and
/// the provider's own keys, chosen by `platform`.
#[derive(Debug, Clone)]
pub struct PushEntry {
    /// The app it serves; `"*"`: every app without its own entry.
    pub app: String,
    /// The provider and its settings.
    pub provider: NotifierConfig,
}

impl<'de> Deserialize<'de> for PushEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PushEntry, D::Error> {
        use serde::de::Error as _;
        let mut table = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let app = match table.remove("app") {
            Some(serde_json::Value::String(app)) => app,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "app must be a string, not {other}"
                )));
            }
            None => {
                return Err(D::Error::custom(
                    "missing key app (an app id, or \"*\" for every app)",
                ));
            }
        };
        let provider = NotifierConfig::deserialize(serde_json::Value::Object(table))
            .map_err(|e| D::Error::custom(e.to_string()))?;
        Ok(PushEntry { app, provider })
    }
}

impl Serialize for PushEntry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        let mut value = serde_json::to_value(&self.provider).map_err(S::Error::custom)?;
        if let Some(table) = value.as_object_mut() {
            table.insert("app".into(), self.app.clone().into());
        }
        value.serialize(s)
    }
}

/// One app's send hooks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct HookEntry {
    /// The app; `"*"`: every app (before-send hooks and the word list only).
    pub app: String,
    /// The before-send service: `http(s)://...` (JSON) or `grpc://host:port`.
    pub before_send: String,
    /// What happens to a message when the before-send service cannot
    /// answer: `true` stores it anyway, `false` refuses it (UNAVAILABLE).
    pub fail_open: bool,
    /// How long the before-send service may take (ms).
    pub timeout_ms: u64,
    /// The after-send receiver: `http(s)://...`.
    pub after_send: String,
    /// The key HTTP hook requests are signed with (HMAC-SHA256, at least
    /// 32 bytes; the service checks `x-bubble-signature` with it).
    pub secret: String,
    /// The built-in word filter's words.
    pub blocked_words: Vec<String>,
    /// A file of more words, one per line (`#` starts a comment).
    pub blocked_words_file: Option<PathBuf>,
    /// `refuse` or `mask`.
    pub word_action: WordAction,
}

impl Default for HookEntry {
    fn default() -> Self {
        HookEntry {
            app: String::new(),
            before_send: String::new(),
            fail_open: true,
            timeout_ms: 1_000,
            after_send: String::new(),
            secret: String::new(),
            blocked_words: Vec::new(),
            blocked_words_file: None,
            word_action: WordAction::Refuse,
        }
    }
}

impl HookEntry {
    /// Every word of the filter: the list and the file's.
    pub fn words(&self, key: &str) -> Result<Vec<String>, ConfigError> {
        let mut words = self.blocked_words.clone();
        if let Some(path) = &self.blocked_words_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new(
                    &format!("{key}.blocked_words_file"),
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            words.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_owned),
            );
        }
        Ok(words)
    }
}

fn check_app(key: &str, app: &str) -> Result<(), ConfigError> {
    if app == "*" {
        return Ok(());
    }
    bubble_core::validate_id("app", app)
        .map(|_| ())
        .map_err(|e| {
            ConfigError::new(
                &format!("{key}.app"),
                format!("{} (or \"*\" for every app)", e.message()),
            )
        })
}

fn check_url(key: &str, url: &str, schemes: &[&str]) -> Result<(), ConfigError> {
    if url.is_empty() || schemes.iter().any(|s| url.starts_with(&format!("{s}://"))) {
        return Ok(());
    }
    Err(ConfigError::new(
        key,
        format!(
            "{url:?} must start with one of {}",
            schemes
                .iter()
                .map(|s| format!("{s}://"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ))
}

/// Checks `[[push]]`: apps, each provider's keys, one provider per app and
/// platform.
pub(crate) fn validate_push(entries: &[PushEntry]) -> Result<(), ConfigError> {
    let mut seen = std::collections::HashSet::new();
    for (i, e) in entries.iter().enumerate() {
        let key = format!("push[{i}]");
        check_app(&key, &e.app)?;
        e.provider
            .validate()
            .map_err(|e| ConfigError::new(&format!("{key}.{}", e.field), e.problem))?;
        if !seen.insert((e.app.clone(), e.provider.platform())) {
            return Err(ConfigError::new(
                &key,
                format!(
                    "a second {} provider for app {:?}: keep one per app and platform",
                    e.provider.platform(),
                    e.app
                ),
            ));
        }
    }
    Ok(())
}

/// Checks `[[hooks]]`: apps, URLs, one entry per app, after-send hooks
/// only for named apps.
pub(crate) fn validate_hooks(entries: &[HookEntry]) -> Result<(), ConfigError> {
    let mut seen = std::collections::HashSet::new();
    for (i, e) in entries.iter().enumerate() {
        let key = format!("hooks[{i}]");
        check_app(&key, &e.app)?;
        check_url(
            &format!("{key}.before_send"),
            &e.before_send,
            &["http", "https", "grpc"],
        )?;
        check_url(
            &format!("{key}.after_send"),
            &e.after_send,
            &["http", "https"],
        )?;
        if e.app == "*" && !e.after_send.is_empty() {
            return Err(ConfigError::new(
                &format!("{key}.after_send"),
                "an after-send receiver belongs to one app: name it in app",
            ));
        }
        let http = |u: &str| u.starts_with("http://") || u.starts_with("https://");
        if (http(&e.before_send) || http(&e.after_send)) && e.secret.len() < 32 {
            return Err(ConfigError::new(
                &format!("{key}.secret"),
                "an HTTP hook needs a secret of at least 32 bytes to sign its requests \
                 (e.g. `openssl rand -hex 32`)",
            ));
        }
        if e.timeout_ms == 0 {
            return Err(ConfigError::new(
                &format!("{key}.timeout_ms"),
                "must be above 0",
            ));
        }
        e.words(&key)?;
        if !seen.insert(e.app.clone()) {
            return Err(ConfigError::new(
                &key,
                format!("a second [[hooks]] entry for app {:?}: merge them", e.app),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::super::ConfigError;
    use bubble_core::notify::PushPlatform;

    /// Parsed and checked, as at start.
    fn checked(text: &str) -> Result<Config, ConfigError> {
        let c = Config::from_toml(text)?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn push_entries_name_an_app_and_a_provider_by_platform() {
        let c = checked(
            "[[push]]\napp = \"demo\"\nplatform = \"webhook\"\nurl = \"https://relay.example/notify\"\n\
             [[push]]\napp = \"*\"\nplatform = \"fcm\"\nservice_account_file = \"/etc/fcm.json\"\n",
        )
        .unwrap();
        assert_eq!(c.push.len(), 2);
        assert_eq!(c.push[0].app, "demo");
        assert_eq!(c.push[0].provider.platform(), PushPlatform::Webhook);
        assert_eq!(c.push[1].app, "*");
        assert_eq!(c.push[1].provider.platform(), PushPlatform::Fcm);
    }

    #[test]
    fn a_bad_push_entry_is_named_by_its_index_and_key() {
        let err = checked(
            "[[push]]\napp = \"demo\"\nplatform = \"webhook\"\nurl = \"https://a/n\"\n\
             [[push]]\napp = \"demo\"\nplatform = \"webhook\"\nurl = \"https://b/n\"\n",
        )
        .unwrap_err();
        assert_eq!(err.key, "push[1]", "{err}");
        assert!(err.problem.contains("one per app and platform"), "{err}");
        let err = checked("[[push]]\napp = \"demo\"\nplatform = \"pager\"\n").unwrap_err();
        assert!(err.to_string().contains("pager"), "{err}");
        let err = checked("[[push]]\nplatform = \"webhook\"\nurl = \"https://a/n\"\n").unwrap_err();
        assert!(err.to_string().contains("app"), "{err}");
    }

    #[test]
    fn hook_entries_read_every_key() {
        let c = checked(
            "[[hooks]]\napp = \"demo\"\nbefore_send = \"grpc://127.0.0.1:7000\"\nfail_open = false\n\
             timeout_ms = 300\nafter_send = \"https://archive/after\"\n\
             secret = \"0123456789abcdef0123456789abcdef\"\nblocked_words = [\"spam\"]\nword_action = \"mask\"\n",
        )
        .unwrap();
        let h = &c.hooks[0];
        assert_eq!(h.before_send, "grpc://127.0.0.1:7000");
        assert!(!h.fail_open);
        assert_eq!(h.timeout_ms, 300);
        assert_eq!(h.words("hooks[0]").unwrap(), vec!["spam".to_owned()]);
    }

    #[test]
    fn an_http_hook_without_a_long_secret_is_refused_naming_the_key() {
        let err = checked(
            "[[hooks]]\napp = \"demo\"\nafter_send = \"https://archive/after\"\nsecret = \"short\"\n",
        )
        .unwrap_err();
        assert_eq!(err.key, "hooks[0].secret", "{err}");
        let err = checked("[[hooks]]\napp = \"demo\"\nbefore_send = \"ftp://x\"\n").unwrap_err();
        assert_eq!(err.key, "hooks[0].before_send", "{err}");
        let err = checked(
            "[[hooks]]\napp = \"*\"\nafter_send = \"https://archive/after\"\n\
             secret = \"0123456789abcdef0123456789abcdef\"\n",
        )
        .unwrap_err();
        assert_eq!(err.key, "hooks[0].after_send", "{err}");
        let err =
            checked("[[hooks]]\napp = \"demo\"\nblocked_words_file = \"/nonexistent/words\"\n")
                .unwrap_err();
        assert_eq!(err.key, "hooks[0].blocked_words_file", "{err}");
    }
}

//! Plugs the config's `[[push]]` providers and `[[hooks]]` into the engine.

use std::sync::Arc;
use std::time::Duration;

use bubble_core::engine::FailurePolicy;
use bubble_core::hooks::{BeforeSendHook, WordFilter};
use bubble_core::{AppId, EngineBuilder};

use crate::StartError;
use crate::config::Config;
use crate::send_hooks::{HttpAfterSend, HttpBeforeSend};

fn app_of(app: &str) -> Option<AppId> {
    (app != "*").then(|| AppId::new(app))
}

/// `builder` with every push provider and send hook of `config`.
pub async fn wire(
    mut builder: EngineBuilder,
    config: &Config,
) -> Result<EngineBuilder, StartError> {
    for (i, entry) in config.push.iter().enumerate() {
        let notifier = entry.provider.build().await.map_err(|e| {
            StartError::Backend(format!("push[{i}] ({}): {e}", entry.provider.platform()))
        })?;
        builder = builder.notifier(app_of(&entry.app), notifier);
    }
    for (i, entry) in config.hooks.iter().enumerate() {
        let key = format!("hooks[{i}]");
        let app = app_of(&entry.app);
        let words = entry.words(&key)?;
        if !words.is_empty() {
            builder = builder.before_send(
                app.clone(),
                Arc::new(WordFilter::new(words, entry.word_action)),
                FailurePolicy::Closed,
            );
        }
        let timeout = Duration::from_millis(entry.timeout_ms);
        let policy = if entry.fail_open {
            FailurePolicy::Open
        } else {
            FailurePolicy::Closed
        };
        if !entry.before_send.is_empty() {
            let hook: Arc<dyn BeforeSendHook> =
                if let Some(address) = entry.before_send.strip_prefix("grpc://") {
                    Arc::new(crate::router::GrpcBeforeSendHook::new(
                        &format!("http://{address}"),
                        timeout,
                    )?)
                } else {
                    Arc::new(HttpBeforeSend::new(
                        &entry.before_send,
                        &entry.secret,
                        timeout,
                    )?)
                };
            builder = builder.before_send(app.clone(), hook, policy);
        }
        if !entry.after_send.is_empty() {
            let app = app.ok_or_else(|| {
                StartError::Backend(format!("{key}.after_send needs a named app"))
            })?;
            builder = builder.after_send(
                app,
                Arc::new(HttpAfterSend::new(
                    &entry.after_send,
                    &entry.secret,
                    timeout,
                )?),
            );
        }
    }
    Ok(builder)
}

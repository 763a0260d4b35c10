//! Secrets: the apps' token secrets (read from the app store, their one
//! home) and the admin API's bearer secret (configured, or generated once
//! and kept in the data directory).

use std::path::Path;

use async_trait::async_trait;

use bubble_core::token::{SecretSource, Secrets, generate_secret};
use bubble_core::{AppId, Engine, Result};

use crate::{Config, StartError};

/// Token secrets straight from the engine's app store (through
/// [`Engine::app`], which caches each app briefly): the one place an app's
/// secret lives, whichever node created or changed it.
pub struct AppSecrets {
    engine: Engine,
}

impl AppSecrets {
    /// Secrets read through `engine`.
    pub fn new(engine: Engine) -> AppSecrets {
        AppSecrets { engine }
    }
}

#[async_trait]
impl SecretSource for AppSecrets {
    async fn secrets(&self, app: &AppId) -> Result<Secrets> {
        let config = self.engine.app(app).await?;
        Secrets::new(app, config.secret.as_bytes())
    }
}

pub(crate) fn load_admin_secret(config: &Config) -> Result<String, StartError> {
    if !config.http.admin_secret.is_empty() {
        return Ok(config.http.admin_secret.clone());
    }
    let path = config.data_dir.join("admin_secret");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        return Ok(existing.trim().to_owned());
    }
    let secret = generate_secret();
    write_private(&path, &secret)?;
    Ok(secret)
}

fn write_private(path: &Path, text: &str) -> Result<(), StartError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut f = options
        .open(path)
        .map_err(|e| StartError::Backend(format!("cannot write {}: {e}", path.display())))?;
    f.write_all(text.as_bytes())
        .map_err(|e| StartError::Backend(format!("cannot write {}: {e}", path.display())))
}

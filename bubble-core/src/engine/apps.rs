//! Apps (tenants): their settings, cached briefly so a send does not read
//! the app store.

use std::sync::Arc;

use tokio::time::Instant;

use super::Engine;
use crate::apps::{AppConfig, AppSettings};
use crate::error::{Error, Result};
use crate::types::AppId;

impl Engine {
    /// Creates or replaces an app.
    pub async fn put_app(&self, app: AppConfig) -> Result<()> {
        app.validate()?;
        self.inner.apps.put_app(&app).await?;
        self.inner
            .app_cache
            .write()
            .insert(app.id.clone(), (Arc::new(app), Instant::now()));
        Ok(())
    }

    /// An app's configuration (cached briefly), `NotFound` if there is none.
    pub async fn app(&self, id: &AppId) -> Result<Arc<AppConfig>> {
        if let Some((app, at)) = self.inner.app_cache.read().get(id)
            && at.elapsed() < self.inner.config.app_cache_ttl
        {
            return Ok(app.clone());
        }
        let app =
            self.inner.apps.get_app(id).await?.ok_or_else(|| {
                Error::not_found(format!("app {id} does not exist; create it first"))
            })?;
        let app = Arc::new(app);
        self.inner
            .app_cache
            .write()
            .insert(id.clone(), (app.clone(), Instant::now()));
        Ok(app)
    }

    pub(super) async fn settings(&self, id: &AppId) -> Result<AppSettings> {
        Ok(self.app(id).await?.settings.clone())
    }
}

use std::collections::BTreeMap;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::apps::AppConfig;
use crate::error::Result;
use crate::ports::AppStore;
use crate::types::AppId;

/// [`AppStore`] in memory.
#[derive(Default)]
pub struct MemoryApps {
    apps: Mutex<BTreeMap<AppId, AppConfig>>,
}

impl MemoryApps {
    /// An empty registry.
    pub fn new() -> MemoryApps {
        MemoryApps::default()
    }
}

#[async_trait]
impl AppStore for MemoryApps {
    async fn put_app(&self, app: &AppConfig) -> Result<()> {
        app.validate()?;
        self.apps.lock().insert(app.id.clone(), app.clone());
        Ok(())
    }

    async fn get_app(&self, id: &AppId) -> Result<Option<AppConfig>> {
        Ok(self.apps.lock().get(id).cloned())
    }

    async fn list_apps(&self) -> Result<Vec<AppConfig>> {
        Ok(self.apps.lock().values().cloned().collect())
    }
}

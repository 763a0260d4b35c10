//! `AppStore`: the apps (tenants) of a deployment, settings kept as JSON text.

use async_trait::async_trait;

use bubble_core::ports::AppStore;
use bubble_core::{AppConfig, AppId, Result};

use crate::client::MysqlStore;
use crate::error::map_err;
use crate::rows;

pub(crate) fn app_from(row: &impl rows::Columns) -> Result<AppConfig> {
    let settings: String = rows::get(row, "settings")?;
    let mut app = AppConfig::new(
        AppId::from(rows::text(row, "id")?),
        rows::get::<String>(row, "secret")?,
    );
    app.name = rows::get(row, "name")?;
    app.settings = AppConfig::parse_settings(&settings)?;
    Ok(app)
}

#[async_trait]
impl AppStore for MysqlStore {
    async fn put_app(&self, app: &AppConfig) -> Result<()> {
        app.validate()?;
        self.write(|pool| async move {
            sqlx::query(
                "INSERT INTO apps (id, name, secret, settings) VALUES (?, ?, ?, ?) \
             ON DUPLICATE KEY UPDATE name = VALUES(name), secret = VALUES(secret), \
             settings = VALUES(settings)",
            )
            .bind(app.id.as_str().as_bytes())
            .bind(&app.name)
            .bind(&app.secret)
            .bind(app.settings_json())
            .execute(&pool)
            .await
            .map_err(map_err)
        })
        .await?;
        Ok(())
    }

    async fn get_app(&self, id: &AppId) -> Result<Option<AppConfig>> {
        let row = self
            .read(|pool| async move {
                sqlx::query("SELECT id, name, secret, settings FROM apps WHERE id = ?")
                    .bind(id.as_str().as_bytes())
                    .fetch_optional(&pool)
                    .await
                    .map_err(map_err)
            })
            .await?;
        row.as_ref().map(app_from).transpose()
    }

    async fn list_apps(&self) -> Result<Vec<AppConfig>> {
        let found = self
            .read(|pool| async move {
                sqlx::query("SELECT id, name, secret, settings FROM apps ORDER BY id")
                    .fetch_all(&pool)
                    .await
                    .map_err(map_err)
            })
            .await?;
        found.iter().map(app_from).collect()
    }
}

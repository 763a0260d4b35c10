//! Apps and their settings (kept as JSON, so a new setting needs no migration).

use async_trait::async_trait;
use bubble_core::{AppConfig, AppId, Result};
use sqlx::sqlite::{SqliteConnection, SqlitePool, SqliteRow};

use crate::error::map_err;
use crate::rows;
use crate::writer::WriteOp;

/// [`AppStore::put_app`](bubble_core::ports::AppStore::put_app).
pub(crate) struct Put {
    pub app: AppConfig,
}

#[async_trait]
impl WriteOp for Put {
    type Output = ();

    async fn apply(&self, conn: &mut SqliteConnection) -> Result<()> {
        let a = &self.app;
        sqlx::query(
            "INSERT INTO apps (id, name, secret, settings) VALUES (?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, secret = excluded.secret, \
             settings = excluded.settings",
        )
        .bind(a.id.as_str())
        .bind(a.name.as_str())
        .bind(a.secret.as_str())
        .bind(a.settings_json())
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
        Ok(())
    }
}

fn app_of(row: &SqliteRow) -> Result<AppConfig> {
    let mut app = AppConfig::new(AppId::from(rows::text(row, 0)?), rows::text(row, 2)?);
    app.name = rows::text(row, 1)?;
    app.settings = AppConfig::parse_settings(&rows::text(row, 3)?)?;
    Ok(app)
}

/// One app.
pub(crate) async fn get(pool: &SqlitePool, id: &AppId) -> Result<Option<AppConfig>> {
    let row = sqlx::query("SELECT id, name, secret, settings FROM apps WHERE id = ?")
        .bind(id.as_str())
        .fetch_optional(pool)
        .await
        .map_err(map_err)?;
    row.map(|r| app_of(&r)).transpose()
}

/// Every app, in id order.
pub(crate) async fn list(pool: &SqlitePool) -> Result<Vec<AppConfig>> {
    let found = sqlx::query("SELECT id, name, secret, settings FROM apps ORDER BY id")
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
    found.iter().map(app_of).collect()
}

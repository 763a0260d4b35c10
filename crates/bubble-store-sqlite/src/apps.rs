//! Apps and their settings (kept as JSON, so a new setting needs no migration).

use bubble_core::{AppConfig, AppId, Result};
use rusqlite::{Connection, params};
use sqlx::sqlite::{SqlitePool, SqliteRow};

use crate::error::{map_err, map_sqlite};
use crate::rows;
use crate::writer::WriteOp;

/// [`AppStore::put_app`](bubble_core::ports::AppStore::put_app).
pub(crate) struct Put {
    pub app: AppConfig,
}

impl WriteOp for Put {
    type Output = ();

    fn apply(&self, conn: &Connection) -> Result<()> {
        let a = &self.app;
        conn.prepare_cached(
            "INSERT INTO apps (id, name, secret, settings) VALUES (?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, secret = excluded.secret, \
             settings = excluded.settings",
        )
        .and_then(|mut s| {
            s.execute(params![
                a.id.as_str(),
                a.name.as_str(),
                a.secret.as_str(),
                a.settings_json()
            ])
        })
        .map_err(map_sqlite)?;
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

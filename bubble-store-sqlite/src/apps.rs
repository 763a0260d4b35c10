//! [`AppStore`] on SQLite: apps and their settings (kept as JSON, so a new
//! setting needs no migration).

use async_trait::async_trait;
use bubble_core::ports::AppStore;
use bubble_core::{AppConfig, AppId, Result};
use rusqlite::{Connection, params};

use crate::client::SqliteStore;
use crate::error::map_sqlite;
use crate::rows;
use crate::writer::WriteOp;

#[async_trait]
impl AppStore for SqliteStore {
    async fn put_app(&self, app: &AppConfig) -> Result<()> {
        app.validate()?;
        self.write(Put { app: app.clone() }).await
    }

    async fn get_app(&self, id: &AppId) -> Result<Option<AppConfig>> {
        let id = id.clone();
        self.read(move |conn| get(conn, &id)).await
    }

    async fn list_apps(&self) -> Result<Vec<AppConfig>> {
        self.read(list).await
    }
}

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

/// An app from `id, name, secret, settings`.
pub(crate) fn app_of(row: &rusqlite::Row<'_>) -> Result<AppConfig> {
    let mut app = AppConfig::new(AppId::from(rows::text(row, 0)?), rows::text(row, 2)?);
    app.name = rows::text(row, 1)?;
    app.settings = AppConfig::parse_settings(&rows::text(row, 3)?)?;
    Ok(app)
}

/// One app.
pub(crate) fn get(conn: &Connection, id: &AppId) -> Result<Option<AppConfig>> {
    let mut stmt = conn
        .prepare_cached("SELECT id, name, secret, settings FROM apps WHERE id = ?")
        .map_err(map_sqlite)?;
    rows::first(&mut stmt, params![id.as_str()], app_of)
}

/// Every app, in id order.
pub(crate) fn list(conn: &Connection) -> Result<Vec<AppConfig>> {
    let mut stmt = conn
        .prepare_cached("SELECT id, name, secret, settings FROM apps ORDER BY id")
        .map_err(map_sqlite)?;
    rows::all(&mut stmt, [], app_of)
}

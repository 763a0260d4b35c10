//! [`PushTokens`] on SQLite: one row per device of a user in
//! `push_tokens`, a provider's token unique within its app and platform.

use async_trait::async_trait;
use bubble_core::notify::{PushPlatform, PushToken, PushTokens};
use bubble_core::{AppId, DeviceId, Error, Result, UserId};
use rusqlite::{Connection, Row, params};

use crate::client::SqliteStore;
use crate::error::map_sqlite;
use crate::rows;
use crate::writer::WriteOp;

/// A user's tokens, in device order (the key: no sort).
pub(crate) const TOKENS: &str = "SELECT device, platform, token, locale, quiet_until, updated_at \
     FROM push_tokens WHERE app = ? AND user = ? ORDER BY device";

/// Frees a token for the device registering it: the row of any other
/// device holding it goes (`push_tokens_by_token`).
const MOVE_FROM: &str = "DELETE FROM push_tokens WHERE app = ?1 AND platform = ?2 AND token = ?3 \
     AND NOT (user = ?4 AND device = ?5)";

const UPSERT: &str = "INSERT INTO push_tokens \
     (app, user, device, platform, token, locale, quiet_until, updated_at) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
     ON CONFLICT (app, user, device) DO UPDATE SET platform = excluded.platform, \
     token = excluded.token, locale = excluded.locale, quiet_until = excluded.quiet_until, \
     updated_at = excluded.updated_at";

const DELETE_DEVICE: &str = "DELETE FROM push_tokens WHERE app = ? AND user = ? AND device = ?";

const DELETE_TOKEN: &str = "DELETE FROM push_tokens WHERE app = ? AND platform = ? AND token = ?";

#[async_trait]
impl PushTokens for SqliteStore {
    async fn put_token(&self, app: &AppId, user: &UserId, token: &PushToken) -> Result<()> {
        self.write(Put {
            app: app.clone(),
            user: user.clone(),
            token: token.clone(),
        })
        .await
    }

    async fn remove_device_token(
        &self,
        app: &AppId,
        user: &UserId,
        device: &DeviceId,
    ) -> Result<bool> {
        self.write(Remove {
            sql: DELETE_DEVICE,
            key: [
                app.as_str().to_owned(),
                user.as_str().to_owned(),
                device.as_str().to_owned(),
            ],
        })
        .await
    }

    async fn remove_token(&self, app: &AppId, platform: PushPlatform, token: &str) -> Result<bool> {
        self.write(Remove {
            sql: DELETE_TOKEN,
            key: [
                app.as_str().to_owned(),
                platform.as_str().to_owned(),
                token.to_owned(),
            ],
        })
        .await
    }

    async fn tokens(&self, app: &AppId, user: &UserId) -> Result<Vec<PushToken>> {
        let (app, user) = (app.clone(), user.clone());
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(TOKENS).map_err(map_sqlite)?;
            rows::all(&mut stmt, params![app.as_str(), user.as_str()], token_of)
        })
        .await
    }
}

/// A token from the columns of [`TOKENS`].
fn token_of(row: &Row<'_>) -> Result<PushToken> {
    let platform = rows::text(row, 1)?;
    let platform = platform.parse::<PushPlatform>().map_err(|_| {
        Error::internal(format!(
            "stored push platform {platform:?} is not one this version knows; the database may be from another program or corrupt"
        ))
    })?;
    Ok(PushToken {
        device: DeviceId::from(rows::text(row, 0)?),
        platform,
        token: rows::text(row, 2)?,
        locale: rows::text(row, 3)?,
        quiet_until: rows::int(row, 4)?,
        updated_at: rows::int(row, 5)?,
    })
}

/// [`PushTokens::put_token`]: the token leaves any other device, then the
/// device's row is written; one write, so nobody sees it on two devices.
struct Put {
    app: AppId,
    user: UserId,
    token: PushToken,
}

impl WriteOp for Put {
    type Output = ();

    fn apply(&self, conn: &Connection) -> Result<()> {
        let (app, user, t) = (self.app.as_str(), self.user.as_str(), &self.token);
        let platform = t.platform.as_str();
        conn.prepare_cached(MOVE_FROM)
            .and_then(|mut s| s.execute(params![app, platform, t.token, user, t.device.as_str()]))
            .map_err(map_sqlite)?;
        conn.prepare_cached(UPSERT)
            .and_then(|mut s| {
                s.execute(params![
                    app,
                    user,
                    t.device.as_str(),
                    platform,
                    t.token,
                    t.locale,
                    t.quiet_until,
                    t.updated_at
                ])
            })
            .map_err(map_sqlite)?;
        Ok(())
    }
}

/// A delete of the row(s) of one key; whether there was one.
struct Remove {
    sql: &'static str,
    key: [String; 3],
}

impl WriteOp for Remove {
    type Output = bool;

    fn apply(&self, conn: &Connection) -> Result<bool> {
        let removed = conn
            .prepare_cached(self.sql)
            .and_then(|mut s| s.execute(params![self.key[0], self.key[1], self.key[2]]))
            .map_err(map_sqlite)?;
        Ok(removed > 0)
    }
}

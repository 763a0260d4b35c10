//! `PushTokens`: devices' push tokens, one row per device of a user in
//! `push_tokens`, a provider's token unique within its app and platform.
//!
//! Registering a token is one transaction: the device's old row and any
//! other device's row holding the token go, then the new row goes in. When
//! another node registers the same token or device at the same moment, the
//! insert meets the other's row (a duplicate key) or the two deadlock; the
//! transaction rolls back and runs again, so the later registration wins.

use async_trait::async_trait;

use bubble_core::notify::{PushPlatform, PushToken, PushTokens};
use bubble_core::{AppId, DeviceId, Error, ErrorKind, Result, UserId};

use crate::client::MysqlStore;
use crate::error::{commit_err, is_duplicate, map_err};
use crate::rows::{self, b};

/// The longest token the `token` column holds (bytes).
const MAX_TOKEN: usize = 2048;

/// The longest locale the `locale` column holds (bytes).
const MAX_LOCALE: usize = 255;

pub(crate) fn token_from(row: &impl rows::Columns) -> Result<PushToken> {
    let platform = rows::text(row, "platform")?;
    let platform = platform.parse::<PushPlatform>().map_err(|_| {
        Error::internal(format!(
            "mysql: column platform holds {platform:?}, which this version does not know"
        ))
    })?;
    Ok(PushToken {
        device: DeviceId::from(rows::text(row, "device")?),
        platform,
        token: rows::text(row, "token")?,
        locale: rows::text(row, "locale")?,
        quiet_until: rows::get(row, "quiet_until")?,
        updated_at: rows::get(row, "updated_at")?,
    })
}

/// Refuses what the columns cannot hold, saying which and how long.
fn check_fits(token: &PushToken) -> Result<()> {
    if token.token.len() > MAX_TOKEN {
        return Err(Error::invalid(format!(
            "push token of device {} is {} bytes; the MySQL store keeps tokens of at most \
             {MAX_TOKEN} bytes",
            token.device,
            token.token.len()
        )));
    }
    if token.locale.len() > MAX_LOCALE {
        return Err(Error::invalid(format!(
            "locale of device {} is {} bytes; use a language tag of at most {MAX_LOCALE} bytes \
             (\"en\", \"zh-CN\")",
            token.device,
            token.locale.len()
        )));
    }
    Ok(())
}

#[async_trait]
impl PushTokens for MysqlStore {
    async fn put_token(&self, app: &AppId, user: &UserId, token: &PushToken) -> Result<()> {
        check_fits(token)?;
        let platform = token.platform.as_str();
        self.write(|pool| async move {
            let mut tx = pool.begin().await.map_err(map_err)?;
            // Two statements, each one seek of its own key (one with an OR
            // could range over the whole app and lock it).
            sqlx::query("DELETE FROM push_tokens WHERE app = ? AND user_id = ? AND device = ?")
                .bind(b(app.as_str()))
                .bind(b(user.as_str()))
                .bind(b(token.device.as_str()))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            sqlx::query("DELETE FROM push_tokens WHERE app = ? AND platform = ? AND token = ?")
                .bind(b(app.as_str()))
                .bind(b(platform))
                .bind(b(&token.token))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            let inserted = sqlx::query(
                "INSERT INTO push_tokens (app, user_id, device, platform, token, locale, \
                 quiet_until, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(b(app.as_str()))
            .bind(b(user.as_str()))
            .bind(b(token.device.as_str()))
            .bind(b(platform))
            .bind(b(&token.token))
            .bind(b(&token.locale))
            .bind(token.quiet_until)
            .bind(token.updated_at)
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(_) => {}
                // Another registration of this token or device committed
                // after the deletes: run again, which removes it.
                Err(e) if is_duplicate(&e) => {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        format!(
                            "mysql: push token of device {} was registered twice at once; \
                             the registration was rolled back, retry it",
                            token.device
                        ),
                    )
                    .with_source(e));
                }
                Err(e) => return Err(map_err(e)),
            }
            tx.commit().await.map_err(commit_err)
        })
        .await
    }

    async fn remove_device_token(
        &self,
        app: &AppId,
        user: &UserId,
        device: &DeviceId,
    ) -> Result<bool> {
        let done = self
            .write(|pool| async move {
                sqlx::query("DELETE FROM push_tokens WHERE app = ? AND user_id = ? AND device = ?")
                    .bind(b(app.as_str()))
                    .bind(b(user.as_str()))
                    .bind(b(device.as_str()))
                    .execute(&pool)
                    .await
                    .map_err(map_err)
            })
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn remove_token(&self, app: &AppId, platform: PushPlatform, token: &str) -> Result<bool> {
        let done = self
            .write(|pool| async move {
                sqlx::query("DELETE FROM push_tokens WHERE app = ? AND platform = ? AND token = ?")
                    .bind(b(app.as_str()))
                    .bind(b(platform.as_str()))
                    .bind(b(token))
                    .execute(&pool)
                    .await
                    .map_err(map_err)
            })
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn tokens(&self, app: &AppId, user: &UserId) -> Result<Vec<PushToken>> {
        let found = self
            .read(|pool| async move {
                sqlx::query(
                    "SELECT device, platform, token, locale, quiet_until, updated_at \
                     FROM push_tokens WHERE app = ? AND user_id = ? ORDER BY device",
                )
                .bind(b(app.as_str()))
                .bind(b(user.as_str()))
                .fetch_all(&pool)
                .await
                .map_err(map_err)
            })
            .await?;
        found.iter().map(token_from).collect()
    }
}

//! The background checkpointer: folds the WAL back into the database file
//! off the writer's path.
//!
//! Left to itself, SQLite checkpoints inside the COMMIT that pushes the WAL
//! past a threshold: that commit copies pages into the main file and waits
//! for two more fsyncs while every caller of its batch waits too. Here a
//! separate connection runs `PRAGMA wal_checkpoint(PASSIVE)` every few
//! hundred milliseconds instead; PASSIVE never takes the write lock, so the
//! writer keeps committing meanwhile. The writer's own automatic checkpoint
//! stays on at a much higher threshold, only as a safety net should this
//! task fall behind.

use std::time::Duration;

use sqlx::Connection;
use sqlx::sqlite::SqliteConnection;
use tokio::sync::oneshot;

/// How often the WAL is folded back.
pub(crate) const INTERVAL: Duration = Duration::from_millis(200);

/// WAL pages at which the writer checkpoints by itself (64 MiB of 4 KiB
/// pages): reached only if this task cannot keep up.
pub(crate) const WRITER_FALLBACK_PAGES: u32 = 16_384;

/// Checkpoints every [`INTERVAL`] until `stop` fires or is dropped.
pub(crate) async fn run(mut conn: SqliteConnection, mut stop: oneshot::Receiver<()>) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        let result: Result<(i64, i64, i64), sqlx::Error> =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&mut conn)
                .await;
        match result {
            Ok((_, log, done)) => tracing::trace!(log, done, "WAL checkpoint"),
            // The writer's fallback checkpoint still bounds the WAL; say
            // why this one failed and try again on the next tick.
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
        }
    }
    let _ = conn.close().await;
}

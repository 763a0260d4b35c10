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

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::error::map_sqlite;

/// How often the WAL is folded back.
pub(crate) const INTERVAL: Duration = Duration::from_millis(200);

/// WAL pages at which the writer checkpoints by itself (64 MiB of 4 KiB
/// pages): reached only if this task cannot keep up.
pub(crate) const WRITER_FALLBACK_PAGES: u32 = 16_384;

/// Checkpoints every [`INTERVAL`] until `stop` fires or is dropped. Each
/// checkpoint runs on tokio's blocking pool (it reads and writes the file),
/// taking the connection there and back.
pub(crate) async fn run(mut conn: Connection, mut stop: oneshot::Receiver<()>) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        let done = tokio::task::spawn_blocking(move || {
            let result = checkpoint(&conn);
            (conn, result)
        })
        .await;
        let result;
        (conn, result) = match done {
            Ok(done) => done,
            // The runtime is shutting down (or the checkpoint panicked): the
            // connection went with the task, and the writer's fallback
            // checkpoint takes over.
            Err(e) => {
                tracing::warn!(error = %e, "the WAL checkpointer stopped");
                return;
            }
        };
        match result {
            Ok((log, done)) => tracing::trace!(log, done, "WAL checkpoint"),
            // The writer's fallback checkpoint still bounds the WAL; say
            // why this one failed and try again on the next tick.
            Err(e) => tracing::warn!(error = %map_sqlite(e), "WAL checkpoint failed"),
        }
    }
    // Closing folds the WAL back if this is the file's last connection:
    // off the async threads too.
    let _ = tokio::task::spawn_blocking(move || {
        if let Err((_, e)) = conn.close() {
            tracing::warn!(error = %map_sqlite(e), "closing the checkpointer's connection failed");
        }
    })
    .await;
}

/// One passive checkpoint: the WAL's frames, and how many of them reached
/// the main file.
fn checkpoint(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get(1)?, r.get(2)?))
    })
}

//! `bubble-server reindex`: rebuilds the search index from the store, and
//! the same rebuild at start when the index says it needs one (an upgrade
//! of its on-disk format left it empty).

use std::io::Write;
use std::time::{Duration, Instant};

use bubble_core::{AppId, Engine, ErrorKind, RebuildProgress, RebuildScope};

use crate::StartError;
use crate::config::Config;
use crate::metrics::Metrics;

/// How often progress is reported: often enough to see it move, rarely
/// enough that a fast rebuild does not spend its time printing.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// Rebuilds the search index of `app` (every app when `None`) from the
/// store `config` names, writing progress lines (messages done, messages
/// per second) to `out`. Returns how many messages it indexed.
///
/// The server must be stopped: the embedded index takes one writer, and a
/// store that is being written to may show a page without a delete-for-me
/// that lands meanwhile.
pub async fn run(
    config: &Config,
    app: Option<AppId>,
    out: &mut (dyn Write + Send),
) -> Result<u64, StartError> {
    config.validate()?;
    let metrics = Metrics::default();
    let backends = crate::backends::Backends::connect(config, &metrics).await?;
    if backends.search.is_none() {
        return Err(StartError::Backend(
            "search.kind is \"off\": there is no search index to rebuild".into(),
        ));
    }
    let engine = backends.engine_builder(config).build()?;
    let scope = match app {
        Some(app) => RebuildScope::App(app),
        None => RebuildScope::All,
    };
    let result = rebuild(&engine, scope, out).await;
    backends.close().await?;
    result
}

/// Runs the rebuild with progress on `out`, naming the store when it cannot
/// list its messages.
async fn rebuild(
    engine: &Engine,
    scope: RebuildScope,
    out: &mut (dyn Write + Send),
) -> Result<u64, StartError> {
    let started = Instant::now();
    let mut last_report: Option<Instant> = None;
    let mut report = |p: &RebuildProgress| {
        if last_report.is_none_or(|t| t.elapsed() >= REPORT_EVERY) {
            last_report = Some(Instant::now());
            let _ = writeln!(out, "{}", progress_line(p));
        }
    };
    match engine.rebuild_search(scope, &mut report).await {
        Ok(n) => {
            let secs = started.elapsed().as_secs_f64();
            let _ = writeln!(
                out,
                "reindex: done, {n} messages in {secs:.1} s ({:.0}/s)",
                n as f64 / secs.max(1e-6)
            );
            Ok(n)
        }
        Err(e) if e.kind() == ErrorKind::Unsupported => Err(StartError::Backend(format!(
            "reindex: the store cannot be read for a rebuild: {}. The search index is \
             unchanged for the apps not yet started; run reindex again once the store \
             supports it",
            e.message()
        ))),
        Err(e) => Err(StartError::Backend(format!("reindex: {e}"))),
    }
}

/// One progress line: the app, its messages, all messages, the rate.
fn progress_line(p: &RebuildProgress) -> String {
    format!(
        "reindex: app {}: {} messages; {} in all, {:.0}/s",
        p.app,
        p.app_messages,
        p.messages,
        p.per_second()
    )
}

/// At start: when the search index needs a rebuild, runs one in the
/// background (messaging serves meanwhile; searches answer `Unavailable`
/// until it is done), logging progress. A store that cannot be read leaves
/// the index refusing searches, and the log says why.
pub(crate) async fn rebuild_if_needed(engine: Engine) {
    match engine.search_needs_rebuild().await {
        Ok(false) => return,
        Ok(true) => {}
        Err(e) => {
            tracing::error!(error = %e, "cannot tell whether the search index needs a rebuild");
            return;
        }
    }
    tracing::warn!(
        "the search index must be rebuilt from the store (its format changed); rebuilding \
         now, searches answer Unavailable until it is done"
    );
    let mut last = Instant::now();
    let result = engine
        .rebuild_search(RebuildScope::All, |p| {
            if last.elapsed() >= REPORT_EVERY {
                last = Instant::now();
                tracing::info!(
                    app = %p.app,
                    messages = p.messages,
                    per_second = p.per_second() as u64,
                    "search rebuild in progress"
                );
            }
        })
        .await;
    match result {
        Ok(n) => tracing::info!(messages = n, "search index rebuilt from the store"),
        Err(e) => tracing::error!(
            error = %e,
            "the search index could not be rebuilt: searches keep answering Unavailable; \
             fix the cause and run `bubble-server reindex` with the server stopped"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_progress_line_names_the_app_the_counts_and_the_rate() {
        let p = RebuildProgress {
            app: AppId::new("acme"),
            app_messages: 500,
            messages: 1500,
            elapsed: Duration::from_secs(3),
        };
        assert_eq!(
            progress_line(&p),
            "reindex: app acme: 500 messages; 1500 in all, 500/s"
        );
    }
}

//! The conformance suite every adapter runs (feature `testkit`).
//!
//! Each port has one entry point (`inbox`, `groups`, `channel_log`, `apps`,
//! `cache`, `presence`, `search`, `discovery`, `jobs`, `push_tokens`) that
//! runs every check for that port against the adapter it is given. Each
//! check runs in its own freshly named app (the job checks name their
//! queues after it), so many runs can share one database, and in its own
//! task, so one failing check does not hide the others: the entry point
//! panics at the end listing every check that failed.
//!
//! [`proxy::Proxy`] puts a test's own outage between an adapter and the
//! shared service it talks to.
//!
//! ```ignore
//! #[tokio::test(flavor = "multi_thread")]
//! async fn inbox_conforms() {
//!     bubble_core::testkit::inbox(Arc::new(MyInbox::connect(...).await?)).await;
//! }
//! ```

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::types::AppId;

mod apps;
mod cache;
mod channel;
mod discovery;
mod fixtures;
mod groups;
mod inbox;
mod inbox_extras;
mod jobs;
mod presence;
pub mod proxy;
mod push_tokens;
mod retention;
mod search;

pub use apps::apps;
pub use cache::cache;
pub use channel::channel_log;
pub use discovery::{DiscoveryOptions, discovery};
pub use fixtures::*;
pub use groups::groups;
pub use inbox::inbox;
pub use jobs::jobs;
pub use presence::presence;
pub use push_tokens::push_tokens;
pub use search::search;

type CheckFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One named check of a port.
pub struct Check<P: ?Sized> {
    /// What it checks, as a sentence-like name.
    pub name: &'static str,
    run: fn(Arc<P>, AppId) -> CheckFuture,
}

impl<P: ?Sized> Check<P> {
    /// A check named `name`.
    pub const fn new(name: &'static str, run: fn(Arc<P>, AppId) -> CheckFuture) -> Check<P> {
        Check { name, run }
    }
}

macro_rules! checks {
    ($port:ty; $($name:ident),* $(,)?) => {
        &[$(
            $crate::testkit::Check::<$port>::new(stringify!($name), |s, app| Box::pin($name(s, app))),
        )*]
    };
}
pub(crate) use checks;

/// Whether `r` is the `Unsupported` error of an optional port method, so a
/// check has nothing to hold the store to; the error must name `method`.
/// Says so on stderr, naming the port.
pub(crate) fn unsupported<T>(port: &str, method: &str, r: &crate::Result<T>) -> bool {
    match r {
        Err(e) if e.kind() == crate::ErrorKind::Unsupported => {
            assert!(
                e.to_string().contains(method),
                "the error names the missing method: {e}"
            );
            eprintln!("testkit {port}: {method} is not supported by this store: {e}");
            true
        }
        _ => false,
    }
}

/// A fresh app id nobody else uses, so checks can share a backend.
pub fn fresh_app() -> AppId {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    AppId::new(format!("tk{:016x}", h.finish()))
}

/// Runs every check, each in its own task and app, and panics naming the
/// ones that failed (with their messages).
pub async fn run_checks<P: ?Sized + Send + Sync + 'static>(
    port: &str,
    subject: Arc<P>,
    checks: &[Check<P>],
) {
    let mut failed = Vec::new();
    for check in checks {
        let fut = (check.run)(subject.clone(), fresh_app());
        match tokio::spawn(fut).await {
            Ok(()) => eprintln!("testkit {port}: {} ... ok", check.name),
            Err(e) => {
                let why = match e.try_into_panic() {
                    Ok(p) => p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "panicked".into()),
                    Err(e) => e.to_string(),
                };
                eprintln!("testkit {port}: {} ... FAILED: {why}", check.name);
                failed.push(format!("{}: {why}", check.name));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{port} conformance: {} of {} checks failed:\n  {}",
        failed.len(),
        checks.len(),
        failed.join("\n  ")
    );
}

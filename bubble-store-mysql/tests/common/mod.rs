//! Shared by the integration tests: run a test on a fresh database and drop it afterwards.

#![allow(dead_code)]

use std::future::Future;

use bubble_store_mysql::testing::TestDb;

/// Runs `test` against a new database and drops the database afterwards,
/// also when the test panics (the panic is passed on).
pub async fn on_fresh_db<F, Fut>(test: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let db = TestDb::create().await;
    let outcome = tokio::spawn(test(db.clone())).await;
    db.drop_db().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

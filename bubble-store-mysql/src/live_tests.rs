//! Tests against the MariaDB of the tests (`scripts/services/mariadb.sh`)
//! that need the crate's insides: the session settings `client` gives every
//! connection, and the vendor errors a real server produces, as `error`
//! maps them.

mod session {
    use crate::testing::TestDb;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_connection_reads_committed_and_is_strict() {
        let db = TestDb::create().await;
        let store = db.store().await;
        // MariaDB 10.11 names it tx_isolation, MySQL 8 transaction_isolation.
        let mut isolation: Option<String> = None;
        for var in ["@@SESSION.transaction_isolation", "@@SESSION.tx_isolation"] {
            if let Ok(v) =
                sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!("SELECT {var}")))
                    .fetch_one(store.pool())
                    .await
            {
                isolation = Some(v);
                break;
            }
        }
        let mode: String = sqlx::query_scalar("SELECT @@SESSION.sql_mode")
            .fetch_one(store.pool())
            .await
            .unwrap();
        store.close().await;
        db.drop_db().await;
        assert_eq!(isolation.as_deref(), Some("READ-COMMITTED"));
        assert!(mode.contains("STRICT_ALL_TABLES"), "{mode}");
    }
}

/// Vendor errors produced by a real server.
mod vendor {
    use std::time::Duration;

    use sqlx::{Connection, Executor, MySqlConnection};

    use bubble_core::ErrorKind;

    use crate::error::{code, is_duplicate, map_err, vendor_code};
    use crate::testing::TestDb;

    async fn with_db<F, Fut>(test: F)
    where
        F: FnOnce(TestDb) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let db = TestDb::create().await;
        db.store().await.close().await;
        let outcome = tokio::spawn(test(db.clone())).await;
        db.drop_db().await;
        if let Err(e) = outcome {
            std::panic::resume_unwind(e.into_panic());
        }
    }

    async fn exec(conn: &mut MySqlConnection, sql: &'static str) -> Result<(), sqlx::Error> {
        conn.execute(sql).await.map(|_| ())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_duplicate_key_is_already_exists() {
        with_db(|db| async move {
            let mut c = db.connection().await;
            let insert = "INSERT INTO inbox_versions (app, owner, version) VALUES ('a', 'o', 1)";
            exec(&mut c, insert).await.unwrap();
            let e = exec(&mut c, insert).await.unwrap_err();
            assert!(is_duplicate(&e));
            assert_eq!(map_err(e).kind(), ErrorKind::AlreadyExists);
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_value_too_long_for_its_column_is_invalid_input() {
        with_db(|db| async move {
            let mut c = db.connection().await;
            let e =
                sqlx::query("INSERT INTO inbox_versions (app, owner, version) VALUES ('a', ?, 1)")
                    .bind("x".repeat(129).into_bytes())
                    .execute(&mut c)
                    .await
                    .unwrap_err();
            assert_eq!(vendor_code(&e), Some(1406));
            assert_eq!(map_err(e).kind(), ErrorKind::InvalidInput);
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deadlock_is_a_retryable_conflict() {
        with_db(|db| async move {
            let mut setup = db.connection().await;
            exec(
                &mut setup,
                "INSERT INTO inbox_versions (app, owner, version) VALUES ('a', 'x', 1), ('a', 'y', 1)",
            )
            .await
            .unwrap();
            let mut a = db.connection().await;
            let mut b = db.connection().await;
            exec(&mut a, "BEGIN").await.unwrap();
            exec(&mut a, "UPDATE inbox_versions SET version = 2 WHERE app = 'a' AND owner = 'x'")
                .await
                .unwrap();
            exec(&mut b, "BEGIN").await.unwrap();
            exec(&mut b, "UPDATE inbox_versions SET version = 2 WHERE app = 'a' AND owner = 'y'")
                .await
                .unwrap();
            // a waits for b's row, then b asks for a's: a cycle.
            let waiting = tokio::spawn(async move {
                let r = exec(&mut a, "UPDATE inbox_versions SET version = 3 WHERE app = 'a' AND owner = 'y'").await;
                let _ = exec(&mut a, "ROLLBACK").await;
                r
            });
            tokio::time::sleep(Duration::from_millis(300)).await;
            let closing = exec(&mut b, "UPDATE inbox_versions SET version = 3 WHERE app = 'a' AND owner = 'x'").await;
            let _ = exec(&mut b, "ROLLBACK").await;
            let waited = waiting.await.unwrap();
            let victim = match (waited, closing) {
                (Err(e), Ok(())) | (Ok(()), Err(e)) => e,
                other => panic!("exactly one side must lose the deadlock: {other:?}"),
            };
            assert_eq!(vendor_code(&victim), Some(code::LOCK_DEADLOCK));
            let e = map_err(victim);
            assert_eq!(e.kind(), ErrorKind::Conflict);
            assert!(e.is_retryable());
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lock_wait_timeout_is_a_timeout() {
        with_db(|db| async move {
            let mut a = db.connection().await;
            let mut b = db.connection().await;
            exec(
                &mut a,
                "INSERT INTO inbox_versions (app, owner, version) VALUES ('a', 'x', 1)",
            )
            .await
            .unwrap();
            exec(&mut a, "BEGIN").await.unwrap();
            exec(
                &mut a,
                "UPDATE inbox_versions SET version = 2 WHERE app = 'a' AND owner = 'x'",
            )
            .await
            .unwrap();
            exec(&mut b, "SET SESSION innodb_lock_wait_timeout = 1")
                .await
                .unwrap();
            let e = exec(
                &mut b,
                "UPDATE inbox_versions SET version = 3 WHERE app = 'a' AND owner = 'x'",
            )
            .await
            .unwrap_err();
            exec(&mut a, "ROLLBACK").await.unwrap();
            assert_eq!(vendor_code(&e), Some(code::LOCK_WAIT_TIMEOUT));
            let e = map_err(e);
            assert_eq!(e.kind(), ErrorKind::Timeout);
            assert!(e.is_retryable());
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_killed_connection_is_unavailable() {
        with_db(|db| async move {
            let mut victim = db.connection().await;
            let mut killer = db.connection().await;
            let id: i64 = sqlx::query_scalar("SELECT CAST(CONNECTION_ID() AS SIGNED)")
                .fetch_one(&mut victim)
                .await
                .unwrap();
            killer
                .execute(sqlx::AssertSqlSafe(format!("KILL CONNECTION {id}")))
                .await
                .unwrap();
            let e = exec(&mut victim, "SELECT 1").await.unwrap_err();
            let e = map_err(e);
            assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
            assert!(e.is_retryable());
            let _ = killer.close().await;
        })
        .await;
    }
}

/// Message rows under either way the server numbers auto-increment ids.
mod message_ids {
    use std::sync::Arc;

    use bubble_core::AdapterConfig;
    use bubble_core::testkit;

    use crate::append::MessageIds;
    use crate::testing::TestDb;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mariadb_numbers_one_insert_consecutively() {
        let db = TestDb::create().await;
        let store = db.store().await;
        let ids = store.inner.message_ids;
        store.close().await;
        db.drop_db().await;
        // The test server runs MariaDB's default innodb_autoinc_lock_mode 1.
        assert_eq!(ids, MessageIds::Consecutive { step: 1 });
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_inbox_conforms_with_one_message_row_per_statement() {
        let db = TestDb::create().await;
        for batch_max in [1, 32] {
            let store = db
                .config()
                .with_batch_max(batch_max)
                .connect()
                .await
                .unwrap()
                .with_message_ids(MessageIds::OnePerStatement);
            testkit::inbox(Arc::new(store.clone())).await;
            store.close().await;
        }
        db.drop_db().await;
    }
}

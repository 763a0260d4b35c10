//! Connecting, migrating, what a caller sees when the server is not there,
//! and moving to the next of several servers when one goes.

mod common;

use bubble_core::AdapterConfig;
use bubble_core::ports::{AppendOutcome, InboxStore};
use bubble_core::testkit::direct_delivery;
use bubble_core::testkit::proxy::Proxy;
use bubble_core::{AppId, ErrorKind, UserId};
use bubble_store_mysql::MysqlConfig;
use common::on_fresh_db;

/// How many migrations the crate ships (`migrations/*.sql`).
fn migration_files() -> i64 {
    std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("sql".as_ref()))
        .count() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_when_nodes_start_together() {
    on_fresh_db(|db| async move {
        let starting: Vec<_> = (0..4)
            .map(|_| {
                let builder = db.config();
                tokio::spawn(async move { builder.connect().await })
            })
            .collect();
        let mut nodes = Vec::new();
        for node in starting {
            nodes.push(node.await.unwrap().expect("every node starts"));
        }
        let mut conn = db.connection().await;
        let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            applied,
            migration_files(),
            "each migration is recorded once"
        );
        nodes[0]
            .migrate()
            .await
            .expect("migrating again is a no-op");
        assert_eq!(
            nodes[3]
                .last_version(&AppId::new("a"), &UserId::new("u"))
                .await
                .unwrap(),
            0
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_on_an_unmigrated_database_says_to_run_the_migrations() {
    on_fresh_db(|db| async move {
        let store = db
            .config()
            .with_run_migrations(false)
            .connect()
            .await
            .unwrap();
        let e = store
            .last_version(&AppId::new("a"), &UserId::new("u"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert!(e.message().contains("migrations"), "{e}");
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_and_the_error_says_what_to_do() {
    let e = MysqlConfig::new("mysql://root:pw@127.0.0.1:1/test")
        .with_acquire_timeout_ms(2_000)
        .connect()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.message().contains("scripts/services/mariadb.sh"), "{e}");
    assert!(
        !e.to_string().contains(":pw@"),
        "the password stays hidden: {e}"
    );
}

#[tokio::test]
async fn a_bad_config_is_refused_before_connecting() {
    let config = MysqlConfig::new("mysql://root@127.0.0.1:3306/test")
        .with_max_connections(4)
        .with_batch_writers(4);
    assert_eq!(config.validate().unwrap_err().field, "batch_writers");
    let e = config.connect().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains("batch_writers"), "{e}");
}

/// `url` (one server) reached through `proxy` instead.
fn through(proxy: &Proxy, url: &str) -> String {
    let rest = url.split_once('@').map_or(url, |(_, rest)| rest);
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    let user = url
        .strip_prefix("mysql://")
        .and_then(|u| u.split_once('@'))
        .map_or(String::new(), |(user, _)| format!("{user}@"));
    format!("mysql://{user}{}{path}", proxy.addr())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_several_urls_the_store_moves_to_the_next_when_its_node_goes() {
    on_fresh_db(|db| async move {
        // Two "nodes" that are one server behind two proxies: what matters
        // here is the store's side, not replication (tests/galera.rs).
        let host = db
            .url()
            .split_once('@')
            .unwrap()
            .1
            .split('/')
            .next()
            .unwrap();
        let (first, second) = (Proxy::start(host).await, Proxy::start(host).await);
        let store = MysqlConfig::default()
            .with_urls([through(&first, db.url()), through(&second, db.url())])
            .connect()
            .await
            .unwrap();
        assert_eq!(store.current_node(), 0, "the first url that answers");
        let app = AppId::new("failover");
        let d = direct_delivery("a", "b", "before", "m1");
        store.append(&app, &d).await.unwrap();

        first.refuse();
        // The append that meets the dead node runs again on the next one:
        // the caller sees no error.
        let after = direct_delivery("a", "b", "after", "m2");
        assert!(matches!(
            store.append(&app, &after).await.unwrap(),
            AppendOutcome::Appended(_)
        ));
        assert_eq!(store.current_node(), 1);
        let page = store.pull(&app, &UserId::new("b"), 0, 10).await.unwrap();
        assert_eq!(page.entries.len(), 2);
        // A retry of the first message through the new node is the same message.
        assert!(matches!(
            store.append(&app, &d).await.unwrap(),
            AppendOutcome::Duplicate(_)
        ));
    })
    .await;
}

//! Conformance checks for [`AppStore`].

use std::sync::Arc;

use super::checks;
use crate::apps::{AppConfig, LoginPolicy};
use crate::ports::AppStore;
use crate::types::AppId;

/// Runs every app-store check against `store`.
pub async fn apps(store: Arc<dyn AppStore>) {
    super::run_checks("AppStore", store, CHECKS).await;
}

const CHECKS: &[super::Check<dyn AppStore>] = checks![dyn AppStore;
    an_app_reads_back_with_its_settings,
    putting_an_app_again_replaces_it,
    list_includes_every_app,
];

fn config(app: &AppId) -> AppConfig {
    let mut c = AppConfig::new(app.clone(), "0123456789abcdef-0123456789abcdef");
    c.name = "Acme Chat".into();
    c.settings.login_policy = LoginPolicy::OnePerPlatform;
    c.settings.super_group_threshold = 42;
    c.settings.recall_window_ms = 30_000;
    c
}

async fn an_app_reads_back_with_its_settings(s: Arc<dyn AppStore>, app: AppId) {
    let c = config(&app);
    s.put_app(&c).await.unwrap();
    assert_eq!(s.get_app(&app).await.unwrap(), Some(c));
    assert!(s.get_app(&super::fresh_app()).await.unwrap().is_none());
}

async fn putting_an_app_again_replaces_it(s: Arc<dyn AppStore>, app: AppId) {
    let mut c = config(&app);
    s.put_app(&c).await.unwrap();
    c.secret = "another-secret-of-at-least-32-bytes".into();
    c.settings.read_receipts = false;
    s.put_app(&c).await.unwrap();
    assert_eq!(s.get_app(&app).await.unwrap(), Some(c));
}

async fn list_includes_every_app(s: Arc<dyn AppStore>, app: AppId) {
    let second = AppId::new(format!("{app}-b"));
    s.put_app(&config(&app)).await.unwrap();
    s.put_app(&config(&second)).await.unwrap();
    let ids: Vec<AppId> = s
        .list_apps()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    let pos_a = ids
        .iter()
        .position(|i| *i == app)
        .expect("first app listed");
    let pos_b = ids
        .iter()
        .position(|i| *i == second)
        .expect("second app listed");
    assert!(pos_a < pos_b, "ordered by id");
}

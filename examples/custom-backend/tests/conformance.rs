//! The product's own store passes bubble's conformance suite, and its
//! authenticator behaves like one.

use std::sync::Arc;

use bubble_core::memory::MemoryInbox;
use bubble_core::ports::{Authenticator, InboxStore};
use bubble_core::*;
use custom_backend::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_audited_inbox_passes_the_conformance_suite() {
    let audit = Arc::new(MemoryAudit::default());
    let store = AuditedInbox::new(Arc::new(MemoryInbox::new()), audit.clone());
    bubble_core::testkit::inbox(Arc::new(store)).await;
    assert!(
        !audit.records.lock().is_empty(),
        "the suite's messages were audited"
    );
}

#[tokio::test]
async fn a_retried_message_is_audited_once() {
    let audit = Arc::new(MemoryAudit::default());
    let store = AuditedInbox::new(Arc::new(MemoryInbox::new()), audit.clone());
    let app = AppId::new("bank");
    let d = bubble_core::testkit::direct_delivery("a", "b", "hi", "same");
    store.append(&app, &d).await.unwrap();
    store.append(&app, &d).await.unwrap();
    assert_eq!(
        audit.records.lock().len(),
        2,
        "two owners' copies, once each"
    );
}

#[tokio::test]
async fn api_keys_authenticate_only_within_their_app() {
    let auth = ApiKeyAuthenticator::default();
    auth.add_key(&AppId::new("bank"), "k1", &UserId::new("teller"));
    let device = DeviceId::new("d");
    let ok = auth
        .authenticate(&AppId::new("bank"), "k1", &device)
        .await
        .unwrap();
    assert_eq!(ok.user.as_str(), "teller");
    let other_app = auth
        .authenticate(&AppId::new("shop"), "k1", &device)
        .await
        .unwrap_err();
    assert_eq!(other_app.kind(), ErrorKind::Unauthenticated);
}

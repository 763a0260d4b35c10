//! The `[[push]]` entries: how they read from TOML, how each key is
//! checked, what building a notifier reads from disk, and that no secret
//! reaches `Debug`.

mod common;

use bubble_core::ErrorKind;
use bubble_core::notify::PushPlatform;
use bubble_notify::{ApnsConfig, FcmConfig, NotifierConfig, WebhookConfig};
use serde::Deserialize;

/// A `[[push]]` entry as the server reads it: the app, then the provider.
#[derive(Debug, Deserialize)]
struct PushEntry {
    app: String,
    #[serde(flatten)]
    notifier: NotifierConfig,
}

#[derive(Debug, Deserialize)]
struct ServerConfig {
    push: Vec<PushEntry>,
}

fn entry(toml_text: &str) -> Result<NotifierConfig, String> {
    toml::from_str(toml_text).map_err(|e| e.to_string())
}

#[test]
fn push_entries_read_by_platform_with_defaults_for_what_they_leave_out() {
    let config: ServerConfig = toml::from_str(
        r#"
        [[push]]
        app = "demo"
        platform = "apns"
        team_id = "ABCDE12345"
        key_id = "KEY1234567"
        key_file = "/etc/bubble/AuthKey_KEY1234567.p8"
        topic = "com.example.chat"
        endpoint = "https://api.sandbox.push.apple.com"

        [[push]]
        app = "demo"
        platform = "fcm"
        service_account_file = "/etc/bubble/firebase.json"

        [[push]]
        app = "other"
        platform = "webhook"
        url = "https://relay.example/push"
        timeout_ms = 2000
        "#,
    )
    .unwrap();

    let apps: Vec<&str> = config.push.iter().map(|e| e.app.as_str()).collect();
    assert_eq!(apps, ["demo", "demo", "other"]);
    let platforms: Vec<PushPlatform> = config.push.iter().map(|e| e.notifier.platform()).collect();
    assert_eq!(
        platforms,
        [PushPlatform::Apns, PushPlatform::Fcm, PushPlatform::Webhook]
    );
    assert_eq!(
        config.push[0].notifier,
        NotifierConfig::Apns(
            ApnsConfig::new(
                "ABCDE12345",
                "KEY1234567",
                "/etc/bubble/AuthKey_KEY1234567.p8",
                "com.example.chat"
            )
            .with_endpoint(bubble_notify::apns::SANDBOX_ENDPOINT)
        )
    );
    assert_eq!(
        config.push[1].notifier,
        NotifierConfig::Fcm(FcmConfig::new("/etc/bubble/firebase.json"))
    );
    assert_eq!(
        config.push[2].notifier,
        NotifierConfig::Webhook(
            WebhookConfig::new("https://relay.example/push").with_timeout_ms(2000)
        )
    );
    for e in &config.push {
        e.notifier.validate().unwrap();
    }
}

#[test]
fn the_defaults_are_apples_and_googles_production_endpoints_and_5_s() {
    let apns = ApnsConfig::default();
    assert_eq!(apns.endpoint, "https://api.push.apple.com");
    assert_eq!(apns.timeout_ms, 5_000);
    assert_eq!(apns.ca_file, None);
    let fcm = FcmConfig::default();
    assert_eq!(fcm.endpoint, "https://fcm.googleapis.com");
    assert_eq!(fcm.timeout_ms, 5_000);
    assert_eq!(WebhookConfig::default().timeout_ms, 5_000);
}

#[test]
fn an_unknown_key_is_refused_and_named() {
    let e = entry(
        r#"
        platform = "apns"
        team_id = "ABCDE12345"
        teamid = "ABCDE12345"
        "#,
    )
    .unwrap_err();
    assert!(e.contains("teamid"), "{e}");

    let e = toml::from_str::<ServerConfig>(
        r#"
        [[push]]
        app = "demo"
        platform = "webhook"
        url = "https://relay.example/push"
        timeout = 5
        "#,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("timeout"), "{e}");
}

#[test]
fn an_unknown_platform_is_refused() {
    let e = entry(r#"platform = "pigeon""#).unwrap_err();
    assert!(e.contains("pigeon"), "{e}");
    let e = entry(r#"url = "https://relay.example""#).unwrap_err();
    assert!(e.contains("platform"), "{e}");
}

/// `config` is refused, naming `field` (as an `InvalidInput` error too).
fn refused(config: NotifierConfig, field: &str) {
    let e = config.validate().expect_err("the entry is refused");
    assert_eq!(e.field, field, "{e}");
    let e = bubble_core::Error::from(e);
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains(&format!("`{field}`")), "{e}");
}

fn apns() -> ApnsConfig {
    ApnsConfig::new("ABCDE12345", "KEY1234567", "/k.p8", "com.example.chat")
}

#[test]
fn each_bad_key_is_named() {
    refused(NotifierConfig::Webhook(WebhookConfig::default()), "url");
    refused(
        NotifierConfig::Webhook(WebhookConfig::new("relay.example/push")),
        "url",
    );
    refused(
        NotifierConfig::Webhook(WebhookConfig::new("ftp://relay.example/push")),
        "url",
    );
    refused(
        NotifierConfig::Webhook(WebhookConfig::new("https://relay.example").with_timeout_ms(0)),
        "timeout_ms",
    );

    refused(
        NotifierConfig::Fcm(FcmConfig::default()),
        "service_account_file",
    );
    refused(
        NotifierConfig::Fcm(FcmConfig::new("/f.json").with_endpoint("fcm.googleapis.com")),
        "endpoint",
    );
    refused(
        NotifierConfig::Fcm(FcmConfig::new("/f.json").with_timeout_ms(0)),
        "timeout_ms",
    );

    let mut c = apns();
    c.team_id = "ABCDE".into();
    refused(NotifierConfig::Apns(c), "team_id");
    let mut c = apns();
    c.key_id = "KEY-123456".into();
    refused(NotifierConfig::Apns(c), "key_id");
    let mut c = apns();
    c.key_file = "".into();
    refused(NotifierConfig::Apns(c), "key_file");
    let mut c = apns();
    c.topic = "".into();
    refused(NotifierConfig::Apns(c), "topic");
    refused(
        NotifierConfig::Apns(apns().with_endpoint("api.push.apple.com")),
        "endpoint",
    );
    refused(NotifierConfig::Apns(apns().with_ca_file("")), "ca_file");
    refused(
        NotifierConfig::Apns(apns().with_timeout_ms(0)),
        "timeout_ms",
    );
}

#[test]
fn a_webhook_urls_credentials_and_query_stay_out_of_debug() {
    let config = WebhookConfig::new("https://bubble:hunter2@relay.example/push?key=s3cret");
    let shown = format!("{config:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("relay.example/push"), "{shown}");

    let notifier = bubble_notify::WebhookNotifier::new(&config).unwrap();
    let shown = format!("{notifier:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("s3cret"),
        "{shown}"
    );
}

/// The error of building `config`, which must be refused.
async fn build_error(config: NotifierConfig) -> bubble_core::Error {
    match config.build().await {
        Ok(_) => panic!("the entry builds"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn a_missing_key_file_is_named_with_its_setting() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("AuthKey_KEY1234567.p8");
    let mut c = apns();
    c.key_file = missing.clone();

    let e = build_error(NotifierConfig::Apns(c)).await;

    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains("`key_file`"), "{e}");
    assert!(e.message().contains(&missing.display().to_string()), "{e}");

    let missing = dir.path().join("firebase.json");
    let e = build_error(NotifierConfig::Fcm(FcmConfig::new(&missing))).await;
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains("`service_account_file`"), "{e}");
    assert!(e.message().contains(&missing.display().to_string()), "{e}");
}

#[tokio::test]
async fn a_key_file_holding_the_wrong_kind_of_key_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let rsa_pem = common::rsa_pem(common::rsa_key());
    let rsa_file = common::write(&dir, "rsa.p8", &rsa_pem);
    let mut c = apns();
    c.key_file = rsa_file.clone();

    let e = build_error(NotifierConfig::Apns(c)).await;
    assert!(e.message().contains("`key_file`"), "{e}");
    assert!(e.message().contains("not a P-256 key"), "{e}");

    let p256_pem = common::p256_pem(&common::p256_key());
    let account = serde_json::json!({
        "type": "service_account",
        "project_id": "demo-project",
        "private_key": p256_pem,
        "client_email": "push@demo-project.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    });
    let file = common::write(&dir, "firebase.json", &account.to_string());
    let e = build_error(NotifierConfig::Fcm(FcmConfig::new(&file))).await;
    assert!(e.message().contains("`service_account_file`"), "{e}");
    assert!(e.message().contains("not an RSA key"), "{e}");
}

#[tokio::test]
async fn a_service_account_file_missing_a_field_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let account = serde_json::json!({
        "type": "service_account",
        "project_id": "demo-project",
        "client_email": "push@demo-project.iam.gserviceaccount.com",
    });
    let file = common::write(&dir, "firebase.json", &account.to_string());

    let e = build_error(NotifierConfig::Fcm(FcmConfig::new(&file))).await;

    assert!(e.message().contains("`service_account_file`"), "{e}");
    assert!(e.message().contains("\"private_key\""), "{e}");

    let user = serde_json::json!({"type": "authorized_user", "client_id": "x"});
    let file = common::write(&dir, "adc.json", &user.to_string());
    let e = build_error(NotifierConfig::Fcm(FcmConfig::new(&file))).await;
    assert!(e.message().contains("\"authorized_user\""), "{e}");
}

#[tokio::test]
async fn built_notifiers_serve_their_platform_and_keep_keys_out_of_debug() {
    let dir = tempfile::tempdir().unwrap();
    let p256_pem = common::p256_pem(&common::p256_key());
    let mut c = apns();
    c.key_file = common::write(&dir, "AuthKey_KEY1234567.p8", &p256_pem);
    let rsa_pem = common::rsa_pem(common::rsa_key());
    let account = serde_json::json!({
        "type": "service_account",
        "project_id": "demo-project",
        "private_key_id": "abc",
        "private_key": rsa_pem,
        "client_email": "push@demo-project.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    });
    let file = common::write(&dir, "firebase.json", &account.to_string());

    let apns = bubble_notify::ApnsNotifier::open(&c).await.unwrap();
    let fcm = bubble_notify::FcmNotifier::open(&FcmConfig::new(&file))
        .await
        .unwrap();
    for (shown, pem) in [
        (format!("{apns:?}"), &p256_pem),
        (format!("{fcm:?}"), &rsa_pem),
    ] {
        let base64_line = pem.lines().nth(1).unwrap();
        assert!(!shown.contains(base64_line), "{shown}");
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    }

    let built = NotifierConfig::Apns(c).build().await.unwrap();
    assert_eq!(built.platform(), PushPlatform::Apns);
    let built = NotifierConfig::Fcm(FcmConfig::new(&file))
        .build()
        .await
        .unwrap();
    assert_eq!(built.platform(), PushPlatform::Fcm);
    let built = NotifierConfig::Webhook(WebhookConfig::new("https://relay.example"))
        .build()
        .await
        .unwrap();
    assert_eq!(built.platform(), PushPlatform::Webhook);
}

//! Media uploads on the default `fs` store, end to end: a ticket over the
//! gate, the file PUT to the server's HTTP listener, a MEDIA message, and
//! the receiver's download checked against the sender's SHA-256.

use std::time::Duration;

use bubble_client::{Client, ClientConfig, Endpoint, Event, UploadTicket};
use bubble_core::{Content, ContentType, Conversation, UserId};
use bubble_proto::pb;
use prost::Message;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::support::*;

/// 300 KB that are not all alike.
fn photo() -> Vec<u8> {
    (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect()
}

/// The ticket's request with `body`, and `tweak` applied before it goes.
async fn put_with(
    ticket: &UploadTicket,
    body: Vec<u8>,
    tweak: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> (u16, String) {
    let mut request = reqwest::Client::new().put(&ticket.upload_url);
    for (name, value) in &ticket.headers {
        request = request.header(name, value);
    }
    let answer = tweak(request.body(body))
        .send()
        .await
        .expect("HTTP reachable");
    let status = answer.status().as_u16();
    (status, answer.text().await.unwrap_or_default())
}

async fn put(ticket: &UploadTicket, body: Vec<u8>) -> (u16, String) {
    put_with(ticket, body, |r| r).await
}

/// A client of app `app` (created by the admin API with `settings`).
async fn client_of_app(server: &Server, app: &str, settings: serde_json::Value) -> Client {
    server
        .admin(
            "POST",
            "/v1/admin/apps",
            Some(json!({"id": app, "settings": settings})),
        )
        .await;
    let token = server
        .admin(
            "POST",
            &format!("/v1/admin/apps/{app}/tokens"),
            Some(json!({"user": "alice"})),
        )
        .await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let config = ClientConfig::new(
        Endpoint::Tcp(server.tcp.clone()),
        server.key_pem.clone(),
        server.fingerprint.clone(),
        app,
        "alice",
        "phone",
        token,
    );
    let (client, mut events) = Client::connect(config).await.expect("client connects");
    match next_event(&mut events).await {
        Event::Connected { .. } => {}
        other => panic!("expected Connected, got {other:?}"),
    }
    // Keep the events flowing without a reader.
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_file_reaches_the_receiver_who_downloads_it_and_checks_its_sha256() {
    let (server, _db) = start_server().await;
    let (alice, _alice_events) = server.client("alice", "phone", false).await;
    let (_bob, mut bob_events) = server.client("bob", "laptop", true).await;
    let file = photo();

    let media = alice
        .upload(file.clone(), "image/png", "beach.png")
        .await
        .expect("upload");
    assert!(
        media
            .url
            .starts_with(&format!("{}/v1/media/demo/", server.http)),
        "{}",
        media.url
    );
    assert!(media.url.ends_with(".png"), "{}", media.url);
    assert_eq!(media.size, 300_000);
    assert_eq!(media.mime, "image/png");
    assert_eq!(media.name, "beach.png");
    assert_eq!(media.sha256, hex::encode(Sha256::digest(&file)));
    alice
        .send(
            Conversation::direct(&UserId::new("bob")),
            Content::media(&media),
        )
        .await
        .expect("send the media message");

    let got = entries(&mut bob_events, 1).await;
    assert_eq!(got[0].content.kind, ContentType::Media);
    let received = pb::MediaRef::decode(got[0].content.body.clone()).expect("a MediaRef");
    assert_eq!(received, media);
    let download = reqwest::get(&received.url).await.expect("download");
    assert_eq!(download.status().as_u16(), 200);
    let headers = download.headers().clone();
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["content-length"], "300000");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let bytes = download.bytes().await.expect("the file's bytes");
    assert_eq!(hex::encode(Sha256::digest(&bytes)), received.sha256);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_with_a_forged_url_a_wrong_length_or_a_wrong_type_is_refused() {
    let (server, _db) = start_server().await;
    let (alice, _events) = server.client("alice", "phone", false).await;
    let file = vec![7u8; 1000];
    let ticket = alice
        .media_upload("image/jpeg", 1000, "cat.jpg")
        .await
        .expect("a ticket");
    assert_eq!(ticket.method, "PUT");
    assert_eq!(
        ticket.headers,
        vec![("content-type".to_owned(), "image/jpeg".to_owned())]
    );
    assert_eq!(
        reqwest::get(&ticket.media_url)
            .await
            .unwrap()
            .status()
            .as_u16(),
        404,
        "nothing is served before the upload"
    );

    // A URL changed to grant more: the signature no longer matches.
    let mut bigger = ticket.clone();
    bigger.upload_url = ticket.upload_url.replace("size=1000", "size=2000");
    let (status, body) = put(&bigger, vec![7u8; 2000]).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("signature"), "{body}");
    let mut forged = ticket.clone();
    let at = forged.upload_url.find("sig=").unwrap() + 4;
    let flipped = if &forged.upload_url[at..at + 1] == "0" {
        "1"
    } else {
        "0"
    };
    forged.upload_url.replace_range(at..at + 1, flipped);
    let (status, body) = put(&forged, file.clone()).await;
    assert_eq!(status, 403, "{body}");

    // The length and the type the ticket was asked for, and no other.
    let (status, body) = put(&ticket, vec![7u8; 999]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Content-Length is 999"), "{body}");
    let mut html = ticket.clone();
    html.headers = vec![("content-type".into(), "text/html".into())];
    let (status, body) = put(&html, file.clone()).await;
    assert_eq!(status, 415, "{body}");
    assert!(body.contains("image/jpeg"), "{body}");
    // A second Content-Type beside the right one is no way around it.
    let (status, body) = put_with(&ticket, file.clone(), |r| {
        r.header("content-type", "text/html")
    })
    .await;
    assert_eq!(status, 415, "{body}");

    // The real upload lands once; the URL cannot replace it afterwards.
    let (status, body) = put(&ticket, file.clone()).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = put(&ticket, vec![8u8; 1000]).await;
    assert_eq!(status, 409, "{body}");
    let served = reqwest::get(&ticket.media_url).await.unwrap();
    assert_eq!(served.bytes().await.unwrap().to_vec(), file);

    // Only keys of the server's own shape are served: no climbing out.
    let climb = reqwest::get(format!("{}/v1/media/%2e%2e/admin_secret", server.http))
        .await
        .unwrap();
    assert_eq!(climb.status().as_u16(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_upload_url_is_refused() {
    // Any backends do: this is about the HTTP listener.
    let mut env = memory_backends();
    env.push(("BUBBLE_MEDIA_UPLOAD_EXPIRES_SECS".into(), "1".into()));
    let server = Server::start(env);
    let (alice, _events) = server.client("alice", "phone", false).await;
    let ticket = alice
        .media_upload("audio/ogg", 10, "note.ogg")
        .await
        .expect("a ticket");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, body) = put(&ticket, vec![1u8; 10]).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("expired"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_file_or_a_type_the_app_does_not_take_is_refused_at_ticket_time() {
    let (server, _db) = start_server().await;
    let (alice, _events) = server.client("alice", "phone", false).await;

    // The defaults: 100 MiB; images, video, audio and PDF.
    let err = alice
        .media_upload("video/mp4", 100 * 1024 * 1024 + 1, "film.mp4")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(pb::ErrorCode::TooLarge), "{err}");
    assert!(err.to_string().contains("104857600"), "{err}");
    let err = alice
        .media_upload("text/html", 100, "page.html")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(pb::ErrorCode::InvalidArgument), "{err}");
    assert!(
        err.to_string()
            .contains("image/, video/, audio/, application/pdf"),
        "{err}"
    );
    let err = alice.media_upload("image/png", 0, "").await.unwrap_err();
    assert_eq!(err.code(), Some(pb::ErrorCode::InvalidArgument), "{err}");
    alice
        .media_upload("application/pdf", 100 * 1024 * 1024, "book.pdf")
        .await
        .expect("the largest allowed file gets a ticket");

    // Each app has its own limits.
    let shop = client_of_app(
        &server,
        "shop",
        json!({"max_media_bytes": 1000, "media_types": ["image/png"]}),
    )
    .await;
    let err = shop.media_upload("image/png", 1001, "").await.unwrap_err();
    assert_eq!(err.code(), Some(pb::ErrorCode::TooLarge), "{err}");
    let err = shop.media_upload("image/jpeg", 10, "").await.unwrap_err();
    assert_eq!(err.code(), Some(pb::ErrorCode::InvalidArgument), "{err}");
    assert!(err.to_string().contains("image/png"), "{err}");
    let ticket = shop
        .media_upload("image/png", 1000, "")
        .await
        .expect("ticket");
    assert!(
        ticket.media_url.contains("/v1/media/shop/"),
        "{}",
        ticket.media_url
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_media_off_refuses_tickets_with_permission_denied() {
    let mut env = memory_backends();
    env.push(("BUBBLE_MEDIA_KIND".into(), "off".into()));
    let server = Server::start(env);
    let (alice, _events) = server.client("alice", "phone", false).await;
    let err = alice.media_upload("image/png", 10, "").await.unwrap_err();
    assert_eq!(err.code(), Some(pb::ErrorCode::PermissionDenied), "{err}");
    assert!(err.to_string().contains("media.kind"), "{err}");
}

//! The S3 store against a real S3 server: s3s-fs over a temp directory,
//! served in process on a loopback port. Each test has its own server and
//! bucket, so nothing is shared and nothing needs installing.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;

use bubble_media::{MediaKind, MediaStore, S3Config, new_key};

const ACCESS_KEY: &str = "bubble-test-access-key";
const SECRET_KEY: &str = "bubble-test-secret-key-of-some-length";
const BUCKET: &str = "bubble-media";

/// An S3 server over `root` (which holds the bucket's directory), on a
/// loopback port; its endpoint URL. It stops with the test's runtime.
async fn s3_server(root: &Path) -> String {
    std::fs::create_dir_all(root.join(BUCKET)).unwrap();
    let fs = s3s_fs::FileSystem::new(root).unwrap();
    let mut builder = s3s::service::S3ServiceBuilder::new(fs);
    builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
    let service = builder.build();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let service = service.clone();
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(socket);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

fn config(endpoint: &str) -> S3Config {
    let mut c = S3Config::default();
    c.bucket = BUCKET.into();
    c.endpoint = endpoint.into();
    c.access_key_id = ACCESS_KEY.into();
    c.secret_access_key = SECRET_KEY.into();
    c.root = "/uploads/".into();
    c
}

/// 300 KB that are not all alike.
fn file() -> Bytes {
    (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// Sends the ticket's request the way a client does: its method, its
/// headers, the bytes.
async fn put(ticket: &bubble_media::UploadTicket, body: Bytes) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(ticket.method.as_bytes()).unwrap();
    let mut request = reqwest::Client::new().request(method, &ticket.url);
    for (name, value) in &ticket.headers {
        request = request.header(name, value);
    }
    request.body(body).send().await.unwrap()
}

#[tokio::test]
async fn a_presigned_put_uploads_stat_sees_its_size_and_the_presigned_get_returns_the_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = s3_server(dir.path()).await;
    let store = MediaStore::s3(&config(&endpoint)).unwrap();
    assert_eq!(store.kind(), MediaKind::S3);
    let body = file();
    let key = new_key("shop", "image/png", "cat.png", bubble_core::now_millis()).unwrap();
    assert!(!store.exists(&key).await.unwrap());
    assert_eq!(store.stat(&key).await.unwrap(), None);

    let ticket = store
        .upload_ticket(
            "shop",
            &key,
            "image/png",
            body.len() as u64,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(ticket.method, "PUT");
    assert!(ticket.url.starts_with(&endpoint), "{}", ticket.url);
    assert!(ticket.url.contains("X-Amz-Signature="), "{}", ticket.url);
    assert!(
        ticket
            .headers
            .contains(&("content-type".to_owned(), "image/png".to_owned())),
        "{:?}",
        ticket.headers
    );
    let answer = put(&ticket, body.clone()).await;
    assert!(answer.status().is_success(), "{}", answer.status());

    assert!(store.exists(&key).await.unwrap());
    assert_eq!(
        store.stat(&key).await.unwrap().map(|s| s.size),
        Some(body.len() as u64)
    );
    // The object sits under the configured root, in the bucket.
    assert!(dir.path().join(BUCKET).join("uploads").join(&key).is_file());

    assert!(
        ticket.media_url.contains("X-Amz-Signature="),
        "{}",
        ticket.media_url
    );
    let download = reqwest::get(&ticket.media_url).await.unwrap();
    assert!(download.status().is_success(), "{}", download.status());
    assert_eq!(download.bytes().await.unwrap(), body);
}

#[tokio::test]
async fn with_a_public_base_url_the_media_url_is_that_url_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = s3_server(dir.path()).await;
    let mut c = config(&endpoint);
    c.public_base_url = "https://cdn.example.com/media/".into();
    let store = MediaStore::s3(&c).unwrap();
    let key = new_key("shop", "video/mp4", "", 0).unwrap();
    let ticket = store
        .upload_ticket("shop", &key, "video/mp4", 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        ticket.media_url,
        format!("https://cdn.example.com/media/{key}")
    );
}

#[tokio::test]
async fn a_presigned_put_with_a_tampered_signature_is_refused_by_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = s3_server(dir.path()).await;
    let store = MediaStore::s3(&config(&endpoint)).unwrap();
    let key = new_key("shop", "image/png", "", 0).unwrap();
    let mut ticket = store
        .upload_ticket("shop", &key, "image/png", 3, Duration::from_secs(60))
        .await
        .unwrap();
    let at = ticket.url.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let flipped = if &ticket.url[at..at + 1] == "0" {
        "1"
    } else {
        "0"
    };
    ticket.url.replace_range(at..at + 1, flipped);
    let answer = put(&ticket, Bytes::from_static(b"abc")).await;
    assert_eq!(answer.status(), reqwest::StatusCode::FORBIDDEN);
    assert!(!store.exists(&key).await.unwrap());
}

#[tokio::test]
async fn a_store_that_is_down_is_unavailable_and_may_be_retried() {
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let store = MediaStore::s3(&config(&endpoint)).unwrap();
    let err = store
        .stat("shop/2024/01/01/0123456789abcdef0123456789abcdef.png")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), bubble_core::ErrorKind::Unavailable, "{err}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_presigned_put_with_another_content_type_is_refused_by_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = s3_server(dir.path()).await;
    let store = MediaStore::s3(&config(&endpoint)).unwrap();
    let key = new_key("shop", "image/png", "", 0).unwrap();
    let mut ticket = store
        .upload_ticket("shop", &key, "image/png", 3, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        ticket.url.contains("X-Amz-SignedHeaders=content-type"),
        "{}",
        ticket.url
    );
    ticket.headers = vec![("content-type".into(), "text/html".into())];
    let answer = put(&ticket, Bytes::from_static(b"abc")).await;
    assert_eq!(answer.status(), reqwest::StatusCode::FORBIDDEN);
    assert!(!store.exists(&key).await.unwrap());
}

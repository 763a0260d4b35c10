//! The fs store: tickets whose URLs point at the server's own HTTP listener,
//! and the streaming writes and reads that listener does.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt, stream};

use bubble_core::ErrorKind;
use bubble_media::{FsConfig, MediaConfig, MediaKind, MediaStore, UploadGrant, new_key};

fn store(dir: &std::path::Path) -> MediaStore {
    let mut c = FsConfig::default();
    c.path = dir.join("media");
    c.public_url = "https://chat.example.com/".into();
    MediaStore::fs(&c, &[9u8; 32]).unwrap()
}

/// A body sent in chunks of `chunk` bytes.
fn chunks(
    data: &[u8],
    chunk: usize,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + use<> {
    let parts: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    stream::iter(parts)
}

/// The query of an upload URL as a grant and its signature.
fn grant_of(url: &str, key: &str) -> (UploadGrant, String) {
    let query = url.split_once('?').unwrap().1;
    let get = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap()
            .replace("%2F", "/")
    };
    (
        UploadGrant {
            app: get("app"),
            key: key.to_owned(),
            mime: get("mime"),
            size: get("size").parse().unwrap(),
            expires_at: get("expires").parse().unwrap(),
        },
        get("sig"),
    )
}

#[tokio::test]
async fn a_ticket_points_at_the_servers_listener_and_its_url_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let key = new_key("shop", "image/jpeg", "", bubble_core::now_millis()).unwrap();
    let ticket = store
        .upload_ticket("shop", &key, "image/jpeg", 1234, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(ticket.method, "PUT");
    assert_eq!(
        ticket.media_url,
        format!("https://chat.example.com/v1/media/{key}")
    );
    assert!(ticket.url.starts_with(&format!(
        "{}?app=shop&mime=image%2Fjpeg&size=1234&expires=",
        ticket.media_url
    )));
    assert_eq!(
        ticket.headers,
        vec![("content-type".to_owned(), "image/jpeg".to_owned())]
    );
    let (grant, sig) = grant_of(&ticket.url, &key);
    assert_eq!(grant.expires_at, ticket.expires_at);
    store.verify_upload(&grant, &sig).unwrap();
    let forged = UploadGrant {
        size: 1235,
        ..grant
    };
    assert_eq!(
        store.verify_upload(&forged, &sig).unwrap_err().kind(),
        ErrorKind::PermissionDenied
    );
}

#[tokio::test]
async fn an_upload_of_exactly_the_declared_size_is_stored_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let key = new_key("shop", "application/pdf", "", 0).unwrap();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    store
        .write_stream(&key, data.len() as u64, chunks(&data, 8192))
        .await
        .unwrap();
    assert!(store.exists(&key).await.unwrap());
    assert_eq!(
        store.stat(&key).await.unwrap().map(|s| s.size),
        Some(data.len() as u64)
    );
    let (size, stream) = store.read_stream(&key).await.unwrap();
    assert_eq!(size, data.len() as u64);
    let read: Vec<u8> = stream.map(|chunk| chunk.unwrap().to_vec()).concat().await;
    assert_eq!(read, data);
}

#[tokio::test]
async fn a_body_longer_or_shorter_than_declared_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let data = vec![1u8; 10_000];
    for declared in [9_999u64, 10_001] {
        let key = new_key("shop", "image/png", "", 0).unwrap();
        let err = store
            .write_stream(&key, declared, chunks(&data, 4096))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(!store.exists(&key).await.unwrap(), "{declared}");
    }
    let uploads = dir.path().join("media").join(".uploads");
    let left = std::fs::read_dir(&uploads).map_or(0, |d| d.count());
    assert_eq!(
        left,
        0,
        "no temporary file is left in {}",
        uploads.display()
    );
}

#[tokio::test]
async fn a_body_that_breaks_off_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let key = new_key("shop", "image/png", "", 0).unwrap();
    let body = stream::iter(vec![
        Ok(Bytes::from_static(b"first part")),
        Err(std::io::Error::other("connection reset")),
    ]);
    let err = store.write_stream(&key, 100, body).await.unwrap_err();
    assert!(err.message().contains("connection reset"), "{err}");
    assert!(!store.exists(&key).await.unwrap());
}

#[tokio::test]
async fn an_upload_url_cannot_replace_a_file_already_uploaded() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let key = new_key("shop", "image/png", "", 0).unwrap();
    store
        .write_stream(&key, 3, chunks(b"abc", 2))
        .await
        .unwrap();
    let err = store
        .write_stream(&key, 3, chunks(b"xyz", 2))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    let (_, stream) = store.read_stream(&key).await.unwrap();
    let read: Vec<u8> = stream.map(|c| c.unwrap().to_vec()).concat().await;
    assert_eq!(read, b"abc");
}

#[tokio::test]
async fn a_missing_file_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let key = "shop/2024/01/01/0123456789abcdef0123456789abcdef.png";
    assert_eq!(store.stat(key).await.unwrap(), None);
    assert_eq!(
        store.read_stream(key).await.err().unwrap().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn open_resolves_the_default_directory_and_keeps_the_secret_in_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let store = MediaStore::open(
        &MediaConfig::default(),
        dir.path(),
        Some("http://127.0.0.1:7780"),
    )
    .unwrap()
    .unwrap();
    assert_eq!(store.kind(), MediaKind::Fs);
    assert_eq!(store.upload_expires(), Duration::from_secs(900));
    assert!(dir.path().join("media").is_dir());
    assert!(dir.path().join("media_secret").is_file());
}

#[test]
fn open_without_an_http_listener_says_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let err = MediaStore::open(&MediaConfig::default(), dir.path(), None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("http.addr"), "{err}");
    let mut off = MediaConfig::default();
    off.kind = MediaKind::Off;
    assert!(MediaStore::open(&off, dir.path(), None).unwrap().is_none());
}

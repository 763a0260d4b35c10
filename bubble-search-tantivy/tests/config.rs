//! The config checks every setting and names the bad one; `connect` refuses
//! a bad config before touching the disk.

use bubble_core::{AdapterConfig, ErrorKind};
use bubble_search_tantivy::{TantivyConfig, TokenizerKind};

/// The field `validate` names, after checking that `connect` refuses the
/// config too, as `InvalidInput` naming the same field.
async fn refused_field(config: TantivyConfig) -> String {
    let field = config
        .validate()
        .expect_err("the settings are invalid")
        .field;
    let err = config.connect().await.expect_err("connect validates first");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().starts_with(&format!("`{field}`")), "{err}");
    field
}

fn in_memory() -> TantivyConfig {
    TantivyConfig::default().with_in_memory(true)
}

#[tokio::test]
async fn a_missing_path_is_an_error_naming_path() {
    assert_eq!(refused_field(TantivyConfig::default()).await, "path");
}

#[tokio::test]
async fn a_path_and_in_memory_together_are_an_error_naming_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let config = TantivyConfig::new(dir.path().join("search")).with_in_memory(true);
    assert_eq!(refused_field(config).await, "in_memory");
    assert!(!dir.path().join("search").exists(), "nothing was created");
}

#[tokio::test]
async fn too_little_writer_memory_is_an_error_naming_writer_memory_bytes() {
    let field = refused_field(in_memory().with_writer_memory_bytes(1_000_000)).await;
    assert_eq!(field, "writer_memory_bytes");
    let field = refused_field(
        in_memory()
            .with_writer_threads(4)
            .with_writer_memory_bytes(50_000_000),
    )
    .await;
    assert_eq!(field, "writer_memory_bytes", "15 MB per thread");
}

#[tokio::test]
async fn zero_writer_threads_is_an_error_naming_writer_threads() {
    let field = refused_field(in_memory().with_writer_threads(0)).await;
    assert_eq!(field, "writer_threads");
}

#[cfg(not(feature = "jieba"))]
#[tokio::test]
async fn jieba_without_the_feature_is_an_error_naming_tokenizer() {
    let field = refused_field(in_memory().with_tokenizer(TokenizerKind::Jieba)).await;
    assert_eq!(field, "tokenizer");
}

#[test]
fn a_config_file_section_reads_with_defaults_for_what_it_leaves_out() {
    let c: TantivyConfig = serde_json::from_str(r#"{"path": "data/search"}"#).unwrap();
    assert_eq!(c, TantivyConfig::new("data/search"));
    assert_eq!(c.writer_memory_bytes, 50_000_000);
    assert_eq!(c.writer_threads, 1);
    assert_eq!(c.tokenizer, TokenizerKind::CjkBigram);
    assert!(!c.in_memory);
    let c: TantivyConfig = serde_json::from_str(r#"{"path": "x", "tokenizer": "jieba"}"#).unwrap();
    assert_eq!(c.tokenizer, TokenizerKind::Jieba);
    assert!(
        serde_json::from_str::<TantivyConfig>(r#"{"path": "x", "memory": 1}"#).is_err(),
        "a misspelt key is an error, not silently ignored"
    );
}

#[tokio::test]
async fn connect_uses_a_config_as_is() {
    let dir = tempfile::tempdir().unwrap();
    let index = TantivyConfig::new(dir.path()).connect().await.unwrap();
    assert_eq!(index.path(), Some(dir.path()));
    let index = in_memory().connect().await.unwrap();
    assert_eq!(index.path(), None);
}

#[test]
fn debug_shows_the_settings_none_of_which_is_a_secret() {
    let shown = format!("{:?}", TantivyConfig::new("data/search"));
    for field in [
        "path",
        "in_memory",
        "writer_memory_bytes",
        "writer_threads",
        "tokenizer",
    ] {
        assert!(shown.contains(field), "{field}: {shown}");
    }
}

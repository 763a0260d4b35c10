//! The builder checks every setting and names the bad one.

use bubble_core::ErrorKind;
use bubble_search_tantivy::{TantivyConfig, TantivySearch, TokenizerKind};

fn build_err(b: bubble_search_tantivy::TantivySearchBuilder) -> bubble_core::Error {
    b.build().expect_err("the settings are invalid")
}

#[test]
fn a_missing_path_is_an_error_naming_path() {
    let err = build_err(TantivySearch::builder());
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().starts_with("path"), "{err}");
}

#[test]
fn too_little_writer_memory_is_an_error_naming_writer_memory_bytes() {
    let err = build_err(
        TantivySearch::builder()
            .in_memory()
            .writer_memory_bytes(1_000_000),
    );
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().starts_with("writer_memory_bytes"), "{err}");
    let err = build_err(
        TantivySearch::builder()
            .in_memory()
            .writer_threads(4)
            .writer_memory_bytes(50_000_000),
    );
    assert!(
        err.message().starts_with("writer_memory_bytes"),
        "15 MB per thread: {err}"
    );
}

#[test]
fn zero_writer_threads_is_an_error_naming_writer_threads() {
    let err = build_err(TantivySearch::builder().in_memory().writer_threads(0));
    assert!(err.message().starts_with("writer_threads"), "{err}");
}

#[cfg(not(feature = "jieba"))]
#[test]
fn jieba_without_the_feature_is_an_error_naming_tokenizer() {
    let err = build_err(
        TantivySearch::builder()
            .in_memory()
            .tokenizer(TokenizerKind::Jieba),
    );
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().starts_with("tokenizer"), "{err}");
}

#[test]
fn a_config_file_section_reads_with_defaults_for_what_it_leaves_out() {
    let c: TantivyConfig = serde_json::from_str(r#"{"path": "data/search"}"#).unwrap();
    assert_eq!(c, TantivyConfig::at("data/search"));
    assert_eq!(c.writer_memory_bytes, 50_000_000);
    assert_eq!(c.writer_threads, 1);
    assert_eq!(c.tokenizer, TokenizerKind::CjkBigram);
    let c: TantivyConfig = serde_json::from_str(r#"{"path": "x", "tokenizer": "jieba"}"#).unwrap();
    assert_eq!(c.tokenizer, TokenizerKind::Jieba);
    assert!(
        serde_json::from_str::<TantivyConfig>(r#"{"path": "x", "memory": 1}"#).is_err(),
        "a misspelt key is an error, not silently ignored"
    );
}

#[test]
fn open_uses_a_config_as_is() {
    let dir = tempfile::tempdir().unwrap();
    let index = TantivySearch::open(TantivyConfig::at(dir.path())).unwrap();
    assert_eq!(index.path(), Some(dir.path()));
}

//! Nobody finds a message they do not own, whatever they type.

use bubble_core::AdapterConfig;
use bubble_core::ports::{SearchDoc, SearchIndex, SearchQuery};
use bubble_core::{AppId, Conversation, MsgId, UserId};
use bubble_search_tantivy::{TantivyConfig, TantivySearch};

fn doc(owner: &str, id: u8, text: &str) -> SearchDoc {
    SearchDoc {
        app: AppId::new("app"),
        owners: vec![UserId::new(owner)],
        viewer: UserId::new(owner),
        server_msg_id: MsgId([id; 16]),
        conversation: Conversation::direct(&UserId::new("cy")),
        sender: UserId::new("cy"),
        server_time: 1_000,
        text: text.to_owned(),
    }
}

fn query(owner: &str, words: &str) -> SearchQuery {
    SearchQuery {
        app: AppId::new("app"),
        owner: UserId::new(owner),
        words: words.to_owned(),
        conversation: None,
        from_time: None,
        to_time: None,
        offset: 0,
        limit: 100,
    }
}

/// Ann owns one message; bob owns messages that mention everything an
/// attacker might type.
async fn index() -> TantivySearch {
    let index = TantivyConfig::default()
        .with_in_memory(true)
        .connect()
        .await
        .unwrap();
    index
        .index(&[
            doc("ann", 1, "ann's note"),
            doc("bob", 2, "bob secret owner:bob app:app key text 密码"),
            doc("bob", 3, "* OR 1=1 ( ) \" : ^ ~ bob"),
        ])
        .await
        .unwrap();
    index.flush().await.unwrap();
    index
}

#[tokio::test]
async fn query_syntax_in_the_words_never_escapes_the_owner_filter() {
    let index = index().await;
    for words in [
        "owner:bob",
        "owner:bob OR secret",
        "secret OR owner:ann",
        "*",
        "* OR 1=1",
        "text:secret",
        "key:*",
        "bob",
        "\"secret\"",
        "secret) OR (owner:bob",
        "密码",
        "app:app",
        "owner",
    ] {
        let r = index.search(&query("ann", words)).await.unwrap();
        assert!(
            r.hits.iter().all(|h| h.doc.owners == [UserId::new("ann")]),
            "{words:?} showed another owner's message: {:?}",
            r.hits
        );
        assert!(
            r.hits.iter().all(|h| h.doc.server_msg_id == MsgId([1; 16])),
            "{words:?}"
        );
    }
}

#[tokio::test]
async fn words_with_field_syntax_are_searched_as_words() {
    let index = index().await;
    // "owner:bob" is the words "owner" and "bob" side by side, in bob's own
    // messages; for ann it finds nothing.
    let r = index.search(&query("bob", "owner:bob")).await.unwrap();
    assert_eq!(r.total, 1);
    assert_eq!(r.hits[0].doc.server_msg_id, MsgId([2; 16]));
    assert_eq!(
        index
            .search(&query("ann", "owner:bob"))
            .await
            .unwrap()
            .total,
        0
    );
}

#[tokio::test]
async fn an_owner_id_that_looks_like_another_key_finds_nothing_of_others() {
    let index = index().await;
    for owner in ["", "*", "bob ", "BOB", "bo", "ann|bob", "app|bob"] {
        let r = index.search(&query(owner, "secret")).await.unwrap();
        assert_eq!(r.total, 0, "owner {owner:?}");
    }
}

#[tokio::test]
async fn words_without_searchable_characters_find_nothing_rather_than_everything() {
    let index = index().await;
    for words in ["", "   ", "!!!", "，。", "* ( )"] {
        let r = index.search(&query("ann", words)).await.unwrap();
        assert_eq!(r.total, 0, "{words:?}");
    }
}

#[tokio::test]
async fn an_overlong_query_is_refused_as_invalid_input() {
    let index = index().await;
    let err = index
        .search(&query(
            "ann",
            &"好".repeat(bubble_search_tantivy::MAX_QUERY_CHARS + 1),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), bubble_core::ErrorKind::InvalidInput);
    assert!(err.message().starts_with("words"), "{err}");
}

#[tokio::test]
async fn paging_deeper_than_the_result_window_is_refused_as_invalid_input() {
    let index = index().await;
    let mut q = query("ann", "note");
    q.offset = bubble_search_tantivy::MAX_RESULT_WINDOW;
    let err = index.search(&q).await.unwrap_err();
    assert_eq!(err.kind(), bubble_core::ErrorKind::InvalidInput);
}

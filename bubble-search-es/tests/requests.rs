//! What the adapter sends and how it reads the answers, against a fake
//! Elasticsearch on loopback (no cluster runs on the build machines): the
//! paths, methods, routing and bodies of each call, and how error statuses
//! become error kinds.

mod common;

use bubble_core::AdapterConfig;
use bubble_core::ports::{SearchDoc, SearchIndex, SearchQuery};
use bubble_core::{AppId, Conversation, ErrorKind, MsgId, UserId};
use bubble_search_es::{EsConfig, EsSearch};
use common::{FakeEs, Recorded, healthy};
use serde_json::json;

const INDEX: &str = "chat";

async fn connect(fake: &FakeEs) -> EsSearch {
    EsConfig::new([fake.url.as_str()])
        .with_index(INDEX)
        .connect()
        .await
        .unwrap()
}

fn doc(last: u8, text: &str) -> SearchDoc {
    let mut id = [0u8; 16];
    id[15] = last;
    SearchDoc {
        app: AppId::new("app1"),
        owners: vec![UserId::new("ann")],
        viewer: UserId::new("ann"),
        server_msg_id: MsgId(id),
        conversation: Conversation::direct(&UserId::new("bo")),
        sender: UserId::new("bo"),
        server_time: 1000 + i64::from(last),
        text: text.into(),
    }
}

fn query(words: &str) -> SearchQuery {
    SearchQuery {
        app: AppId::new("app1"),
        owner: UserId::new("ann"),
        words: words.into(),
        conversation: None,
        from_time: None,
        to_time: None,
        offset: 0,
        limit: 20,
    }
}

/// A healthy cluster, except that `part` answers `status` with `body`.
fn failing(
    part: &'static str,
    status: u16,
    body: &'static str,
) -> impl Fn(&Recorded) -> (u16, String) {
    move |r: &Recorded| {
        if r.target.contains(part) {
            (status, body.to_owned())
        } else {
            healthy(r)
        }
    }
}

#[tokio::test]
async fn connect_installs_the_template_then_creates_a_missing_index() {
    let fake = FakeEs::start(|r: &Recorded| match r.method.as_str() {
        "HEAD" => (404, String::new()),
        _ => healthy(r),
    })
    .await;
    connect(&fake).await;
    let calls: Vec<(String, String)> = fake
        .requests()
        .into_iter()
        .map(|r| (r.method, r.target))
        .collect();
    assert_eq!(
        calls,
        vec![
            ("PUT".to_owned(), "/_index_template/chat".to_owned()),
            ("HEAD".to_owned(), "/chat".to_owned()),
            ("PUT".to_owned(), "/chat".to_owned()),
        ]
    );
    let template = fake.last("/_index_template/").json();
    assert_eq!(template["index_patterns"], json!(["chat", "chat-*"]));
    assert_eq!(
        template["template"]["mappings"]["properties"]["text"]["analyzer"],
        "bubble_text"
    );
}

#[tokio::test]
async fn connect_leaves_an_existing_index_alone() {
    let fake = FakeEs::start(healthy).await;
    connect(&fake).await;
    assert!(
        !fake
            .requests()
            .iter()
            .any(|r| r.method == "PUT" && r.target == "/chat"),
        "no create when HEAD /chat answers 200"
    );
}

#[tokio::test]
async fn an_index_created_meanwhile_by_another_node_is_fine() {
    let fake = FakeEs::start(|r: &Recorded| match (r.method.as_str(), r.target.as_str()) {
        ("HEAD", _) => (404, String::new()),
        ("PUT", "/chat") => (
            400,
            r#"{"error":{"type":"resource_already_exists_exception","reason":"index [chat] already exists"},"status":400}"#.to_owned(),
        ),
        _ => healthy(r),
    })
    .await;
    connect(&fake).await;
}

#[tokio::test]
async fn a_refused_template_fails_connect_with_the_reason() {
    let fake = FakeEs::start(failing(
        "/_index_template/",
        403,
        r#"{"error":{"type":"security_exception","reason":"action [indices:admin/index_template/put] is unauthorized"},"status":403}"#,
    ))
    .await;
    let e = EsConfig::new([fake.url.as_str()])
        .with_index(INDEX)
        .connect()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    assert!(e.message().contains("security_exception"), "{e}");
}

#[tokio::test]
async fn without_managing_the_index_connect_only_checks_that_it_exists() {
    let fake = FakeEs::start(|r: &Recorded| match r.method.as_str() {
        "HEAD" => (404, String::new()),
        _ => healthy(r),
    })
    .await;
    let e = EsConfig::new([fake.url.as_str()])
        .with_index(INDEX)
        .with_manage_index(false)
        .connect()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.message().contains("manage_index"), "says what to do: {e}");
    assert_eq!(fake.requests().len(), 1, "only the existence check");
}

#[tokio::test]
async fn basic_auth_credentials_are_sent() {
    let fake = FakeEs::start(healthy).await;
    EsConfig::new([fake.url.as_str()])
        .with_index(INDEX)
        .with_username("elastic")
        .with_password("changeme")
        .connect()
        .await
        .unwrap();
    // base64("elastic:changeme")
    assert_eq!(
        fake.requests()[0].authorization.as_deref(),
        Some("Basic ZWxhc3RpYzpjaGFuZ2VtZQ==")
    );
}

#[tokio::test]
async fn indexing_posts_ndjson_pairs_to_the_bulk_endpoint_of_the_index() {
    let fake = FakeEs::start(healthy).await;
    let es = connect(&fake).await;
    es.index(&[doc(1, "hello"), doc(2, "大家好")])
        .await
        .unwrap();
    let bulk = fake.last("/_bulk");
    assert_eq!(bulk.method, "POST");
    assert_eq!(bulk.target, "/chat/_bulk");
    assert!(bulk.body.ends_with('\n'), "NDJSON ends with a newline");
    let lines = bulk.lines();
    assert_eq!(lines.len(), 4);
    assert_eq!(
        lines[0],
        json!({ "update": { "_id": "app1|00000000000000000000000000000001", "retry_on_conflict": 3 } })
    );
    assert_eq!(lines[1]["upsert"]["text"], "hello");
    assert_eq!(lines[1]["upsert"]["owners"], json!(["ann"]));
    assert_eq!(lines[1]["script"]["params"]["doc"], lines[1]["upsert"]);
    assert_eq!(lines[3]["upsert"]["text"], "大家好");
}

#[tokio::test]
async fn a_large_batch_goes_out_in_several_bulk_requests() {
    let fake = FakeEs::start(healthy).await;
    let es = connect(&fake).await;
    let docs: Vec<SearchDoc> = (0..1200)
        .map(|i| {
            let mut d = doc(0, "x");
            d.server_msg_id.0[..4].copy_from_slice(&(i as u32).to_be_bytes());
            d
        })
        .collect();
    es.index(&docs).await.unwrap();
    let bulks: Vec<usize> = fake
        .requests()
        .iter()
        .filter(|r| r.target.contains("/_bulk"))
        .map(|r| r.lines().len() / 2)
        .collect();
    assert_eq!(bulks, vec![500, 500, 200]);
}

#[tokio::test]
async fn indexing_nothing_sends_nothing() {
    let fake = FakeEs::start(healthy).await;
    let es = connect(&fake).await;
    let before = fake.requests().len();
    es.index(&[]).await.unwrap();
    assert_eq!(fake.requests().len(), before);
}

#[tokio::test]
async fn a_failed_bulk_item_fails_the_call_naming_it() {
    let fake = FakeEs::start(failing(
        "/_bulk",
        200,
        r#"{"took":1,"errors":true,"items":[
            {"update":{"_id":"app1|00000000000000000000000000000001","status":201}},
            {"update":{"_id":"app1|00000000000000000000000000000002","status":429,
              "error":{"type":"es_rejected_execution_exception","reason":"rejected execution"}}}]}"#,
    ))
    .await;
    let es = connect(&fake).await;
    let e = es.index(&[doc(1, "a"), doc(2, "b")]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert!(
        e.message().contains("00000000000000000000000000000002"),
        "{e}"
    );
}

#[tokio::test]
async fn search_filters_by_app_and_owner_and_reads_the_hits() {
    let fake = FakeEs::start(failing(
        "/_search",
        200,
        r#"{"hits":{"total":{"value":3,"relation":"eq"},"hits":[
            {"_id":"app1|00000000000000000000000000000001","_score":1.5,
             "_source":{"app":"app1","owners":["ann","bo"],"msg_id":"00000000000000000000000000000001",
                        "viewer":"ann","conversation_kind":1,"conversation_id":"bo",
                        "conversation_of":["1|3|ann|bo","1|2|bo|ann"],"sender":"bo",
                        "server_time":1001,"text":"meet at the station"}}]}}"#,
    ))
    .await;
    let es = connect(&fake).await;
    let r = es.search(&query("station")).await.unwrap();
    assert_eq!(r.total, 3);
    assert_eq!(r.hits.len(), 1);
    assert_eq!(r.hits[0].doc, doc(1, "meet at the station"));
    assert_eq!(r.hits[0].score, 1.5);

    let sent = fake.last("/_search");
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.target, "/chat/_search");
    let body = sent.json();
    assert_eq!(
        body["query"]["bool"]["filter"],
        json!([{ "term": { "app": "app1" } }, { "term": { "owners": "ann" } }])
    );
    assert_eq!(
        body["query"]["bool"]["must"][0]["match"]["text"],
        json!({ "query": "station", "operator": "and" })
    );
}

#[tokio::test]
async fn an_empty_query_finds_nothing_without_asking() {
    let fake = FakeEs::start(healthy).await;
    let es = connect(&fake).await;
    let r = es.search(&query("   ")).await.unwrap();
    assert!(r.hits.is_empty() && r.total == 0);
    assert!(!fake.requests().iter().any(|r| r.target.contains("_search")));
}

#[tokio::test]
async fn paging_past_the_result_window_is_invalid_input() {
    let fake = FakeEs::start(healthy).await;
    let es = connect(&fake).await;
    let mut q = query("x");
    q.offset = 9_990;
    q.limit = 20;
    assert_eq!(
        es.search(&q).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[tokio::test]
async fn search_errors_map_by_status() {
    for (status, kind) in [
        (400, ErrorKind::InvalidInput),
        (404, ErrorKind::NotFound),
        (429, ErrorKind::RateLimited),
        (503, ErrorKind::Unavailable),
    ] {
        let fake = FakeEs::start(move |r: &Recorded| {
            if r.target.contains("/_search") {
                (
                    status,
                    r#"{"error":{"type":"some_exception","reason":"because"},"status":0}"#
                        .to_owned(),
                )
            } else {
                healthy(r)
            }
        })
        .await;
        let es = connect(&fake).await;
        let e = es.search(&query("x")).await.unwrap_err();
        assert_eq!(e.kind(), kind, "HTTP {status}: {e}");
        assert!(e.message().contains("some_exception: because"), "{e}");
    }
}

#[tokio::test]
async fn remove_deletes_the_messages_document() {
    let fake = FakeEs::start(healthy).await;
    let es = connect(&fake).await;
    let d = doc(9, "x");
    es.remove(&d.app, &d.server_msg_id).await.unwrap();
    let sent = fake.last("/_doc/");
    assert_eq!(sent.method, "DELETE");
    assert_eq!(
        sent.target,
        "/chat/_doc/app1%7C00000000000000000000000000000009"
    );
}

#[tokio::test]
async fn remove_owners_posts_a_script_update_of_the_messages_document() {
    let fake = FakeEs::start(healthy).await;
    let es = connect(&fake).await;
    let d = doc(9, "x");
    es.remove_owners(&d.app, &d.server_msg_id, &[UserId::new("bo")])
        .await
        .unwrap();
    let sent = fake.last("/_update/");
    assert_eq!(sent.method, "POST");
    assert_eq!(
        sent.target,
        "/chat/_update/app1%7C00000000000000000000000000000009?retry_on_conflict=3"
    );
    let body = sent.json();
    assert_eq!(body["script"]["params"], json!({ "owners": ["bo"] }));
    assert!(
        body["script"]["source"]
            .as_str()
            .unwrap()
            .contains("ctx.op = 'delete'"),
        "the last owner takes the document"
    );
}

#[tokio::test]
async fn removing_owners_of_a_message_that_is_not_indexed_is_fine() {
    let fake = FakeEs::start(failing(
        "/_update/",
        404,
        r#"{"error":{"type":"document_missing_exception","reason":"[app1|09]: document missing"},"status":404}"#,
    ))
    .await;
    let es = connect(&fake).await;
    let d = doc(9, "x");
    es.remove_owners(&d.app, &d.server_msg_id, &[UserId::new("bo")])
        .await
        .unwrap();
}

#[tokio::test]
async fn removing_owners_from_a_missing_index_is_not_found() {
    let fake = FakeEs::start(failing(
        "/_update/",
        404,
        r#"{"error":{"type":"index_not_found_exception","reason":"no such index [chat]"},"status":404}"#,
    ))
    .await;
    let es = connect(&fake).await;
    let d = doc(9, "x");
    let e = es
        .remove_owners(&d.app, &d.server_msg_id, &[UserId::new("bo")])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn clear_app_deletes_by_query_on_the_app() {
    let fake = FakeEs::start(healthy).await;
    let es = connect(&fake).await;
    es.clear_app(&AppId::new("app1")).await.unwrap();
    let sent = fake.last("/_delete_by_query");
    assert_eq!(sent.method, "POST");
    assert_eq!(
        sent.target,
        "/chat/_delete_by_query?conflicts=proceed&refresh=true"
    );
    assert_eq!(
        sent.json(),
        json!({ "query": { "term": { "app": "app1" } } })
    );
}

#[tokio::test]
async fn removing_a_document_that_is_not_there_is_fine() {
    let fake = FakeEs::start(failing(
        "/_doc/",
        404,
        r#"{"_index":"chat","_id":"x","_version":1,"result":"not_found"}"#,
    ))
    .await;
    let es = connect(&fake).await;
    let d = doc(9, "x");
    es.remove(&d.app, &d.server_msg_id).await.unwrap();
}

#[tokio::test]
async fn removing_from_a_missing_index_is_not_found() {
    let fake = FakeEs::start(failing(
        "/_doc/",
        404,
        r#"{"error":{"type":"index_not_found_exception","reason":"no such index [chat]"},"status":404}"#,
    ))
    .await;
    let es = connect(&fake).await;
    let d = doc(9, "x");
    let e = es.remove(&d.app, &d.server_msg_id).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn flush_refreshes_the_index() {
    let fake = FakeEs::start(healthy).await;
    let es = connect(&fake).await;
    es.flush().await.unwrap();
    let sent = fake.last("/_refresh");
    assert_eq!(sent.target, "/chat/_refresh");
}

#[tokio::test]
async fn delete_index_removes_the_index_and_its_template_and_tolerates_missing_ones() {
    let fake = FakeEs::start(|r: &Recorded| match r.method.as_str() {
        "DELETE" => (
            404,
            r#"{"error":{"type":"index_not_found_exception","reason":"gone"}}"#.to_owned(),
        ),
        _ => healthy(r),
    })
    .await;
    let es = connect(&fake).await;
    es.delete_index().await.unwrap();
    let deletes: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.target)
        .collect();
    assert_eq!(deletes, vec!["/chat", "/_index_template/chat"]);
}

#[tokio::test]
async fn connecting_where_nothing_listens_is_unavailable() {
    // Bind then drop: the port is free and refuses connections.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = EsConfig::new([format!("http://127.0.0.1:{port}")])
        .connect()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable());
}

#[tokio::test]
async fn a_bad_config_is_refused_before_any_request() {
    let config = EsConfig::new(["http://127.0.0.1:9"]).with_index("Not A Valid Name");
    assert_eq!(config.validate().unwrap_err().field, "index");
    let e = config.connect().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains("`index`"), "{e}");
}

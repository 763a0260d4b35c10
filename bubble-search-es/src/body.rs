//! The request bodies, as pure functions: the index template and mapping,
//! bulk lines, and the search query. Unit-tested against fixed JSON, since
//! the machines that build bubble have no Elasticsearch.

use bubble_core::ports::{SearchDoc, SearchQuery};
use bubble_core::{AppId, MsgId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::EsConfig;

/// The largest `from + size` Elasticsearch serves by default
/// (`index.max_result_window`).
pub(crate) const MAX_RESULT_WINDOW: usize = 10_000;

/// The document id: `app|owner|msgid`, so indexing the same owner's copy of
/// a message again replaces it (ids may not contain `|`).
pub(crate) fn document_id(app: &AppId, owner: &UserId, id: &MsgId) -> String {
    format!("{app}|{owner}|{}", id.to_hex())
}

/// The shard routing: `app|owner`, so an owner's whole history sits on one
/// shard and a search asks one shard instead of all of them.
pub(crate) fn routing(app: &AppId, owner: &UserId) -> String {
    format!("{app}|{owner}")
}

/// One message as stored in `_source`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredDoc {
    pub app: String,
    pub owner: String,
    /// 32 lowercase hex characters.
    pub msg_id: String,
    /// The conversation kind's wire number (1 direct, 2 group, 3 super group, 4 system).
    pub conversation_kind: u8,
    /// The peer user or the group.
    pub conversation_id: String,
    pub sender: String,
    /// Milliseconds since the epoch.
    pub server_time: i64,
    pub text: String,
}

impl StoredDoc {
    pub(crate) fn from_doc(doc: &SearchDoc) -> StoredDoc {
        StoredDoc {
            app: doc.app.to_string(),
            owner: doc.owner.to_string(),
            msg_id: doc.server_msg_id.to_hex(),
            conversation_kind: doc.conversation.kind as u8,
            conversation_id: doc.conversation.id().to_owned(),
            sender: doc.sender.to_string(),
            server_time: doc.server_time,
            text: doc.text.clone(),
        }
    }
}

/// The composable index template: settings (analysis) and the mapping.
///
/// Text goes through `bubble_text` when indexed: the standard tokenizer
/// (which splits CJK text into single characters and other text into
/// words), `cjk_width` (full-width Latin and half-width kana folded),
/// `lowercase`, and `cjk_bigram` with unigrams kept, so "大家好" is indexed as
/// 大, 大家, 家, 家好, 好. Queries go through `bubble_query`, the same chain
/// without unigrams: "大家" becomes the bigram 大家 (an exact two-character
/// match) and a lone "好" stays a unigram, which the index also holds. So
/// any run of characters inside a message is found, English words match
/// case-insensitively, and no stop words are dropped (in chat, "to" or "it"
/// may be the point).
pub(crate) fn index_template(config: &EsConfig) -> Value {
    json!({
        "index_patterns": [config.index, format!("{}-*", config.index)],
        "priority": 200,
        "template": {
            "settings": {
                "number_of_shards": config.shards,
                "number_of_replicas": config.replicas,
                "analysis": {
                    "filter": {
                        "bubble_cjk_bigram_index": {
                            "type": "cjk_bigram",
                            "output_unigrams": true
                        },
                        "bubble_cjk_bigram_query": {
                            "type": "cjk_bigram",
                            "output_unigrams": false
                        }
                    },
                    "analyzer": {
                        "bubble_text": {
                            "type": "custom",
                            "tokenizer": "standard",
                            "filter": ["cjk_width", "lowercase", "bubble_cjk_bigram_index"]
                        },
                        "bubble_query": {
                            "type": "custom",
                            "tokenizer": "standard",
                            "filter": ["cjk_width", "lowercase", "bubble_cjk_bigram_query"]
                        }
                    }
                }
            },
            "mappings": {
                "dynamic": "strict",
                "_routing": { "required": true },
                "properties": {
                    "app": { "type": "keyword" },
                    "owner": { "type": "keyword" },
                    "msg_id": { "type": "keyword" },
                    "conversation_kind": { "type": "byte" },
                    "conversation_id": { "type": "keyword" },
                    "sender": { "type": "keyword" },
                    "server_time": { "type": "date", "format": "epoch_millis" },
                    "text": {
                        "type": "text",
                        "analyzer": "bubble_text",
                        "search_analyzer": "bubble_query"
                    }
                }
            }
        },
        "_meta": {
            "description": "bubble message history: one document per owner's copy of a message"
        }
    })
}

/// The bulk request: an `index` action line (id and routing) followed by
/// the document, for each document. The index comes from the URL.
pub(crate) fn bulk_lines(docs: &[SearchDoc]) -> Vec<Value> {
    let mut lines = Vec::with_capacity(docs.len() * 2);
    for doc in docs {
        lines.push(json!({
            "index": {
                "_id": document_id(&doc.app, &doc.owner, &doc.server_msg_id),
                "routing": routing(&doc.app, &doc.owner),
            }
        }));
        lines.push(serde_json::to_value(StoredDoc::from_doc(doc)).expect("a StoredDoc serializes"));
    }
    lines
}

/// The search request body. App and owner are mandatory filters (nobody
/// ever sees another owner's messages); conversation and time bounds are
/// optional filters; every query word must match (`operator: and`). Best
/// first, ties newest first, then by id so pages are stable.
pub(crate) fn search_body(q: &SearchQuery) -> Value {
    let mut filter = vec![
        json!({ "term": { "app": q.app.as_str() } }),
        json!({ "term": { "owner": q.owner.as_str() } }),
    ];
    if let Some(c) = &q.conversation {
        filter.push(json!({ "term": { "conversation_kind": c.kind as u8 } }));
        filter.push(json!({ "term": { "conversation_id": c.id() } }));
    }
    if q.from_time.is_some() || q.to_time.is_some() {
        let mut range = serde_json::Map::new();
        if let Some(t) = q.from_time {
            range.insert("gte".into(), json!(t));
        }
        if let Some(t) = q.to_time {
            range.insert("lte".into(), json!(t));
        }
        filter.push(json!({ "range": { "server_time": range } }));
    }
    json!({
        "from": q.offset,
        "size": q.limit,
        "track_total_hits": true,
        "track_scores": true,
        "query": {
            "bool": {
                "filter": filter,
                "must": [
                    { "match": { "text": { "query": q.words, "operator": "and" } } }
                ]
            }
        },
        "sort": [
            { "_score": { "order": "desc" } },
            { "server_time": { "order": "desc" } },
            { "msg_id": { "order": "asc" } }
        ]
    })
}

#[cfg(test)]
mod tests {
    use bubble_core::{Conversation, GroupId};

    use super::*;

    fn msg_id(last: u8) -> MsgId {
        let mut raw = [0u8; 16];
        raw[15] = last;
        MsgId(raw)
    }

    fn doc() -> SearchDoc {
        SearchDoc {
            app: AppId::new("app1"),
            owner: UserId::new("ann"),
            server_msg_id: msg_id(0xab),
            conversation: Conversation::direct(&UserId::new("bo")),
            sender: UserId::new("bo"),
            server_time: 1_700_000_000_123,
            text: "大家好 Hello".to_owned(),
        }
    }

    fn query() -> SearchQuery {
        SearchQuery {
            app: AppId::new("app1"),
            owner: UserId::new("ann"),
            words: "station".to_owned(),
            conversation: None,
            from_time: None,
            to_time: None,
            offset: 0,
            limit: 20,
        }
    }

    #[test]
    fn the_document_id_is_app_owner_and_message() {
        assert_eq!(
            document_id(&AppId::new("app1"), &UserId::new("ann"), &msg_id(0xab)),
            "app1|ann|000000000000000000000000000000ab"
        );
    }

    #[test]
    fn an_owners_documents_share_one_routing_key() {
        assert_eq!(
            routing(&AppId::new("app1"), &UserId::new("ann")),
            "app1|ann"
        );
    }

    #[test]
    fn each_document_is_an_index_action_then_its_source() {
        assert_eq!(
            bulk_lines(&[doc()]),
            vec![
                json!({ "index": {
                    "_id": "app1|ann|000000000000000000000000000000ab",
                    "routing": "app1|ann"
                } }),
                json!({
                    "app": "app1",
                    "owner": "ann",
                    "msg_id": "000000000000000000000000000000ab",
                    "conversation_kind": 1,
                    "conversation_id": "bo",
                    "sender": "bo",
                    "server_time": 1_700_000_000_123_i64,
                    "text": "大家好 Hello"
                }),
            ]
        );
    }

    #[test]
    fn a_group_message_carries_the_group_as_its_conversation() {
        let mut d = doc();
        d.conversation = Conversation::group(&GroupId::new("g1"));
        let lines = bulk_lines(&[d]);
        assert_eq!(lines[1]["conversation_kind"], 2);
        assert_eq!(lines[1]["conversation_id"], "g1");
    }

    #[test]
    fn bulk_lines_come_in_pairs_in_document_order() {
        let mut second = doc();
        second.server_msg_id = msg_id(0xcd);
        let lines = bulk_lines(&[doc(), second]);
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[2]["index"]["_id"],
            "app1|ann|000000000000000000000000000000cd"
        );
    }

    #[test]
    fn a_plain_search_filters_on_app_and_owner_and_needs_every_word() {
        assert_eq!(
            search_body(&query()),
            json!({
                "from": 0,
                "size": 20,
                "track_total_hits": true,
                "track_scores": true,
                "query": { "bool": {
                    "filter": [
                        { "term": { "app": "app1" } },
                        { "term": { "owner": "ann" } }
                    ],
                    "must": [
                        { "match": { "text": { "query": "station", "operator": "and" } } }
                    ]
                } },
                "sort": [
                    { "_score": { "order": "desc" } },
                    { "server_time": { "order": "desc" } },
                    { "msg_id": { "order": "asc" } }
                ]
            })
        );
    }

    #[test]
    fn conversation_and_time_bounds_become_filters() {
        let mut q = query();
        q.conversation = Some(Conversation::group(&GroupId::new("g1")));
        q.from_time = Some(1100);
        q.to_time = Some(1300);
        let body = search_body(&q);
        assert_eq!(
            body["query"]["bool"]["filter"],
            json!([
                { "term": { "app": "app1" } },
                { "term": { "owner": "ann" } },
                { "term": { "conversation_kind": 2 } },
                { "term": { "conversation_id": "g1" } },
                { "range": { "server_time": { "gte": 1100, "lte": 1300 } } }
            ])
        );
    }

    #[test]
    fn an_open_ended_time_range_has_one_bound() {
        let mut q = query();
        q.to_time = Some(5000);
        assert_eq!(
            search_body(&q)["query"]["bool"]["filter"][2],
            json!({ "range": { "server_time": { "lte": 5000 } } })
        );
    }

    #[test]
    fn paging_becomes_from_and_size() {
        let mut q = query();
        q.offset = 40;
        q.limit = 10;
        let body = search_body(&q);
        assert_eq!(
            (body["from"].clone(), body["size"].clone()),
            (json!(40), json!(10))
        );
    }

    #[test]
    fn the_template_maps_ids_as_keywords_time_as_a_date_and_text_cjk_aware() {
        let config = EsConfig {
            index: "chat".into(),
            shards: 3,
            replicas: 2,
            ..EsConfig::default()
        };
        let t = index_template(&config);
        assert_eq!(t["index_patterns"], json!(["chat", "chat-*"]));
        let settings = &t["template"]["settings"];
        assert_eq!(settings["number_of_shards"], 3);
        assert_eq!(settings["number_of_replicas"], 2);
        let m = &t["template"]["mappings"];
        assert_eq!(
            m["dynamic"], "strict",
            "a typo in a field name fails loudly"
        );
        assert_eq!(m["_routing"]["required"], true);
        for keyword in ["app", "owner", "msg_id", "conversation_id", "sender"] {
            assert_eq!(m["properties"][keyword]["type"], "keyword", "{keyword}");
        }
        assert_eq!(
            m["properties"]["server_time"],
            json!({ "type": "date", "format": "epoch_millis" })
        );
        assert_eq!(
            m["properties"]["text"],
            json!({ "type": "text", "analyzer": "bubble_text", "search_analyzer": "bubble_query" })
        );
        let analysis = &settings["analysis"];
        assert_eq!(
            analysis["analyzer"]["bubble_text"]["filter"],
            json!(["cjk_width", "lowercase", "bubble_cjk_bigram_index"])
        );
        assert_eq!(
            analysis["filter"]["bubble_cjk_bigram_index"],
            json!({ "type": "cjk_bigram", "output_unigrams": true })
        );
        assert_eq!(
            analysis["filter"]["bubble_cjk_bigram_query"],
            json!({ "type": "cjk_bigram", "output_unigrams": false })
        );
    }

    #[test]
    fn every_field_a_document_stores_is_mapped() {
        let t = index_template(&EsConfig::default());
        let mapped = &t["template"]["mappings"]["properties"];
        let stored = serde_json::to_value(StoredDoc::from_doc(&doc())).unwrap();
        for field in stored.as_object().unwrap().keys() {
            assert!(
                mapped.get(field).is_some(),
                "{field} is stored but not mapped (dynamic: strict would reject it)"
            );
        }
    }
}

//! The request bodies, as pure functions: the index template and mapping,
//! bulk lines, and the search query. Unit-tested against fixed JSON, since
//! the machines that build bubble have no Elasticsearch.

use bubble_core::ports::{SearchDoc, SearchQuery};
use bubble_core::{AppId, Conversation, ConversationKind, MsgId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::EsConfig;

/// The largest `from + size` Elasticsearch serves by default
/// (`index.max_result_window`).
pub(crate) const MAX_RESULT_WINDOW: usize = 10_000;

/// The document id: `app|msgid`, one document per message, so indexing
/// the same message again updates it (app ids may not contain `|`).
pub(crate) fn document_id(app: &AppId, id: &MsgId) -> String {
    format!("{app}|{}", id.to_hex())
}

/// One message as stored in `_source`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredDoc {
    pub app: String,
    /// Everyone who may find it (a keyword array).
    pub owners: Vec<String>,
    /// 32 lowercase hex characters.
    pub msg_id: String,
    /// Whose view `conversation_*` is: for 1:1 the other party sees
    /// `viewer` as the peer.
    pub viewer: String,
    /// The conversation kind's wire number (1 direct, 2 group, 3 super group, 4 system).
    pub conversation_kind: u8,
    /// The peer user (as `viewer` sees it) or the group.
    pub conversation_id: String,
    /// The conversation filter's terms, from [`conversation_filter`]: one
    /// per party for 1:1, one for every other kind.
    pub conversation_of: Vec<String>,
    pub sender: String,
    /// Milliseconds since the epoch.
    pub server_time: i64,
    pub text: String,
}

impl StoredDoc {
    pub(crate) fn from_doc(doc: &SearchDoc) -> StoredDoc {
        let conversation_of = if doc.conversation.kind == ConversationKind::Direct {
            let peer = UserId::new(doc.conversation.id());
            vec![
                conversation_filter(&doc.viewer, &doc.conversation),
                conversation_filter(&peer, &Conversation::direct(&doc.viewer)),
            ]
        } else {
            vec![conversation_filter(&doc.viewer, &doc.conversation)]
        };
        StoredDoc {
            app: doc.app.to_string(),
            owners: doc.owners.iter().map(|o| o.to_string()).collect(),
            msg_id: doc.server_msg_id.to_hex(),
            viewer: doc.viewer.to_string(),
            conversation_kind: doc.conversation.kind as u8,
            conversation_id: doc.conversation.id().to_owned(),
            conversation_of,
            sender: doc.sender.to_string(),
            server_time: doc.server_time,
            text: doc.text.clone(),
        }
    }
}

/// The filter term of `conversation` as `owner` sees it: for 1:1
/// `1|len(owner)|owner|peer` (each party's own view, so one party's filter
/// never matches the other's chats), for other kinds `kind|id`.
pub(crate) fn conversation_filter(owner: &UserId, conversation: &Conversation) -> String {
    if conversation.kind == ConversationKind::Direct {
        format!(
            "{}|{}|{}|{}",
            ConversationKind::Direct as u8,
            owner.as_str().len(),
            owner.as_str(),
            conversation.id()
        )
    } else {
        format!("{}|{}", conversation.kind as u8, conversation.id())
    }
}

/// The update script of indexing: the message's fields become the new
/// ones, its owners the union of the old and the new, so the tasks of one
/// message may come split (one per owner) or repeated and end alike.
pub(crate) const MERGE_OWNERS: &str = "List owners = ctx._source.owners == null ? new ArrayList() \
     : new ArrayList(ctx._source.owners); for (def o : params.doc.owners) { if \
     (!owners.contains(o)) { owners.add(o); } } ctx._source.putAll(params.doc); \
     ctx._source.owners = owners;";

/// The body of an update that removes `owners` from a message.
pub(crate) fn remove_owners_body(owners: &[UserId]) -> Value {
    let owners: Vec<&str> = owners.iter().map(|o| o.as_str()).collect();
    json!({
        "script": {
            "lang": "painless",
            "source": REMOVE_OWNERS,
            "params": { "owners": owners }
        }
    })
}

/// The update script of delete-for-me: drops the owners (a no-op when none
/// of them held the message), and the document with the last one.
pub(crate) const REMOVE_OWNERS: &str = "if (!ctx._source.owners.removeAll(params.owners)) { \
     ctx.op = 'noop'; } else if (ctx._source.owners.isEmpty()) { ctx.op = 'delete'; }";

/// The body of the delete-by-query that clears one app.
pub(crate) fn clear_app_body(app: &AppId) -> Value {
    json!({ "query": { "term": { "app": app.as_str() } } })
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
                "properties": {
                    "app": { "type": "keyword" },
                    "owners": { "type": "keyword" },
                    "msg_id": { "type": "keyword" },
                    "viewer": { "type": "keyword", "index": false },
                    "conversation_kind": { "type": "byte", "index": false },
                    "conversation_id": { "type": "keyword", "index": false },
                    "conversation_of": { "type": "keyword" },
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
            "description": "bubble message history: one document per message, its owners a keyword array"
        }
    })
}

/// The bulk request: for each document an `update` action line (its id)
/// followed by a scripted update that merges owners ([`MERGE_OWNERS`]),
/// with the document as the upsert when the message is new. The index
/// comes from the URL. Documents are spread over shards by id: a message
/// has many owners, so no owner's routing could hold it.
pub(crate) fn bulk_lines(docs: &[SearchDoc]) -> Vec<Value> {
    let mut lines = Vec::with_capacity(docs.len() * 2);
    for doc in docs {
        lines.push(json!({
            "update": {
                "_id": document_id(&doc.app, &doc.server_msg_id),
                "retry_on_conflict": 3,
            }
        }));
        let stored =
            serde_json::to_value(StoredDoc::from_doc(doc)).expect("a StoredDoc serializes");
        lines.push(json!({
            "script": {
                "lang": "painless",
                "source": MERGE_OWNERS,
                "params": { "doc": stored.clone() }
            },
            "upsert": stored,
        }));
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
        json!({ "term": { "owners": q.owner.as_str() } }),
    ];
    if let Some(c) = &q.conversation {
        filter.push(json!({ "term": { "conversation_of": conversation_filter(&q.owner, c) } }));
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
            owners: vec![UserId::new("ann"), UserId::new("bo")],
            viewer: UserId::new("ann"),
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
    fn the_document_id_is_app_and_message() {
        assert_eq!(
            document_id(&AppId::new("app1"), &msg_id(0xab)),
            "app1|000000000000000000000000000000ab"
        );
    }

    fn stored() -> Value {
        json!({
            "app": "app1",
            "owners": ["ann", "bo"],
            "msg_id": "000000000000000000000000000000ab",
            "viewer": "ann",
            "conversation_kind": 1,
            "conversation_id": "bo",
            "conversation_of": ["1|3|ann|bo", "1|2|bo|ann"],
            "sender": "bo",
            "server_time": 1_700_000_000_123_i64,
            "text": "大家好 Hello"
        })
    }

    #[test]
    fn each_message_is_an_update_action_then_a_merging_script_with_the_doc_as_upsert() {
        assert_eq!(
            bulk_lines(&[doc()]),
            vec![
                json!({ "update": {
                    "_id": "app1|000000000000000000000000000000ab",
                    "retry_on_conflict": 3
                } }),
                json!({
                    "script": {
                        "lang": "painless",
                        "source": MERGE_OWNERS,
                        "params": { "doc": stored() }
                    },
                    "upsert": stored()
                }),
            ]
        );
    }

    #[test]
    fn the_merge_script_unions_owners_and_replaces_the_rest() {
        for part in [
            "new ArrayList(ctx._source.owners)",
            "params.doc.owners",
            "!owners.contains(o)",
            "ctx._source.putAll(params.doc)",
            "ctx._source.owners = owners",
        ] {
            assert!(MERGE_OWNERS.contains(part), "{part}");
        }
    }

    #[test]
    fn removing_owners_is_a_script_that_deletes_with_the_last_owner() {
        let body = remove_owners_body(&[UserId::new("bo")]);
        assert_eq!(body["script"]["params"], json!({ "owners": ["bo"] }));
        assert_eq!(body["script"]["source"], REMOVE_OWNERS);
        assert!(REMOVE_OWNERS.contains("ctx.op = 'delete'"));
        assert!(
            REMOVE_OWNERS.contains("ctx.op = 'noop'"),
            "no write when nothing changes"
        );
    }

    #[test]
    fn clearing_an_app_deletes_by_an_app_term() {
        assert_eq!(
            clear_app_body(&AppId::new("app1")),
            json!({ "query": { "term": { "app": "app1" } } })
        );
    }

    #[test]
    fn a_direct_conversation_filters_by_the_searching_partys_view() {
        let bo = UserId::new("bo");
        let c = Conversation::direct(&UserId::new("ann"));
        assert_eq!(conversation_filter(&bo, &c), "1|2|bo|ann");
        assert!(
            stored()["conversation_of"]
                .as_array()
                .unwrap()
                .contains(&json!("1|2|bo|ann")),
            "bo's filter matches the document ann's copy describes"
        );
    }

    #[test]
    fn a_group_message_carries_the_group_as_its_conversation() {
        let mut d = doc();
        d.conversation = Conversation::group(&GroupId::new("g1"));
        let lines = bulk_lines(&[d]);
        assert_eq!(lines[1]["upsert"]["conversation_kind"], 2);
        assert_eq!(lines[1]["upsert"]["conversation_id"], "g1");
        assert_eq!(lines[1]["upsert"]["conversation_of"], json!(["2|g1"]));
    }

    #[test]
    fn bulk_lines_come_in_pairs_in_document_order() {
        let mut second = doc();
        second.server_msg_id = msg_id(0xcd);
        let lines = bulk_lines(&[doc(), second]);
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[2]["update"]["_id"],
            "app1|000000000000000000000000000000cd"
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
                        { "term": { "owners": "ann" } }
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
                { "term": { "owners": "ann" } },
                { "term": { "conversation_of": "2|g1" } },
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
        assert!(
            m.get("_routing").is_none(),
            "spread by id: a message has many owners"
        );
        for keyword in [
            "app",
            "owners",
            "msg_id",
            "viewer",
            "conversation_id",
            "conversation_of",
            "sender",
        ] {
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

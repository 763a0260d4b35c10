//! Reading Elasticsearch's answers: search hits, bulk item failures, error bodies.

use bubble_core::ports::{SearchDoc, SearchHit, SearchResults};
use bubble_core::{AppId, Conversation, ConversationKind, Error, MsgId, Result, UserId};
use serde::Deserialize;
use serde_json::Value;

use crate::body::StoredDoc;
use crate::error::{bulk_failed, describe, unreadable};

#[derive(Deserialize)]
struct SearchResponse {
    hits: Hits,
}

#[derive(Deserialize)]
struct Hits {
    /// `{"value": n, "relation": "eq"}` with `track_total_hits: true`
    /// (a bare number on clusters set to `rest_total_hits_as_int`).
    total: Option<Total>,
    hits: Vec<Hit>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Total {
    Object { value: u64 },
    Int(u64),
}

#[derive(Deserialize)]
struct Hit {
    #[serde(rename = "_id")]
    id: String,
    #[serde(rename = "_score")]
    score: Option<f32>,
    #[serde(rename = "_source")]
    source: StoredDoc,
}

/// Hits and total of a search answer for `owner`'s query, each hit as
/// `owner` sees it.
pub(crate) fn parse_search(body: &[u8], owner: &UserId) -> Result<SearchResults> {
    let resp: SearchResponse =
        serde_json::from_slice(body).map_err(|e| unreadable("search answer", e))?;
    let mut hits = Vec::with_capacity(resp.hits.hits.len());
    for hit in resp.hits.hits {
        let doc = to_search_doc(hit.source).map_err(|e| {
            Error::internal(format!(
                "elasticsearch: document {} is not a bubble message: {}",
                hit.id,
                e.message()
            ))
        })?;
        // The query filtered by owner; a document that is not the owner's
        // is never shown, whatever went wrong.
        if !doc.owners.contains(owner) {
            return Err(Error::internal(format!(
                "elasticsearch: document {} does not name the searching owner; refusing to \
                 show it",
                hit.id
            )));
        }
        hits.push(SearchHit {
            doc: doc.seen_by(owner),
            score: hit.score.unwrap_or(0.0),
        });
    }
    let total = match resp.hits.total {
        Some(Total::Object { value }) | Some(Total::Int(value)) => value,
        None => hits.len() as u64,
    };
    Ok(SearchResults { hits, total })
}

fn to_search_doc(s: StoredDoc) -> Result<SearchDoc> {
    Ok(SearchDoc {
        app: AppId::new(s.app),
        owners: s.owners.into_iter().map(UserId::new).collect(),
        viewer: UserId::new(s.viewer),
        server_msg_id: MsgId::from_hex(&s.msg_id)?,
        conversation: Conversation::from_parts(
            ConversationKind::from_u8(s.conversation_kind)?,
            &s.conversation_id,
        ),
        sender: UserId::new(s.sender),
        server_time: s.server_time,
        text: s.text,
    })
}

#[derive(Deserialize)]
struct BulkResponse {
    errors: bool,
    #[serde(default)]
    items: Vec<std::collections::HashMap<String, BulkItem>>,
}

#[derive(Deserialize)]
struct BulkItem {
    #[serde(rename = "_id", default)]
    id: Option<String>,
    status: u16,
    error: Option<Value>,
}

/// `Ok` when every item of a bulk answer succeeded; otherwise an error
/// naming the first failure and counting the rest, its kind chosen by
/// [`bulk_failed`] from the items' statuses.
pub(crate) fn check_bulk(body: &[u8]) -> Result<()> {
    let resp: BulkResponse =
        serde_json::from_slice(body).map_err(|e| unreadable("bulk answer", e))?;
    if !resp.errors {
        return Ok(());
    }
    let failed: Vec<(&str, &BulkItem)> = resp
        .items
        .iter()
        .flat_map(|item| item.iter())
        .filter(|(_, i)| i.error.is_some() || i.status >= 300)
        .map(|(action, i)| (action.as_str(), i))
        .collect();
    let Some((action, first)) = failed.first() else {
        return Err(Error::internal(
            "elasticsearch: bulk answer says errors but names no failed item",
        ));
    };
    let statuses: Vec<u16> = failed.iter().map(|(_, i)| i.status).collect();
    Err(bulk_failed(
        &statuses,
        format!(
            "elasticsearch: {} of {} bulk items failed; first: {action} of {} -> {} {}",
            failed.len(),
            resp.items.len(),
            first.id.as_deref().unwrap_or("?"),
            first.status,
            describe(first.error.as_ref()),
        ),
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use bubble_core::ErrorKind;

    use super::*;

    fn source(id_last: &str, text: &str) -> Value {
        json!({
            "app": "app1",
            "owners": ["ann", "bo", "cy"],
            "msg_id": format!("0000000000000000000000000000{id_last}"),
            "viewer": "bo",
            "conversation_kind": 2,
            "conversation_id": "g1",
            "conversation_of": ["2|g1"],
            "sender": "bo",
            "server_time": 1000,
            "text": text
        })
    }

    #[test]
    fn a_search_answer_becomes_hits_with_documents_scores_and_total() {
        let answer = json!({
            "took": 3,
            "timed_out": false,
            "_shards": { "total": 1, "successful": 1, "skipped": 0, "failed": 0 },
            "hits": {
                "total": { "value": 12, "relation": "eq" },
                "max_score": 2.5,
                "hits": [
                    { "_index": "chat", "_id": "app1|0000000000000000000000000000beef",
                      "_score": 2.5,
                      "_source": source("beef", "lunch today"),
                      "sort": [2.5, 1000, "0000000000000000000000000000beef"] },
                    { "_index": "chat", "_id": "app1|0000000000000000000000000000cafe",
                      "_score": 1.25,
                      "_source": source("cafe", "lunch?"),
                      "sort": [1.25, 1000, "0000000000000000000000000000cafe"] }
                ]
            }
        });
        let r = parse_search(answer.to_string().as_bytes(), &UserId::new("ann")).unwrap();
        assert_eq!(r.total, 12, "the total counts every match, not the page");
        assert_eq!(r.hits.len(), 2);
        assert_eq!(r.hits[0].score, 2.5);
        let d = &r.hits[0].doc;
        assert_eq!(d.app.as_str(), "app1");
        assert_eq!(d.owners, [UserId::new("ann")], "no other owner is named");
        assert_eq!(d.viewer.as_str(), "ann");
        assert_eq!(d.server_msg_id.to_hex(), "0000000000000000000000000000beef");
        assert_eq!(
            d.conversation,
            Conversation::group(&bubble_core::GroupId::new("g1"))
        );
        assert_eq!(d.sender.as_str(), "bo");
        assert_eq!(d.server_time, 1000);
        assert_eq!(d.text, "lunch today");
    }

    #[test]
    fn an_empty_search_answer_is_no_hits() {
        let answer = json!({ "hits": { "total": { "value": 0, "relation": "eq" }, "max_score": null, "hits": [] } });
        let r = parse_search(answer.to_string().as_bytes(), &UserId::new("ann")).unwrap();
        assert_eq!(r, SearchResults::default());
    }

    #[test]
    fn a_total_given_as_a_bare_number_is_read_too() {
        let answer = json!({ "hits": { "total": 7, "hits": [] } });
        assert_eq!(
            parse_search(answer.to_string().as_bytes(), &UserId::new("ann"))
                .unwrap()
                .total,
            7
        );
    }

    #[test]
    fn a_hit_that_is_not_a_bubble_message_is_an_internal_error() {
        let mut bad = source("beef", "x");
        bad["msg_id"] = json!("not-hex");
        let answer = json!({ "hits": { "total": { "value": 1 }, "hits": [
            { "_id": "weird", "_score": 1.0, "_source": bad }
        ] } });
        let e = parse_search(answer.to_string().as_bytes(), &UserId::new("ann")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert!(e.message().contains("weird"), "{e}");
    }

    #[test]
    fn a_hit_that_does_not_name_the_searching_owner_is_refused() {
        let answer = json!({ "hits": { "total": { "value": 1 }, "hits": [
            { "_id": "app1|beef", "_score": 1.0, "_source": source("beef", "x") }
        ] } });
        let e = parse_search(answer.to_string().as_bytes(), &UserId::new("di")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert!(e.message().contains("app1|beef"), "{e}");
    }

    #[test]
    fn a_bulk_answer_without_errors_is_ok() {
        let answer = json!({
            "took": 5, "errors": false,
            "items": [
                { "index": { "_index": "chat", "_id": "a|b|01", "_version": 1, "result": "created", "status": 201 } },
                { "index": { "_index": "chat", "_id": "a|b|02", "_version": 2, "result": "updated", "status": 200 } }
            ]
        });
        check_bulk(answer.to_string().as_bytes()).unwrap();
    }

    #[test]
    fn a_bulk_item_error_names_the_first_failure() {
        let answer = json!({
            "took": 5, "errors": true,
            "items": [
                { "index": { "_index": "chat", "_id": "a|b|01", "status": 201, "result": "created" } },
                { "index": { "_index": "chat", "_id": "a|b|02", "status": 400,
                    "error": { "type": "document_parsing_exception",
                               "reason": "[1:2] failed to parse field [server_time] of type [date]" } } },
                { "index": { "_index": "chat", "_id": "a|b|03", "status": 400,
                    "error": { "type": "document_parsing_exception", "reason": "other" } } }
            ]
        });
        let e = check_bulk(answer.to_string().as_bytes()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let m = e.message();
        assert!(m.contains("2 of 3"), "{m}");
        assert!(m.contains("a|b|02"), "names the first failed id: {m}");
        assert!(m.contains("document_parsing_exception"), "{m}");
        assert!(m.contains("server_time"), "carries the reason: {m}");
    }

    #[test]
    fn a_rejected_bulk_item_is_rate_limited_and_retryable() {
        let answer = json!({
            "errors": true,
            "items": [
                { "index": { "_id": "a|b|01", "status": 429,
                    "error": { "type": "es_rejected_execution_exception", "reason": "queue full" } } }
            ]
        });
        let e = check_bulk(answer.to_string().as_bytes()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert!(e.is_retryable());
    }

    #[test]
    fn a_bulk_item_failing_on_the_cluster_side_is_unavailable() {
        let answer = json!({
            "errors": true,
            "items": [
                { "index": { "_id": "a|b|01", "status": 503,
                    "error": { "type": "unavailable_shards_exception", "reason": "primary shard is not active" } } }
            ]
        });
        assert_eq!(
            check_bulk(answer.to_string().as_bytes())
                .unwrap_err()
                .kind(),
            ErrorKind::Unavailable
        );
    }
}

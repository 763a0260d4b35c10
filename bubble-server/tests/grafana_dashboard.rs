//! The Grafana dashboard of `docs/grafana/bubble.json` queries only metrics
//! the server exports: a renamed metric breaks this test, not a panel that
//! silently shows "No data".

mod support;

use std::collections::BTreeSet;

use bubble_client::transport::http_request;
use bubble_core::{Content, Conversation, UserId};
use serde_json::Value;
use support::*;

const DASHBOARD: &str = include_str!("../../docs/grafana/bubble.json");

/// Every PromQL expression of the dashboard: the panels' queries and the
/// template variables' (`definition`), wherever they are nested.
fn queries(node: &Value, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr" | "definition", Value::String(q)) => out.push(q.clone()),
                    _ => queries(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| queries(item, out)),
        _ => {}
    }
}

/// The metric names an expression selects: bubble's metrics all start with
/// `bubble_`, and no PromQL function, keyword or label of the dashboard does.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(start) = rest.find("bubble_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// The sample names of a Prometheus text exposition (`_bucket`, `_sum`,
/// `_count` and `_total` included, as PromQL sees them).
fn exported_samples(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            line[..end].to_owned()
        })
        .collect()
}

#[test]
fn the_dashboard_is_grafana_json_with_a_query_in_every_panel() {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    assert_eq!(dashboard["uid"], "bubble-server");
    let panels = dashboard["panels"].as_array().expect("a list of panels");
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let targets = panel["targets"].as_array().expect("targets");
        assert!(
            !targets.is_empty(),
            "panel {:?} queries nothing",
            panel["title"]
        );
        for target in targets {
            let expr = target["expr"].as_str().expect("a PromQL expression");
            assert!(
                !metric_names(expr).is_empty(),
                "panel {:?}: {expr:?} queries no bubble metric",
                panel["title"]
            );
        }
    }
    let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for wanted in [
        "Open connections",
        "Handshakes by result",
        "Messages in",
        "Pushes out",
        "Send latency",
        "Push delay",
        "Errors by kind",
    ] {
        assert!(
            titles.contains(&wanted),
            "no panel {wanted:?} in {titles:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_queries_is_exported_by_the_server() {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    queries(&dashboard, &mut exprs);
    let queried: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    assert!(queried.len() >= 10, "too few metrics queried: {queried:?}");

    // The embedded default backends (SQLite + tantivy): in-memory ones have
    // no circuit breaker, so no `bubble_breaker_state` series.
    let server = Server::start(Vec::new());
    // A message sent and pushed, so the latency histograms have samples.
    let (alice, _alice_events) = server.client("alice", "laptop", false).await;
    let (_bob, mut bob_events) = server.client("bob", "phone", true).await;
    alice
        .send(
            Conversation::direct(&UserId::new("bob")),
            Content::text("for the dashboard"),
        )
        .await
        .expect("the message is acknowledged");
    assert_eq!(
        texts(&entries(&mut bob_events, 1).await),
        vec!["for the dashboard"]
    );

    let (status, body) = http_request(&server.http, "GET", "/metrics", None, None)
        .await
        .expect("/metrics answers");
    assert_eq!(status, 200);
    let exposition = String::from_utf8(body).expect("the exposition is text");
    let exported = exported_samples(&exposition);
    let missing: Vec<&String> = queried.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries {missing:?}, which /metrics does not export; \
         fix docs/grafana/bubble.json or the metric's name in src/metrics.rs"
    );
    for histogram in [
        "bubble_send_seconds_count",
        "bubble_push_delay_seconds_count",
    ] {
        let count = exposition
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{histogram} ")))
            .unwrap_or_else(|| panic!("{histogram} is exported"));
        assert_ne!(count.trim(), "0", "{histogram} has a sample after a send");
    }
}

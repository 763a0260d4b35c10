//! Prometheus metrics: counters, a gauge and histograms kept by
//! `prometheus-client`, exposed in the Prometheus text format.

use std::time::Duration;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use bubble_core::ErrorKind;
use bubble_core::wire::{ERROR_TABLE, error_wire};

use crate::gate::admission::Refusal;

/// Every cap a connection can be refused by, in label order.
const REFUSALS: [Refusal; 3] = [Refusal::Full, Refusal::PerAddress, Refusal::Unauthenticated];

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// A latency histogram in seconds.
#[derive(Debug, Clone)]
pub struct Seconds(Histogram);

impl Seconds {
    fn new() -> Seconds {
        Seconds(Histogram::new(BUCKETS))
    }

    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        self.0.observe(d.as_secs_f64());
    }
}

/// The ports the engine can go on without.
const DEGRADABLE: [&str; 2] = ["presence", "cache"];

/// One label, as families of this server have.
type Label = [(&'static str, &'static str); 1];

/// `bubble_notifications_total`'s outcomes, present at zero from the start.
const NOTIFICATION_OUTCOMES: [&str; 5] =
    ["sent", "invalid_token", "retried", "dropped", "suppressed"];

/// `bubble_send_hooks_total`'s outcomes, present at zero from the start.
const HOOK_OUTCOMES: [&str; 5] = [
    "refused",
    "replaced",
    "failed",
    "delivered",
    "after_send_failed",
];

/// Everything the server counts. The handles share their values with the
/// registry, so counting is one atomic add.
pub struct Metrics {
    registry: Registry,
    /// Open client connections.
    pub connections: Gauge,
    /// Connections accepted since start.
    pub connections_total: Counter,
    /// Completed handshakes (full).
    pub handshakes_full: Counter,
    /// Completed resumptions.
    pub handshakes_resumed: Counter,
    /// Failed handshakes.
    pub handshakes_failed: Counter,
    /// Connections that did not finish their handshake (WebSocket upgrade
    /// included) in time.
    pub handshake_timeouts: Counter,
    /// Connections refused by a cap, by which one.
    refused: [Counter; REFUSALS.len()],
    /// The connection cap in force (after the descriptor reserve).
    pub connection_limit: Gauge,
    /// Connections reset because the peer did not read within the write
    /// deadline.
    pub write_timeouts: Counter,
    /// Messages accepted (send acks).
    pub messages_in: Counter,
    /// Push frames written to clients.
    pub pushes_out: Counter,
    /// Frames that could not be decoded (unknown commands included).
    pub malformed_frames: Counter,
    /// Connections closed for being too slow.
    pub slow_consumers: Counter,
    /// Requests refused by the rate limit.
    pub rate_limited: Counter,
    /// Error answers, one per row of the error table.
    errors: [Counter; ERROR_TABLE.len()],
    /// Time an engine send took (store commit included).
    pub send_latency: Seconds,
    /// Time from a message's server time to its push being written.
    pub push_delay: Seconds,
    /// How late the stall watch's timer fired (see `stalls.rs`).
    pub runtime_stalls: Seconds,
    /// Requests answered `UNAVAILABLE` at the request deadline.
    pub requests_timed_out: Counter,
    /// Client requests running now, all connections together.
    pub requests_in_flight: Gauge,
    /// Each backend's breaker: 0 closed, 1 open, 2 half-open.
    breaker_state: Family<Label, Gauge>,
    /// 1 while an optional backend (presence, cache) is down and the engine
    /// goes on without it.
    degraded: Family<Label, Gauge>,
    /// What the push-notification path did, by outcome.
    notifications: Family<Label, Counter>,
    /// What the send hooks did, by outcome.
    send_hooks: Family<Label, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every family registered, every label present (at zero).
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        // Help texts without their final period: the registry adds it.
        let connections = Gauge::default();
        registry.register(
            "bubble_connections",
            "Open client connections",
            connections.clone(),
        );
        let connections_total = counter(
            &mut registry,
            "bubble_connections",
            "Client connections accepted",
        );
        let handshakes = Family::<Label, Counter>::default();
        registry.register(
            "bubble_handshakes",
            "Handshakes by result",
            handshakes.clone(),
        );
        let result = |r: &'static str| handshakes.get_or_create(&[("result", r)]).clone();
        let (handshakes_full, handshakes_resumed, handshakes_failed, handshake_timeouts) = (
            result("full"),
            result("resumed"),
            result("failed"),
            result("timeout"),
        );
        let refused_family = Family::<Label, Counter>::default();
        registry.register(
            "bubble_connections_refused",
            "Connections refused by a cap, by cap",
            refused_family.clone(),
        );
        let refused = REFUSALS.map(|r| refused_family.get_or_create(&[("cap", r.label())]).clone());
        let connection_limit = Gauge::default();
        registry.register(
            "bubble_connection_limit",
            "The connection cap in force, after the descriptor reserve",
            connection_limit.clone(),
        );
        let write_timeouts = counter(
            &mut registry,
            "bubble_write_timeouts",
            "Connections reset because the peer did not read within the write deadline",
        );
        let messages_in = counter(
            &mut registry,
            "bubble_messages_in",
            "Messages accepted and acknowledged",
        );
        let pushes_out = counter(
            &mut registry,
            "bubble_pushes_out",
            "Push frames written to clients",
        );
        let malformed_frames = counter(
            &mut registry,
            "bubble_malformed_frames",
            "Frames that could not be decoded",
        );
        let slow_consumers = counter(
            &mut registry,
            "bubble_slow_consumers",
            "Connections closed for reading too slowly",
        );
        let rate_limited = counter(
            &mut registry,
            "bubble_rate_limited",
            "Requests refused by the rate limit",
        );
        let errors_family = Family::<Label, Counter>::default();
        registry.register(
            "bubble_errors",
            "Error answers by kind",
            errors_family.clone(),
        );
        let errors =
            ERROR_TABLE.map(|row| errors_family.get_or_create(&[("kind", row.name)]).clone());
        let send_latency = Seconds::new();
        registry.register(
            "bubble_send_seconds",
            "Engine send latency, store commit included",
            send_latency.0.clone(),
        );
        let push_delay = Seconds::new();
        registry.register(
            "bubble_push_delay_seconds",
            "From a message's server time to its push being written",
            push_delay.0.clone(),
        );
        let runtime_stalls = Seconds::new();
        registry.register(
            "bubble_runtime_stall_seconds",
            "How late a 10 ms timer on the server's async runtime fired: time every worker \
             thread was busy with something that did not yield",
            runtime_stalls.0.clone(),
        );
        let requests_timed_out = counter(
            &mut registry,
            "bubble_requests_timed_out",
            "Requests answered UNAVAILABLE at the request deadline",
        );
        let requests_in_flight = Gauge::default();
        registry.register(
            "bubble_requests_in_flight",
            "Client requests running now",
            requests_in_flight.clone(),
        );
        let breaker_state = Family::<Label, Gauge>::default();
        registry.register(
            "bubble_breaker_state",
            "Each backend's circuit breaker: 0 closed, 1 open, 2 half-open",
            breaker_state.clone(),
        );
        let degraded = Family::<Label, Gauge>::default();
        registry.register(
            "bubble_degraded",
            "1 while an optional backend is down and the engine goes on without it",
            degraded.clone(),
        );
        for port in DEGRADABLE {
            let _ = degraded.get_or_create(&[("port", port)]);
        }
        let notifications = Family::<Label, Counter>::default();
        registry.register(
            "bubble_notifications",
            "Push notifications by outcome (sent, invalid_token, retried, dropped, suppressed)",
            notifications.clone(),
        );
        let send_hooks = Family::<Label, Counter>::default();
        registry.register(
            "bubble_send_hooks",
            "Send hook outcomes (refused, replaced, failed, delivered, after_send_failed)",
            send_hooks.clone(),
        );
        for outcome in NOTIFICATION_OUTCOMES {
            let _ = notifications.get_or_create(&[("outcome", outcome)]);
        }
        for outcome in HOOK_OUTCOMES {
            let _ = send_hooks.get_or_create(&[("outcome", outcome)]);
        }
        Metrics {
            registry,
            connections,
            connections_total,
            handshakes_full,
            handshakes_resumed,
            handshakes_failed,
            handshake_timeouts,
            refused,
            connection_limit,
            write_timeouts,
            messages_in,
            pushes_out,
            malformed_frames,
            slow_consumers,
            rate_limited,
            errors,
            send_latency,
            push_delay,
            runtime_stalls,
            requests_timed_out,
            requests_in_flight,
            breaker_state,
            degraded,
            notifications,
            send_hooks,
        }
    }

    /// Brings the notification and send-hook counters up to the engine's
    /// counts (read when scraped).
    pub fn set_integrations(&self, engine: &bubble_core::Engine) {
        fn catch_up(family: &Family<Label, Counter>, outcome: &'static str, now: u64) {
            let c = family.get_or_create(&[("outcome", outcome)]);
            c.inc_by(now.saturating_sub(c.get()));
        }
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        if let Some(n) = engine.notification_counts() {
            let counts = [
                &n.sent,
                &n.invalid_tokens,
                &n.retried,
                &n.dropped,
                &n.suppressed,
            ];
            for (outcome, count) in NOTIFICATION_OUTCOMES.into_iter().zip(counts) {
                catch_up(&self.notifications, outcome, load(count));
            }
        }
        let h = engine.hook_counts();
        let counts = [
            &h.refused,
            &h.replaced,
            &h.failed,
            &h.delivered,
            &h.after_send_failed,
        ];
        for (outcome, count) in HOOK_OUTCOMES.into_iter().zip(counts) {
            catch_up(&self.send_hooks, outcome, load(count));
        }
    }

    /// The gauge of `backend`'s breaker (present, at 0, from the first call).
    pub fn breaker(&self, backend: &'static str) -> Gauge {
        self.breaker_state
            .get_or_create(&[("backend", backend)])
            .clone()
    }

    /// Shows which optional backends the engine is going on without.
    pub fn set_degraded(&self, now: bubble_core::engine::Degradation) {
        for (port, down) in [("presence", now.presence), ("cache", now.cache)] {
            self.degraded
                .get_or_create(&[("port", port)])
                .set(i64::from(down));
        }
    }

    /// Counts a refused connection by the cap it hit.
    pub fn refused(&self, refusal: Refusal) {
        let i = REFUSALS.iter().position(|r| *r == refusal).expect("listed");
        self.refused[i].inc();
    }

    /// Counts an error answer by its kind.
    pub fn error(&self, kind: ErrorKind) {
        let row = error_wire(kind);
        if let Some(i) = ERROR_TABLE.iter().position(|r| r == row) {
            self.errors[i].inc();
        }
    }

    /// The Prometheus text exposition ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        prometheus_text::encode(&mut out, &self.registry).expect("a String takes any text");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every family with its type, help text and labels, as dashboards know them.
    const FAMILIES: [(&str, &str, &str); 21] = [
        ("bubble_connections", "gauge", "Open client connections."),
        (
            "bubble_connections_total",
            "counter",
            "Client connections accepted.",
        ),
        (
            "bubble_handshakes_total",
            "counter",
            "Handshakes by result.",
        ),
        (
            "bubble_connections_refused_total",
            "counter",
            "Connections refused by a cap, by cap.",
        ),
        (
            "bubble_connection_limit",
            "gauge",
            "The connection cap in force, after the descriptor reserve.",
        ),
        (
            "bubble_write_timeouts_total",
            "counter",
            "Connections reset because the peer did not read within the write deadline.",
        ),
        (
            "bubble_messages_in_total",
            "counter",
            "Messages accepted and acknowledged.",
        ),
        (
            "bubble_pushes_out_total",
            "counter",
            "Push frames written to clients.",
        ),
        (
            "bubble_malformed_frames_total",
            "counter",
            "Frames that could not be decoded.",
        ),
        (
            "bubble_slow_consumers_total",
            "counter",
            "Connections closed for reading too slowly.",
        ),
        (
            "bubble_rate_limited_total",
            "counter",
            "Requests refused by the rate limit.",
        ),
        ("bubble_errors_total", "counter", "Error answers by kind."),
        (
            "bubble_send_seconds",
            "histogram",
            "Engine send latency, store commit included.",
        ),
        (
            "bubble_push_delay_seconds",
            "histogram",
            "From a message's server time to its push being written.",
        ),
        (
            "bubble_runtime_stall_seconds",
            "histogram",
            "How late a 10 ms timer on the server's async runtime fired: time every worker \
             thread was busy with something that did not yield.",
        ),
        (
            "bubble_requests_timed_out_total",
            "counter",
            "Requests answered UNAVAILABLE at the request deadline.",
        ),
        (
            "bubble_requests_in_flight",
            "gauge",
            "Client requests running now.",
        ),
        (
            "bubble_breaker_state",
            "gauge",
            "Each backend's circuit breaker: 0 closed, 1 open, 2 half-open.",
        ),
        (
            "bubble_degraded",
            "gauge",
            "1 while an optional backend is down and the engine goes on without it.",
        ),
        (
            "bubble_notifications_total",
            "counter",
            "Push notifications by outcome (sent, invalid_token, retried, dropped, suppressed).",
        ),
        (
            "bubble_send_hooks_total",
            "counter",
            "Send hook outcomes (refused, replaced, failed, delivered, after_send_failed).",
        ),
    ];

    #[test]
    fn every_family_is_exported_with_its_type_and_help() {
        let m = Metrics::new();
        // Breakers are made as backends connect (in-memory ones have none).
        m.breaker("sqlite");
        let text = m.render();
        for (name, kind, help) in FAMILIES {
            assert!(
                text.contains(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n")),
                "missing {name} in\n{text}"
            );
        }
        assert_eq!(
            text.matches("# TYPE ").count(),
            FAMILIES.len(),
            "no other family:\n{text}"
        );
    }

    #[test]
    fn labelled_families_list_every_label_from_the_start() {
        let text = Metrics::new().render();
        for cap in ["full", "per_address", "unauthenticated"] {
            assert!(
                text.contains(&format!(
                    "bubble_connections_refused_total{{cap=\"{cap}\"}} 0\n"
                )),
                "{text}"
            );
        }
        for result in ["full", "resumed", "failed", "timeout"] {
            assert!(
                text.contains(&format!(
                    "bubble_handshakes_total{{result=\"{result}\"}} 0\n"
                )),
                "{text}"
            );
        }
        for row in &ERROR_TABLE {
            assert!(
                text.contains(&format!("bubble_errors_total{{kind=\"{}\"}} 0\n", row.name)),
                "{text}"
            );
        }
    }

    #[test]
    fn the_exposition_counts_and_has_cumulative_buckets() {
        let m = Metrics::new();
        m.connections.inc();
        m.messages_in.inc();
        m.send_latency.observe(Duration::from_micros(300));
        m.send_latency.observe(Duration::from_millis(3));
        m.error(ErrorKind::Unavailable);
        m.error(ErrorKind::Conflict);
        let text = m.render();
        for line in [
            "bubble_connections 1\n",
            "bubble_messages_in_total 1\n",
            "bubble_pushes_out_total 0\n",
            "bubble_errors_total{kind=\"unavailable\"} 1\n",
            "bubble_errors_total{kind=\"conflict\"} 1\n",
            "bubble_send_seconds_bucket{le=\"0.0001\"} 0\n",
            "bubble_send_seconds_bucket{le=\"0.0005\"} 1\n",
            "bubble_send_seconds_bucket{le=\"0.005\"} 2\n",
            "bubble_send_seconds_bucket{le=\"5\"} 2\n",
            "bubble_send_seconds_bucket{le=\"+Inf\"} 2\n",
            "bubble_send_seconds_count 2\n",
            "bubble_push_delay_seconds_count 0\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn breaker_states_and_degraded_ports_are_gauges_by_name() {
        let m = Metrics::new();
        m.breaker("mysql").set(1);
        m.breaker("redis");
        m.set_degraded(bubble_core::engine::Degradation {
            presence: true,
            ..Default::default()
        });
        m.requests_timed_out.inc();
        let text = m.render();
        for line in [
            "bubble_breaker_state{backend=\"mysql\"} 1\n",
            "bubble_breaker_state{backend=\"redis\"} 0\n",
            "bubble_degraded{port=\"presence\"} 1\n",
            "bubble_degraded{port=\"cache\"} 0\n",
            "bubble_requests_timed_out_total 1\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn the_content_type_is_the_prometheus_text_format() {
        assert!(CONTENT_TYPE.starts_with("text/plain; version=0.0.4"));
    }
}

//! Prometheus metrics, kept as atomics and rendered in the text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use bubble_core::ErrorKind;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// A latency histogram.
#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

const ERROR_KINDS: [(ErrorKind, &str); 12] = [
    (ErrorKind::InvalidInput, "invalid_input"),
    (ErrorKind::TooLarge, "too_large"),
    (ErrorKind::NotFound, "not_found"),
    (ErrorKind::AlreadyExists, "already_exists"),
    (ErrorKind::Unauthenticated, "unauthenticated"),
    (ErrorKind::PermissionDenied, "permission_denied"),
    (ErrorKind::RateLimited, "rate_limited"),
    (ErrorKind::Unavailable, "unavailable"),
    (ErrorKind::Timeout, "timeout"),
    (ErrorKind::Expired, "expired"),
    (ErrorKind::Conflict, "conflict"),
    (ErrorKind::Internal, "internal"),
];

/// Everything the server counts.
#[derive(Default)]
pub struct Metrics {
    /// Open client connections.
    pub connections: AtomicI64,
    /// Connections accepted since start.
    pub connections_total: AtomicU64,
    /// Completed handshakes (full).
    pub handshakes_full: AtomicU64,
    /// Completed resumptions.
    pub handshakes_resumed: AtomicU64,
    /// Failed handshakes.
    pub handshakes_failed: AtomicU64,
    /// Messages accepted (send acks).
    pub messages_in: AtomicU64,
    /// Push frames written to clients.
    pub pushes_out: AtomicU64,
    /// Frames that could not be decoded.
    pub malformed_frames: AtomicU64,
    /// Connections closed for being too slow.
    pub slow_consumers: AtomicU64,
    /// Requests refused by the rate limit.
    pub rate_limited: AtomicU64,
    errors: [AtomicU64; ERROR_KINDS.len()],
    /// Time an engine send took (store commit included).
    pub send_latency: Histogram,
    /// Time from a message's server time to its push being written.
    pub push_delay: Histogram,
}

impl Metrics {
    /// Counts an error answer by kind.
    pub fn error(&self, kind: ErrorKind) {
        if let Some(i) = ERROR_KINDS.iter().position(|(k, _)| *k == kind) {
            self.errors[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let gauge = |out: &mut String, name: &str, help: &str, v: i64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        let counter = |out: &mut String, name: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        };
        gauge(
            &mut out,
            "bubble_connections",
            "Open client connections.",
            self.connections.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "bubble_connections_total",
            "Client connections accepted.",
            &self.connections_total,
        );
        let _ = writeln!(
            out,
            "# HELP bubble_handshakes_total Handshakes by result.\n# TYPE bubble_handshakes_total counter"
        );
        for (result, v) in [
            ("full", &self.handshakes_full),
            ("resumed", &self.handshakes_resumed),
            ("failed", &self.handshakes_failed),
        ] {
            let _ = writeln!(
                out,
                "bubble_handshakes_total{{result=\"{result}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        counter(
            &mut out,
            "bubble_messages_in_total",
            "Messages accepted and acknowledged.",
            &self.messages_in,
        );
        counter(
            &mut out,
            "bubble_pushes_out_total",
            "Push frames written to clients.",
            &self.pushes_out,
        );
        counter(
            &mut out,
            "bubble_malformed_frames_total",
            "Frames that could not be decoded.",
            &self.malformed_frames,
        );
        counter(
            &mut out,
            "bubble_slow_consumers_total",
            "Connections closed for reading too slowly.",
            &self.slow_consumers,
        );
        counter(
            &mut out,
            "bubble_rate_limited_total",
            "Requests refused by the rate limit.",
            &self.rate_limited,
        );
        let _ = writeln!(
            out,
            "# HELP bubble_errors_total Error answers by kind.\n# TYPE bubble_errors_total counter"
        );
        for (i, (_, name)) in ERROR_KINDS.iter().enumerate() {
            let _ = writeln!(
                out,
                "bubble_errors_total{{kind=\"{name}\"}} {}",
                self.errors[i].load(Ordering::Relaxed)
            );
        }
        self.send_latency.render(
            &mut out,
            "bubble_send_seconds",
            "Engine send latency, store commit included.",
        );
        self.push_delay.render(
            &mut out,
            "bubble_push_delay_seconds",
            "From a message's server time to its push being written.",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_has_every_family_and_cumulative_buckets() {
        let m = Metrics::default();
        m.send_latency.observe(Duration::from_micros(300));
        m.send_latency.observe(Duration::from_millis(3));
        m.error(ErrorKind::Unavailable);
        let text = m.render();
        for family in [
            "bubble_connections ",
            "bubble_messages_in_total",
            "bubble_pushes_out_total",
            "bubble_errors_total{kind=\"unavailable\"} 1",
            "bubble_send_seconds_bucket{le=\"0.0005\"} 1",
            "bubble_send_seconds_bucket{le=\"0.005\"} 2",
            "bubble_send_seconds_count 2",
            "bubble_push_delay_seconds_count 0",
        ] {
            assert!(text.contains(family), "missing {family} in\n{text}");
        }
    }
}

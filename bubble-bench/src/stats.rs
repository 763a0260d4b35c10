//! Counting: latency histograms (HDR), loss and duplicate detection by
//! per-sender sequence numbers, and the bench's clock.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Instant;

use hdrhistogram::Histogram;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds on the bench's monotonic clock (shared by every task, so a
/// receiver can subtract a sender's stamp).
pub fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

/// A latency histogram in microseconds (1 µs to 100 s, 2 significant
/// digits: 1% resolution), allocated on its first sample.
///
/// Lazy and small on purpose: a run with 10,000 receivers has 20,000 of
/// them, and eagerly allocated 3-digit histograms (220 KB each) made the
/// bench fault in pages on the first message and slowed what it measured.
#[derive(Default)]
pub struct Latency(Option<Box<Histogram<u64>>>);

impl Latency {
    /// An empty histogram (no memory yet).
    pub fn new() -> Latency {
        Latency(None)
    }

    fn histogram(&mut self) -> &mut Histogram<u64> {
        self.0.get_or_insert_with(|| {
            Box::new(Histogram::new_with_bounds(1, 100_000_000, 2).expect("valid bounds"))
        })
    }

    /// Records a latency given in nanoseconds.
    pub fn record_ns(&mut self, ns: u64) {
        let us = (ns / 1000).clamp(1, 100_000_000);
        self.histogram().record(us).expect("clamped into bounds");
    }

    /// Adds another histogram's samples.
    pub fn add(&mut self, other: &Latency) {
        if let Some(o) = &other.0 {
            self.histogram().add(o.as_ref()).expect("same bounds");
        }
    }

    /// Its percentiles.
    pub fn percentiles(&self) -> Percentiles {
        self.0.as_deref().map(Percentiles::of).unwrap_or_default()
    }
}

/// Percentiles of a histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    /// How many samples.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    /// Reads them off `h`.
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }

    /// As JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "count": self.count, "p50_ms": self.p50, "p90_ms": self.p90,
            "p99_ms": self.p99, "p999_ms": self.p999, "max_ms": self.max,
        })
    }
}

/// Which sequence numbers of each sender one receiver has seen.
#[derive(Default)]
pub struct Seen {
    by_sender: HashMap<u32, Vec<u64>>,
    /// Distinct messages received.
    pub unique: u64,
    /// Messages received more than once.
    pub duplicates: u64,
}

impl Seen {
    /// Notes message `seq` from `sender`; false if it was a duplicate.
    pub fn note(&mut self, sender: u32, seq: u64) -> bool {
        let bits = self.by_sender.entry(sender).or_default();
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if bits.len() <= word {
            bits.resize(word + 1, 0);
        }
        if bits[word] & (1 << bit) != 0 {
            self.duplicates += 1;
            false
        } else {
            bits[word] |= 1 << bit;
            self.unique += 1;
            true
        }
    }
}

impl Seen {
    /// Whether message `seq` from `sender` was seen.
    pub fn contains(&self, sender: u32, seq: u64) -> bool {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        self.by_sender
            .get(&sender)
            .and_then(|bits| bits.get(word))
            .is_some_and(|w| w & (1 << bit) != 0)
    }
}

/// What one receiving task hands back when it stops.
pub struct ReceiverReport {
    /// End-to-end latency (send stamp to receipt).
    pub e2e: Latency,
    /// Send to ack (durable) latency of this connection's own sends.
    pub ack: Latency,
    /// Loss and duplicate accounting.
    pub seen: Seen,
    /// Error frames received (answers to requests), by code.
    pub errors: HashMap<i32, u64>,
    /// Versions (or group seqs) missing between those this device learnt
    /// of from its acks and pushes (stores may leave gaps; the memory store
    /// does not).
    pub gaps: u64,
    /// Connections the server closed (or that broke) before the end.
    pub closed: u64,
}

impl ReceiverReport {
    /// An empty report.
    pub fn new() -> ReceiverReport {
        ReceiverReport {
            e2e: Latency::new(),
            ack: Latency::new(),
            seen: Seen::default(),
            errors: HashMap::new(),
            gaps: 0,
            closed: 0,
        }
    }

    /// Adds another report into this one.
    pub fn merge(&mut self, other: ReceiverReport) {
        self.e2e.add(&other.e2e);
        self.ack.add(&other.ack);
        self.seen.unique += other.seen.unique;
        self.seen.duplicates += other.seen.duplicates;
        for (code, n) in other.errors {
            *self.errors.entry(code).or_default() += n;
        }
        self.gaps += other.gaps;
        self.closed += other.closed;
    }
}

impl Default for ReceiverReport {
    fn default() -> Self {
        ReceiverReport::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_seen_twice_is_a_duplicate() {
        let mut seen = Seen::default();
        assert!(seen.note(1, 0));
        assert!(seen.note(1, 200));
        assert!(seen.note(2, 0), "another sender's seq 0 is another message");
        assert!(!seen.note(1, 200));
        assert_eq!((seen.unique, seen.duplicates), (3, 1));
        assert!(seen.contains(1, 200));
        assert!(!seen.contains(1, 199));
        assert!(!seen.contains(3, 0), "a sender never heard from");
    }

    #[test]
    fn percentiles_are_in_milliseconds() {
        let mut h = Latency::new();
        assert_eq!(h.percentiles().count, 0, "empty until the first sample");
        for us in 1..=1000u64 {
            h.record_ns(us * 1000);
        }
        let p = h.percentiles();
        assert_eq!(p.count, 1000);
        assert!((p.p50 - 0.5).abs() < 0.01, "{p:?}");
        assert!((p.max - 1.0).abs() < 0.01, "{p:?}");
    }
}

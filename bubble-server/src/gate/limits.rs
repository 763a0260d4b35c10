//! Rate limits: a token bucket per connection, one per source address for
//! full handshakes (each costs an RSA decryption), and a throttle on typing
//! notices (each is a push to every member of a group).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use parking_lot::Mutex;

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: u32, burst: u32) -> TokenBucket {
        let burst = f64::from(burst.max(rate).max(1));
        TokenBucket {
            rate: f64::from(rate.max(1)),
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self) -> bool {
        self.take_at(Instant::now())
    }

    fn take_at(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Per-address buckets for full handshakes, swept when the map grows, under
/// one global ceiling (so many addresses together cannot make the server
/// run unbounded RSA decryptions either).
pub struct HandshakeLimiter {
    rate: u32,
    buckets: Mutex<HashMap<IpAddr, TokenBucket>>,
    global: Mutex<TokenBucket>,
}

/// Sweep idle buckets once this many addresses are tracked.
const SWEEP_AT: usize = 65_536;

impl HandshakeLimiter {
    /// `rate` full handshakes a second per address (burst: twice that), and
    /// at most `global` a second in all.
    pub fn new(rate: u32, global: u32) -> HandshakeLimiter {
        HandshakeLimiter {
            rate,
            buckets: Mutex::new(HashMap::new()),
            global: Mutex::new(TokenBucket::new(global, global)),
        }
    }

    /// Whether `ip` may run one more full handshake now.
    pub fn allow(&self, ip: IpAddr) -> bool {
        let mut buckets = self.buckets.lock();
        if buckets.len() >= SWEEP_AT {
            let now = Instant::now();
            // A bucket idle for 10 s is full again: forgetting it changes nothing.
            buckets.retain(|_, b| now.saturating_duration_since(b.last).as_secs() < 10);
        }
        let allowed = buckets
            .entry(ip)
            .or_insert_with(|| TokenBucket::new(self.rate, self.rate.saturating_mul(2)))
            .take();
        allowed && self.global.lock().take()
    }
}

/// At most one typing notice per conversation per [`TYPING_INTERVAL`] from
/// one connection: a client types in bursts, and a notice to a group of 500
/// is 500 pushes, so a burst would be a cheap way to make the server push.
/// Notices over it are dropped (typing is a hint: a later one says the
/// same).
#[derive(Debug, Default)]
pub struct TypingThrottle {
    /// The body of each recent notice (it names the conversation) and when
    /// it was let through.
    recent: Vec<(bytes::Bytes, Instant)>,
}

/// How often one conversation's typing notice goes through.
pub const TYPING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// Conversations remembered at once; a client typing in more is throttled
/// per conversation all the same once the oldest expire.
const TYPING_REMEMBERED: usize = 16;

impl TypingThrottle {
    /// Whether the notice with this body may go out now.
    pub fn allow(&mut self, body: &bytes::Bytes) -> bool {
        self.allow_at(body, Instant::now())
    }

    fn allow_at(&mut self, body: &bytes::Bytes, now: Instant) -> bool {
        self.recent
            .retain(|(_, at)| now.saturating_duration_since(*at) < TYPING_INTERVAL);
        if self.recent.iter().any(|(b, _)| b == body) || self.recent.len() >= TYPING_REMEMBERED {
            return false;
        }
        self.recent.push((body.clone(), now));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let start = Instant::now();
        let mut b = TokenBucket::new(10, 20);
        b.last = start;
        let burst = (0..25).filter(|_| b.take_at(start)).count();
        assert_eq!(burst, 20);
        assert!(!b.take_at(start));
        assert!(
            b.take_at(start + Duration::from_millis(100)),
            "one token after 1/10 s"
        );
        assert!(!b.take_at(start + Duration::from_millis(100)));
    }

    #[test]
    fn handshakes_are_limited_per_address() {
        let l = HandshakeLimiter::new(2, 1000);
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        assert_eq!(
            (0..10).filter(|_| l.allow(a)).count(),
            4,
            "burst of twice the rate"
        );
        assert!(l.allow(b), "another address has its own bucket");
    }

    #[test]
    fn one_typing_notice_per_conversation_goes_through_every_interval() {
        let mut t = TypingThrottle::default();
        let start = Instant::now();
        let (to_bob, to_hall) = (bytes::Bytes::from("bob"), bytes::Bytes::from("hall"));
        assert!(t.allow_at(&to_bob, start));
        assert!(!t.allow_at(&to_bob, start + Duration::from_millis(500)));
        assert!(
            t.allow_at(&to_hall, start),
            "another conversation is its own"
        );
        assert!(t.allow_at(&to_bob, start + TYPING_INTERVAL));
    }

    #[test]
    fn typing_in_many_conversations_at_once_is_bounded_too() {
        let mut t = TypingThrottle::default();
        let start = Instant::now();
        let allowed = (0..100)
            .filter(|i| t.allow_at(&bytes::Bytes::from(format!("c{i}")), start))
            .count();
        assert_eq!(allowed, TYPING_REMEMBERED);
    }

    #[test]
    fn a_global_ceiling_caps_every_address_together() {
        let l = HandshakeLimiter::new(100, 5);
        let allowed = (0..20u8)
            .filter(|i| l.allow(IpAddr::from([127, 0, 0, *i])))
            .count();
        assert_eq!(allowed, 5);
    }
}

//! LIM-4: a token bucket per gateway, shared by all its tunnels; time is the caller's.

use std::time::{Duration, Instant};

/// A byte-granular token bucket. A rate of zero means unlimited.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Bytes per second.
    rate: u64,
    /// The most bytes that can pass at once.
    burst: u64,
    tokens: u64,
    last: Option<Instant>,
}

impl TokenBucket {
    /// A bucket for `bits_per_second` (0: unlimited). The burst is 50 ms of traffic, at least
    /// 16 KiB so that a few full-size packets always fit.
    pub fn new(bits_per_second: u64) -> Self {
        let rate = bits_per_second / 8;
        let burst = (rate / 20).max(16 * 1024);
        Self {
            rate,
            burst,
            tokens: burst,
            last: None,
        }
    }

    /// The configured rate in bits per second.
    pub fn bits_per_second(&self) -> u64 {
        self.rate * 8
    }

    /// Takes `bytes` tokens if available at `now`; `false` means the packet must be dropped.
    pub fn take(&mut self, bytes: usize, now: Instant) -> bool {
        if self.rate == 0 {
            return true;
        }
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last);
            let add = elapsed_tokens(elapsed, self.rate);
            if add > 0 {
                self.tokens = (self.tokens.saturating_add(add)).min(self.burst);
                self.last = Some(now);
            }
        } else {
            self.last = Some(now);
        }
        let bytes = bytes as u64;
        if self.tokens >= bytes {
            self.tokens -= bytes;
            true
        } else {
            false
        }
    }
}

fn elapsed_tokens(elapsed: Duration, rate: u64) -> u64 {
    let nanos = elapsed.as_nanos().min(u128::from(u64::MAX));
    u64::try_from(nanos * u128::from(rate) / 1_000_000_000).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_then_refills_on_the_virtual_clock() {
        let t0 = Instant::now();
        // 8 kbit/s = 1000 B/s, burst 16 KiB.
        let mut b = TokenBucket::new(8_000);
        let passed = (0..20).filter(|_| b.take(1000, t0)).count();
        assert_eq!(passed, 16);
        assert!(!b.take(1000, t0 + Duration::from_millis(500)));
        assert!(b.take(1000, t0 + Duration::from_millis(1500)));
        assert!(!b.take(1000, t0 + Duration::from_millis(1500)));
    }

    #[test]
    fn zero_is_unlimited() {
        let mut b = TokenBucket::new(0);
        assert!((0..10_000).all(|_| b.take(65_535, Instant::now())));
    }
}

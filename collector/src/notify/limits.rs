//! The two pieces of delivery policy that decide without doing I/O: the per-channel rate
//! limit (a sliding window) and the retry delays (capped exponential backoff with
//! jitter). Both take the time or the randomness as arguments so tests drive them.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Length of the rate-limit window: limits are given per minute.
pub const RATE_WINDOW: Duration = Duration::from_secs(60);

/// At most `limit` messages in any window of [`RATE_WINDOW`].
#[derive(Debug)]
pub struct RateLimiter {
    limit: usize,
    sent: VecDeque<Instant>,
}

impl RateLimiter {
    pub fn new(limit: u32) -> RateLimiter {
        RateLimiter {
            limit: limit as usize,
            sent: VecDeque::with_capacity(limit as usize),
        }
    }

    /// Takes a slot at `now` if one is free.
    pub fn try_acquire(&mut self, now: Instant) -> bool {
        while let Some(&oldest) = self.sent.front() {
            if now.saturating_duration_since(oldest) >= RATE_WINDOW {
                self.sent.pop_front();
            } else {
                break;
            }
        }
        if self.sent.len() >= self.limit {
            return false;
        }
        self.sent.push_back(now);
        true
    }
}

/// Delays between delivery attempts: `initial`, doubled each attempt, capped at `cap`,
/// each drawn uniformly from its upper half so that many channels retrying after one
/// outage spread out.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// The delay after failed attempt number `attempt` (0 for the first), given a
    /// random `fraction` in `0.0..=1.0`.
    pub fn delay(&self, attempt: u32, fraction: f64) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(20));
        let ceiling = self.initial.saturating_mul(factor).min(self.cap);
        let half = ceiling / 2;
        half + half.mul_f64(fraction.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_frees_slots_as_the_window_slides() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(2);
        assert!(limiter.try_acquire(start));
        assert!(limiter.try_acquire(start + Duration::from_secs(10)));
        assert!(!limiter.try_acquire(start + Duration::from_secs(20)));
        assert!(limiter.try_acquire(start + Duration::from_secs(60)));
        assert!(!limiter.try_acquire(start + Duration::from_secs(61)));
        assert!(limiter.try_acquire(start + Duration::from_secs(70)));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_stays_under_the_cap() {
        let backoff = Backoff {
            initial: Duration::from_secs(1),
            cap: Duration::from_secs(30),
        };
        assert_eq!(backoff.delay(0, 1.0), Duration::from_secs(1));
        assert_eq!(backoff.delay(0, 0.0), Duration::from_millis(500));
        assert_eq!(backoff.delay(3, 1.0), Duration::from_secs(8));
        assert_eq!(backoff.delay(10, 1.0), Duration::from_secs(30));
        assert_eq!(backoff.delay(u32::MAX, 0.0), Duration::from_secs(15));
    }
}

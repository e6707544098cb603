//! The record stage's policy: when to try again (the retry schedule with
//! ±20% jitter, or the receiver's `Retry-After`) and when to give up.

use std::time::Duration;

/// The retry schedule.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Delay before attempt n+1 is `schedule[n]`; its length is the number
    /// of attempts (the first entry is the delay of the first attempt).
    pub schedule: Vec<Duration>,
}

impl RetryPolicy {
    /// The delay before the next attempt after `made` attempts of this round
    /// have failed, or `None` when none are left.
    pub fn next_delay(&self, made: usize, retry_after: Option<Duration>) -> Option<Duration> {
        let base = *self.schedule.get(made)?;
        if let Some(wait) = retry_after {
            return Some(wait);
        }
        Some(jitter(base))
    }
}

/// `d` ± 20%, uniformly.
fn jitter(d: Duration) -> Duration {
    if d.is_zero() {
        return d;
    }
    let factor = 0.8 + rand::random::<f64>() * 0.4;
    d.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_schedule_with_jitter() {
        let p = RetryPolicy {
            schedule: vec![
                Duration::ZERO,
                Duration::from_secs(10),
                Duration::from_secs(100),
            ],
        };
        for _ in 0..100 {
            let d = p.next_delay(1, None).expect("left");
            assert!(
                d >= Duration::from_secs(8) && d <= Duration::from_secs(12),
                "{d:?}"
            );
        }
        assert_eq!(
            p.next_delay(2, Some(Duration::from_secs(3))),
            Some(Duration::from_secs(3))
        );
        assert_eq!(p.next_delay(3, None), None);
    }
}

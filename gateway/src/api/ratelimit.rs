//! Per-organization request rate limits: one tenant's burst cannot take
//! the gateway from the others. A generic cell rate (GCRA) per organization
//! from `governor`; the admin key is never limited. Limits are per replica.

use super::error::ApiError;
use governor::clock::Clock as _;
use governor::{DefaultKeyedRateLimiter, Quota};
use std::num::NonZeroU32;

/// Past this many tracked organizations, idle ones are forgotten.
const MAX_TRACKED: usize = 10_000;

/// Requests per second per organization, with a burst of one second's worth.
#[derive(Debug)]
pub struct RateLimits {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
}

impl RateLimits {
    /// `per_second` requests per second per organization; `None` is no limit.
    pub fn new(per_second: Option<NonZeroU32>) -> Self {
        Self {
            limiter: per_second.map(|n| DefaultKeyedRateLimiter::keyed(Quota::per_second(n))),
        }
    }

    /// Counts one request of `organization_id`; [`ApiError::RateLimited`]
    /// with the wait when it is over its rate.
    pub fn check(&self, organization_id: &str) -> Result<(), ApiError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if limiter.len() > MAX_TRACKED {
            limiter.retain_recent();
        }
        limiter
            .check_key(&organization_id.to_owned())
            .map_err(|not_until| {
                metrics::counter!("hookgate_requests_rate_limited_total").increment(1);
                ApiError::RateLimited(not_until.wait_time_from(limiter.clock().now()))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_over_the_rate_is_refused_per_organization() {
        let limits = RateLimits::new(NonZeroU32::new(3));
        for _ in 0..3 {
            limits.check("org_a").expect("within the burst");
        }
        match limits.check("org_a") {
            Err(ApiError::RateLimited(wait)) => {
                assert!(wait > std::time::Duration::ZERO);
                assert!(wait <= std::time::Duration::from_secs(1));
            }
            other => panic!("expected a rate limit, got {other:?}"),
        }
        limits
            .check("org_b")
            .expect("another organization has its own budget");
    }

    #[test]
    fn no_rate_is_no_limit() {
        let limits = RateLimits::new(None);
        for _ in 0..10_000 {
            limits.check("org_a").expect("unlimited");
        }
    }
}

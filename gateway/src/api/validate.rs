//! Field checks shared by the management API's request types.

use super::error::FieldError;
use crate::model::{Filter, Ordering};
use std::net::IpAddr;

/// Collects field problems.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<FieldError>);

impl Problems {
    /// Records a problem with `field`.
    pub fn add(&mut self, field: impl Into<String>, problem: impl Into<String>) {
        self.0.push(FieldError::new(field, problem));
    }

    /// The value of a required field, or a "required" problem.
    pub fn required<T>(&mut self, field: &str, value: Option<T>) -> Option<T> {
        if value.is_none() {
            self.add(field, "is required");
        }
        value
    }

    /// Checks a free-text field's length.
    pub fn text(&mut self, field: &str, value: &str, max: usize) {
        if value.trim().is_empty() {
            self.add(field, "must not be empty");
        } else if value.chars().count() > max {
            self.add(field, format!("must be at most {max} characters"));
        }
    }

    /// Checks an event type: 1–128 of letters, digits, `.`, `_`, `-`, `:`.
    pub fn event_type(&mut self, field: &str, value: &str) {
        let ok = !value.is_empty()
            && value.len() <= 128
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(&b));
        if !ok {
            self.add(
                field,
                "must be 1 to 128 of letters, digits, `.`, `_`, `-` and `:`",
            );
        }
    }

    /// Checks a destination URL: absolute http(s), with a host, no
    /// credentials, and (unless allowed) not a private or loopback literal.
    pub fn url(&mut self, field: &str, value: &str, allow_private: bool) {
        match check_url(value, allow_private) {
            Ok(()) => {}
            Err(problem) => self.add(field, problem),
        }
    }

    /// Parses a route's filter (`null` or absent: none), naming the part
    /// that is wrong (`filter.payload.total.$gt`).
    pub fn filter(&mut self, value: Option<serde_json::Value>) -> Option<Filter> {
        match value {
            None | Some(serde_json::Value::Null) => None,
            Some(value) => match Filter::parse(&value) {
                Ok(filter) => Some(filter),
                Err(e) => {
                    self.add(e.at, e.problem);
                    None
                }
            },
        }
    }

    /// Checks a destination's rate limit: 1 to 10000 deliveries per second.
    pub fn rate_limit(&mut self, value: Option<u32>) {
        if value.is_some_and(|n| !(1..=10_000).contains(&n)) {
            self.add("rateLimit", "must be 1 to 10000 deliveries per second");
        }
    }

    /// Parses a route's ordering: `none` (default) or `fifo`.
    pub fn ordering(&mut self, value: Option<&str>) -> Ordering {
        match value.map(Ordering::parse) {
            None => Ordering::None,
            Some(Some(ordering)) => ordering,
            Some(None) => {
                self.add("ordering", "must be `none` or `fifo`");
                Ordering::None
            }
        }
    }

    /// Ok when no problem was found.
    pub fn finish(self) -> Result<(), super::ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(super::ApiError::Validation(self.0))
        }
    }
}

fn check_url(value: &str, allow_private: bool) -> Result<(), String> {
    if value.len() > 2048 {
        return Err("must be at most 2048 characters".into());
    }
    let url =
        url::Url::parse(value).map_err(|e| format!("must be an absolute http(s) URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials; use `authentication`".into());
    }
    let host = url.host().ok_or("must name a host")?;
    if !allow_private {
        let private = match host {
            url::Host::Domain(d) => {
                d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost")
            }
            url::Host::Ipv4(ip) => crate::ssrf::is_private(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => crate::ssrf::is_private(IpAddr::V6(ip)),
        };
        if private {
            return Err("points to a private, loopback or link-local address, which this gateway does not deliver to".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(check_url("https://requestb.in/123", false).is_ok());
        assert!(check_url("http://127.0.0.1:9/x", true).is_ok());
        for bad in [
            "ftp://x.y/",
            "/relative",
            "http://127.0.0.1/",
            "http://[::1]/",
            "http://localhost/",
            "http://u:p@x.y/",
            "http://10.1.2.3/",
            "http://169.254.169.254/",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
    }
}

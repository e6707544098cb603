//! What the gateway says and decides about a destination URL without
//! using the whole of it: the form that may be logged (for Slack-style
//! URLs the path is the credential), the origin a secret is bound to, and
//! the destination key concurrency is limited by.

/// `scheme://host[:port]`, and `/…` when the URL has more: what logs and
/// error messages show of an endpoint.
pub fn loggable(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) if parsed.has_host() => {
            let origin = parsed.origin().ascii_serialization();
            let more = parsed.path() != "/" || parsed.query().is_some();
            if more {
                format!("{origin}/…")
            } else {
                origin
            }
        }
        _ => "(not a URL)".into(),
    }
}

/// The origin (`scheme://host:port`, default ports made explicit) a
/// credential is bound to, or `None` when `url` is not an absolute URL.
pub fn origin(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let host = parsed.host_str()?;
    Some(format!(
        "{}://{}:{}",
        parsed.scheme(),
        host.to_ascii_lowercase(),
        parsed.port_or_known_default()?
    ))
}

/// The destination concurrency is limited by: the registrable domain (so
/// `a.example.com` and `b.example.com` share one limit, as they share
/// one operator), the name itself when the public suffix list does not
/// know it, or the address and port for IP literals (different ports of
/// one address are usually different services).
pub fn destination_key(url: &str) -> String {
    let Ok(parsed) = url::Url::parse(url) else {
        return String::new();
    };
    match parsed.host() {
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            match psl::domain_str(&name) {
                Some(domain) => domain.to_owned(),
                None => name,
            }
        }
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => format!(
            "{}:{}",
            parsed.host_str().unwrap_or_default(),
            parsed.port_or_known_default().unwrap_or(0)
        ),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_show_the_origin_only() {
        assert_eq!(
            loggable("https://hooks.slack.com/services/T000/B000/XXXX"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(loggable("http://127.0.0.1:9000"), "http://127.0.0.1:9000");
        assert_eq!(
            loggable("https://a.example/x?token=1"),
            "https://a.example/…"
        );
        assert_eq!(loggable("nonsense"), "(not a URL)");
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert_eq!(
            origin("https://Auth.Example.com/token"),
            origin("https://auth.example.com:443/other")
        );
        assert_ne!(
            origin("https://auth.example.com/token"),
            origin("https://evil.example.net/token")
        );
        assert_ne!(
            origin("https://auth.example.com/token"),
            origin("http://auth.example.com/token")
        );
        assert_eq!(origin("not a url"), None);
    }

    #[test]
    fn subdomains_share_a_destination() {
        assert_eq!(destination_key("https://a.example.com/x"), "example.com");
        assert_eq!(
            destination_key("https://b.c.example.com:8443/"),
            "example.com"
        );
        assert_eq!(destination_key("https://x.example.co.uk/"), "example.co.uk");
        assert_eq!(destination_key("http://127.0.0.1:9/"), "127.0.0.1:9");
        assert_ne!(
            destination_key("http://127.0.0.1:9/"),
            destination_key("http://127.0.0.1:10/")
        );
        assert_ne!(
            destination_key("https://a.github.io/"),
            destination_key("https://b.github.io/")
        );
    }
}

//! `hookgate serve` settings: flags and `HOOKGATE_*` variables, parsed and
//! checked once into [`ServeSettings`].

use crate::cli::LimitArgs;
use crate::model::Secret;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Flags of `hookgate serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "HOOKGATE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where the embedded database, the key file and the compiled-plugin cache live.
    #[arg(long, env = "HOOKGATE_DATA_DIR", default_value = "hookgate-data")]
    pub data_dir: PathBuf,
    /// `sqlite://FILE` (default: `DATA_DIR/hookgate.db`) or `postgres://…`.
    #[arg(long, env = "HOOKGATE_DATABASE_URL")]
    pub database_url: Option<String>,
    /// The operator's key for `/v1/organizations` and `/v1/plugins`.
    #[arg(long, env = "HOOKGATE_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// Base64 of 32 bytes: encrypts secrets at rest. Without it, a key file
    /// is made in the data folder (SQLite only).
    #[arg(long, env = "HOOKGATE_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// Folder of `NAME.wasm` plugins, loaded at start and watched.
    #[arg(long, env = "HOOKGATE_PLUGIN_DIR")]
    pub plugin_dir: Option<PathBuf>,
    /// Plugins whose instances may be reused, `NAME[=EVENTS]`, comma-separated.
    #[arg(long, env = "HOOKGATE_PLUGIN_REUSE", value_delimiter = ',')]
    pub plugin_reuse: Vec<String>,
    /// Allow destinations on loopback, private and link-local addresses.
    #[arg(long, env = "HOOKGATE_ALLOW_PRIVATE_DESTINATIONS")]
    pub allow_private_destinations: bool,
    /// The address providers and browsers reach the gateway at (e.g.
    /// `https://hooks.example.com`): sources' `ingestUrl` is absolute under
    /// it. Without it, `ingestUrl` is a path.
    #[arg(long, env = "HOOKGATE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Delays between delivery attempts.
    #[arg(
        long,
        env = "HOOKGATE_RETRY_SCHEDULE",
        default_value = "0s,5s,5m,30m,2h,5h,10h,10h"
    )]
    pub retry_schedule: String,
    /// Largest JSON request body, bytes.
    #[arg(long, env = "HOOKGATE_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Largest plugin upload, bytes (Python and JavaScript components are
    /// tens of MB).
    #[arg(long, env = "HOOKGATE_MAX_PLUGIN_BYTES", default_value_t = 64 << 20)]
    pub max_plugin_bytes: usize,
    /// How long a rotated-out signing secret keeps signing (e.g. `24h`).
    #[arg(long, env = "HOOKGATE_SECRET_ROTATION_OVERLAP", default_value = "24h")]
    pub secret_rotation_overlap: humantime::Duration,
    /// Deliveries in flight at once.
    #[arg(long, env = "HOOKGATE_WORKERS", default_value_t = 64)]
    pub workers: usize,
    /// Deliveries in flight at once to one destination: a registrable
    /// domain (its subdomains share it), or an address and port.
    #[arg(long, env = "HOOKGATE_ENDPOINT_CONCURRENCY", default_value_t = 32)]
    pub endpoint_concurrency: usize,
    /// Deliveries in flight at once for one organization (per replica), so
    /// one tenant's backlog cannot take every worker; default: half the
    /// workers. A gateway serving one tenant may set it to `--workers`.
    #[arg(long, env = "HOOKGATE_ORGANIZATION_CONCURRENCY")]
    pub organization_concurrency: Option<usize>,
    /// Connect and total timeout of one delivery attempt.
    #[arg(long, env = "HOOKGATE_DELIVERY_TIMEOUT", default_value = "15s")]
    pub delivery_timeout: humantime::Duration,
    /// Disable a route after it has failed continuously this long.
    #[arg(long, env = "HOOKGATE_DISABLE_AFTER", default_value = "5days")]
    pub disable_after: humantime::Duration,
    /// How long a claimed delivery is leased before another worker may take it.
    #[arg(long, env = "HOOKGATE_LEASE", default_value = "60s")]
    pub lease: humantime::Duration,
    /// API requests per second per organization (burst: one second's
    /// worth); 0 is no limit. Counted per replica.
    #[arg(long, env = "HOOKGATE_RATE_LIMIT", default_value_t = 0)]
    pub rate_limit: u32,
    /// Replicas sharing the database: each destination's `rateLimit` is
    /// split evenly between them.
    #[arg(long, env = "HOOKGATE_REPLICAS", default_value_t = 1)]
    pub replicas: u32,
    /// Events (with their deliveries and attempts) older than this, whose
    /// deliveries are all final, are purged.
    #[arg(long, env = "HOOKGATE_RETENTION", default_value = "30days")]
    pub retention: humantime::Duration,
    /// Deliveries one event may make: its routes at ingest (more is a 422)
    /// and what its transforms fan out (more fails the delivery).
    #[arg(
        long,
        env = "HOOKGATE_MAX_DELIVERIES_PER_EVENT",
        default_value_t = 1_000
    )]
    pub max_deliveries_per_event: usize,
    /// Subscriptions one organization may have (more is a 422).
    #[arg(long, env = "HOOKGATE_MAX_SUBSCRIPTIONS", default_value_t = 10_000)]
    pub max_subscriptions: usize,
    /// PEM file of CA certificates trusted besides the public roots, for
    /// receivers and token endpoints with a private CA.
    #[arg(long, env = "HOOKGATE_TLS_CA_FILE")]
    pub tls_ca_file: Option<PathBuf>,
    /// Plugin sandbox limits.
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// The certificates of `--tls-ca-file`, refused at start when unreadable.
fn read_ca_file(path: Option<&std::path::Path>) -> anyhow::Result<Vec<reqwest::Certificate>> {
    use anyhow::Context as _;
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let pem = std::fs::read(path)
        .with_context(|| format!("could not read --tls-ca-file {}", path.display()))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem)
        .with_context(|| format!("--tls-ca-file {} holds no PEM certificates", path.display()))?;
    anyhow::ensure!(
        !certificates.is_empty(),
        "--tls-ca-file {} holds no PEM certificates",
        path.display()
    );
    Ok(certificates)
}

/// Checked settings.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// Listen address.
    pub listen: SocketAddr,
    /// Data folder.
    pub data_dir: PathBuf,
    /// Database URL.
    pub database_url: String,
    /// Admin key.
    pub admin_key: Option<Secret>,
    /// Secret-at-rest key, base64.
    pub secret_key: Option<Secret>,
    /// Plugin folder.
    pub plugin_dir: Option<PathBuf>,
    /// Plugins with instance reuse, and events per instance.
    pub plugin_reuse: Vec<(String, u32)>,
    /// Private destinations allowed.
    pub allow_private_destinations: bool,
    /// The gateway's public address, without a trailing `/`.
    pub public_url: Option<String>,
    /// Retry delays; its length is the number of attempts.
    pub retry_schedule: Vec<Duration>,
    /// JSON body limit.
    pub max_body_bytes: usize,
    /// Plugin upload limit.
    pub max_plugin_bytes: usize,
    /// Secret rotation overlap.
    pub secret_rotation_overlap: Duration,
    /// Requests per second per organization; `None` is no limit.
    pub rate_limit: Option<std::num::NonZeroU32>,
    /// Default sandbox limits.
    pub limits: crate::plugin::Limits,
    /// The most a plugin's own settings may ask for.
    pub maxima: crate::plugin::Maxima,
    /// Bounds on what one tenant's writes may make.
    pub store_limits: crate::store::Limits,
    /// How long final events are kept.
    pub retention: Duration,
    /// Delivery workers.
    pub workers: crate::pipeline::WorkerSettings,
}

impl ServeArgs {
    /// Checks the flags.
    pub fn settings(self) -> anyhow::Result<ServeSettings> {
        let database_url = self
            .database_url
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("hookgate.db").display()));
        let retry_schedule = parse_schedule(&self.retry_schedule)?;
        let plugin_reuse = self
            .plugin_reuse
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| match s.trim().split_once('=') {
                Some((name, n)) => Ok((
                    name.to_owned(),
                    n.parse().map_err(|_| {
                        anyhow::anyhow!("--plugin-reuse {s}: events must be a number")
                    })?,
                )),
                None => Ok((s.trim().to_owned(), 1000)),
            })
            .collect::<anyhow::Result<_>>()?;
        if let Some(key) = &self.admin_key
            && key.len() < 16
        {
            anyhow::bail!("the admin key must be at least 16 characters");
        }
        Ok(ServeSettings {
            listen: self.listen,
            data_dir: self.data_dir,
            database_url,
            admin_key: self.admin_key.map(Secret::new),
            secret_key: self.secret_key.map(Secret::new),
            plugin_dir: self.plugin_dir,
            plugin_reuse,
            allow_private_destinations: self.allow_private_destinations,
            public_url: self
                .public_url
                .as_deref()
                .map(parse_public_url)
                .transpose()?,
            retry_schedule: retry_schedule.clone(),
            max_body_bytes: self.max_body_bytes,
            max_plugin_bytes: self.max_plugin_bytes,
            secret_rotation_overlap: self.secret_rotation_overlap.into(),
            rate_limit: std::num::NonZeroU32::new(self.rate_limit),
            limits: self.limits.limits(),
            maxima: self.limits.maxima(),
            retention: self.retention.into(),
            store_limits: crate::store::Limits {
                deliveries_per_event: self.max_deliveries_per_event.max(1),
                subscriptions_per_organization: self.max_subscriptions,
            },
            workers: crate::pipeline::WorkerSettings {
                concurrency: self.workers.max(1),
                per_endpoint: self.endpoint_concurrency.max(1),
                per_organization: self
                    .organization_concurrency
                    .unwrap_or(self.workers / 2)
                    .max(1),
                replicas: self.replicas.max(1),
                lease: self.lease.into(),
                poll: Duration::from_millis(500),
                disable_after: self.disable_after.into(),
                http: crate::pipeline::deliver::HttpSettings {
                    timeout: self.delivery_timeout.into(),
                    allow_private: self.allow_private_destinations,
                    extra_roots: read_ca_file(self.tls_ca_file.as_deref())?,
                },
                retry: crate::pipeline::record::RetryPolicy {
                    schedule: retry_schedule,
                },
            },
        })
    }
}

/// Parses `0s,5s,5m,30m,2h` into delays.
pub fn parse_schedule(text: &str) -> anyhow::Result<Vec<Duration>> {
    let schedule: Vec<Duration> = text
        .split(',')
        .map(|s| {
            humantime::parse_duration(s.trim())
                .map_err(|e| anyhow::anyhow!("retry schedule entry `{}`: {e}", s.trim()))
        })
        .collect::<anyhow::Result<_>>()?;
    if schedule.is_empty() || schedule.len() > 50 {
        anyhow::bail!("the retry schedule needs 1 to 50 entries");
    }
    Ok(schedule)
}

/// Checks `--public-url`: an absolute http(s) URL with no query or
/// fragment; returned without its trailing `/`.
pub fn parse_public_url(text: &str) -> anyhow::Result<String> {
    let url =
        url::Url::parse(text.trim()).map_err(|e| anyhow::anyhow!("--public-url `{text}`: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        anyhow::bail!("--public-url `{text}`: must be an http or https URL");
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        anyhow::bail!("--public-url `{text}`: must have no credentials, query or fragment");
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls() {
        assert_eq!(
            parse_public_url("https://hooks.example.com/gw/").expect("parses"),
            "https://hooks.example.com/gw"
        );
        assert_eq!(
            parse_public_url("http://127.0.0.1:8080").expect("parses"),
            "http://127.0.0.1:8080"
        );
        for bad in [
            "hooks.example.com",
            "ftp://x.example",
            "https://x.example/?a=1",
            "https://u:p@x.example",
        ] {
            assert!(parse_public_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn schedules() {
        let s = parse_schedule("0s,5s,5m,30m,2h,5h,10h,10h").expect("parses");
        assert_eq!(s.len(), 8);
        assert_eq!(s[3], Duration::from_secs(1800));
        assert!(parse_schedule("0s,soon").is_err());
    }
}

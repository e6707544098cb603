//! Shared helpers for the black-box tests: build the real plugins and the
//! real `hookgate` binary once, and hand their paths to the tests.

pub mod browser;
pub mod peers;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Every example and test plugin, by crate name.
pub const PLUGINS: &[&str] = &[
    "plugin-standard",
    "plugin-slack",
    "plugin-partner",
    "plugin-fanout",
    "plugin-misbehave",
    "plugin-other-world",
];

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_path_buf()
}

/// The cargo target folder this workspace builds into.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root());
    // `cargo test` gives the test process variables of its own package
    // (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, …). Passed on, they differ from
    // what the outer build saw, and build scripts that watch them (ring's
    // watches `CARGO_MANIFEST_DIR`) rerun: the two builds would rebuild
    // half the tree for each other, every run.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_") && !matches!(&*name, "CARGO_HOME" | "CARGO_TARGET_DIR") {
            cmd.env_remove(&*name);
        }
    }
    cmd
}

fn run(mut cmd: Command, what: &str) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("could not run cargo for {what}: {e}"));
    assert!(status.success(), "building {what} failed: {status}");
}

/// Builds every plugin for `wasm32-wasip2` (once per process; cargo makes
/// it a no-op when nothing changed) and returns the folder holding the
/// `.wasm` files, named after their crates (`plugin_partner.wasm`).
pub fn plugin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let mut cmd = cargo();
        cmd.args([
            "build",
            "--quiet",
            "--profile",
            "plugin",
            "--target",
            "wasm32-wasip2",
        ]);
        for p in PLUGINS {
            cmd.args(["-p", p]);
        }
        run(cmd, "the plugins");
        target_dir().join("wasm32-wasip2/plugin")
    })
}

/// The bytes of a built plugin, by short name (`partner`, `misbehave`, …).
pub fn plugin_bytes(name: &str) -> Vec<u8> {
    let path = plugin_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The path of a built plugin, by short name.
pub fn plugin_path(name: &str) -> PathBuf {
    plugin_dir().join(format!("plugin_{}.wasm", name.replace('-', "_")))
}

/// Builds the Python plugin in `plugins/<dir>` with `hookgate plugin
/// build` (componentize-py) and returns the component's path; `None`, with
/// the reason printed, when componentize-py is not installed locally (in
/// CI, `CI=true`, that fails the test instead: `.ci/run` installs it).
pub fn python_plugin(dir: &str) -> Option<PathBuf> {
    tool_ready("componentize-py", hookgate::cli::COMPONENTIZE_PY)
        .then(|| build_with_hookgate(&workspace_root().join("plugins").join(dir)))
}

/// [`python_plugin`] for a JavaScript plugin (componentize-js).
pub fn js_plugin(dir: &str) -> Option<PathBuf> {
    tool_ready("componentize-js", hookgate::cli::COMPONENTIZE_JS)
        .then(|| build_with_hookgate(&workspace_root().join("plugins").join(dir)))
}

/// Whether the command `program` is installed (`package` says how to get
/// it); when not, the reason is printed, and in CI (`CI=true`) the test
/// fails instead (`.ci/run` installs it).
pub fn tool_ready(program: &str, package: &str) -> bool {
    let installed = Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        assert!(
            std::env::var("CI").is_err(),
            "{program} is missing: install {package}"
        );
        eprintln!("skipped: {program} is not installed ({package})");
    }
    installed
}

/// `hookgate plugin build DIR`: the component's path (its last line).
pub fn build_with_hookgate(dir: &Path) -> PathBuf {
    let output = Command::new(hookgate_bin())
        .args(["plugin", "build"])
        .arg(dir)
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run hookgate plugin build");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "plugin build failed: {stdout}");
    PathBuf::from(stdout.lines().last().expect("a path").trim())
}

/// Builds the `hookgate` binary (debug) and returns its path.
pub fn hookgate_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let mut cmd = cargo();
        cmd.args(["build", "--quiet", "-p", "hookgate", "--bin", "hookgate"]);
        run(cmd, "the hookgate binary");
        target_dir().join("debug/hookgate")
    })
}

/// A ~1 KiB order event payload, as the benchmarks and tests use.
pub fn sample_order() -> serde_json::Value {
    serde_json::json!({
        "order_id": "ord_8d1f2c",
        "shop_id": "shop_42",
        "status": "paid",
        "currency": "EUR",
        "total_price": 129.9,
        "created_at": "2026-11-24T09:12:44Z",
        "customer": {
            "customer_id": "cus_77a",
            "email": "ada@example.com",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "accepts_marketing": true,
            "tier_name": "gold"
        },
        "shipping_address": {
            "street_line": "12 Analytical Row",
            "city": "London",
            "postal_code": "N1 9GU",
            "country_code": "GB"
        },
        "line_items": [
            {"sku": "BK-001", "product_name": "Notes on the Engine", "quantity": 1, "unit_price": 49.9, "tax_rate": 0.2},
            {"sku": "BK-002", "product_name": "Sketch of the Engine", "quantity": 2, "unit_price": 30.0, "tax_rate": 0.2},
            {"sku": "PN-010", "product_name": "Brass gear pin", "quantity": 4, "unit_price": 5.0, "tax_rate": 0.2}
        ],
        "discount_codes": [{"code": "WELCOME10", "amount": 10.0}],
        "note_attributes": [{"name": "gift_wrap", "value": "yes"}, {"name": "source_channel", "value": "web"}],
        "loyalty": {"points_earned": 130, "points_balance": 2210, "credits_used": 0}
    })
}

/// The admin key every test gateway uses.
pub const ADMIN_KEY: &str = "test-admin-key-0123456789";

/// A gateway running in this process on a loopback port, over its own
/// temporary data folder.
#[derive(Debug)]
pub struct TestGateway {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// The data folder (SQLite file, key file, plugin cache).
    pub data_dir: tempfile::TempDir,
    /// Stops the gateway when cancelled (and on drop).
    pub cancel: tokio_util::sync::CancellationToken,
    /// The HTTP client tests use.
    pub http: reqwest::Client,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// How a test gateway differs from the defaults.
#[derive(Debug, Clone, Default)]
pub struct GatewayOptions {
    /// `postgres://…`; SQLite in the data folder when absent.
    pub database_url: Option<String>,
    /// Extra `hookgate serve` flags.
    pub args: Vec<String>,
    /// Refuse private destinations (the production default); test gateways
    /// allow loopback otherwise.
    pub strict: bool,
}

impl TestGateway {
    /// Starts a gateway on SQLite with loopback destinations allowed.
    pub async fn start() -> Self {
        Self::start_with(GatewayOptions::default()).await
    }

    /// Starts a gateway that refuses private destinations.
    pub async fn start_strict() -> Self {
        Self::start_with(GatewayOptions {
            strict: true,
            ..Default::default()
        })
        .await
    }

    /// Starts a gateway with `options`.
    pub async fn start_with(options: GatewayOptions) -> Self {
        use clap::Parser as _;
        let data_dir = tempfile::tempdir().expect("tempdir");
        let mut argv: Vec<String> = vec![
            "hookgate".into(),
            "serve".into(),
            "--admin-key".into(),
            ADMIN_KEY.into(),
            "--data-dir".into(),
            data_dir.path().display().to_string(),
        ];
        if !options.strict {
            argv.push("--allow-private-destinations".into());
        }
        if let Some(url) = &options.database_url {
            argv.extend(["--database-url".into(), url.clone()]);
            argv.extend([
                "--secret-key".into(),
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into(),
            ]);
        }
        argv.extend(options.args.iter().cloned());
        let cli = hookgate::cli::Cli::try_parse_from(&argv).expect("flags");
        let hookgate::cli::Command::Serve(args) = cli.command else {
            unreachable!()
        };
        let settings = args.settings().expect("settings");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let cancel = tokio_util::sync::CancellationToken::new();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let run_cancel = cancel.clone();
        let task = tokio::spawn(async move {
            let result = hookgate::server::run(settings, listener, run_cancel).await;
            let _ = ready_tx.send(result.map_err(|e| format!("{e:#}")));
        });
        let http = reqwest::Client::new();
        // Ready when /readyz answers, or failed when the task ended.
        let mut ready_rx = ready_rx;
        for _ in 0..200 {
            if let Ok(response) = http.get(format!("{url}/readyz")).send().await
                && response.status().is_success()
            {
                return Self {
                    url,
                    data_dir,
                    cancel,
                    http,
                    task: Some(task),
                };
            }
            if let Ok(result) = ready_rx.try_recv() {
                panic!("the gateway stopped during start: {result:?}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the gateway did not become ready");
    }

    /// A request to `path` with the given key (none when empty).
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
    ) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.url));
        if key.is_empty() {
            builder
        } else {
            builder.bearer_auth(key)
        }
    }

    /// Sends a JSON request and returns the status and the parsed body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut builder = self.request(method, path, key);
        if let Some(body) = body {
            builder = builder.json(&body);
        }
        let response = builder.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text}"));
        (status, value)
    }

    /// Creates an organization; returns its id and API key.
    pub async fn organization(&self, name: &str) -> (String, String) {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/v1/organizations",
                ADMIN_KEY,
                Some(serde_json::json!({"name": name})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        (
            body["data"]["id"].as_str().expect("id").to_owned(),
            body["data"]["apiKey"].as_str().expect("apiKey").to_owned(),
        )
    }

    /// The SQLite database file.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.path().join("hookgate.db")
    }
}

/// The PostgreSQL URL tests use: `HOOKGATE_TEST_POSTGRES_URL`. `None`
/// (with the reason printed) when unset locally; in CI (`CI=true`) a
/// missing server fails the test instead of skipping it.
pub fn postgres_url() -> Option<String> {
    match std::env::var("HOOKGATE_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "CI=true but HOOKGATE_TEST_POSTGRES_URL is not set: PostgreSQL tests may not skip in CI"
            )
        }
        _ => {
            eprintln!(
                "skipping PostgreSQL: set HOOKGATE_TEST_POSTGRES_URL to run against a server"
            );
            None
        }
    }
}

/// A fresh, empty PostgreSQL database for one test, created on the server
/// of [`postgres_url`]; its URL.
pub async fn fresh_postgres_database() -> Option<String> {
    use sqlx::Connection as _;
    let base = postgres_url()?;
    let name = format!("hookgate_test_{}", uuid_simple());
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| {
            panic!("connect to PostgreSQL at HOOKGATE_TEST_POSTGRES_URL {base:?}: {e}")
        });
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create database");
    let mut url = url::Url::parse(&base).expect("url");
    url.set_path(&name);
    Some(url.to_string())
}

fn uuid_simple() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}{:x}", nanos, std::process::id())
}

/// Builds the `hookgate` binary in release (for benchmarks) and returns its path.
pub fn hookgate_release_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let mut cmd = cargo();
        cmd.args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "hookgate",
            "--bin",
            "hookgate",
        ]);
        run(cmd, "the hookgate binary (release)");
        target_dir().join("release/hookgate")
    })
}

/// A `hookgate serve` process (the real binary), for crash tests.
#[derive(Debug)]
pub struct GatewayProcess {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    child: std::process::Child,
}

impl GatewayProcess {
    /// Starts the binary on `port` over `data_dir`, with loopback allowed,
    /// and waits until it is ready.
    pub async fn spawn(data_dir: &Path, port: u16, extra: &[&str]) -> Self {
        Self::spawn_binary(hookgate_bin(), data_dir, port, extra).await
    }

    /// [`GatewayProcess::spawn`] with a given binary.
    pub async fn spawn_binary(binary: &Path, data_dir: &Path, port: u16, extra: &[&str]) -> Self {
        Self::spawn_full(binary, data_dir, port, extra, &[]).await
    }

    /// [`GatewayProcess::spawn`] with these environment variables set.
    pub async fn spawn_with_env(
        data_dir: &Path,
        port: u16,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        Self::spawn_full(hookgate_bin(), data_dir, port, extra, env).await
    }

    async fn spawn_full(
        binary: &Path,
        data_dir: &Path,
        port: u16,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.join("gateway.log"))
            .expect("log file");
        let mut child = Command::new(binary)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--admin-key",
                ADMIN_KEY,
                "--allow-private-destinations",
                "--data-dir",
            ])
            .arg(data_dir)
            .args(extra)
            .env("HOOKGATE_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn hookgate");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..400 {
            if http
                .get(format!("{url}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Self { url, child };
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "hookgate did not become ready; see {}",
            data_dir.join("gateway.log").display()
        );
    }

    /// Creates an organization with the admin key; its API key.
    pub async fn organization(&self, name: &str) -> String {
        let org: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/v1/organizations", self.url))
            .bearer_auth(ADMIN_KEY)
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await
            .expect("organization")
            .json()
            .await
            .expect("json");
        org["data"]["apiKey"].as_str().expect("apiKey").to_owned()
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

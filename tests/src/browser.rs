//! Headless Chromium (Debian's `chromium`) driven over WebDriver
//! (`chromedriver`), for the dashboard's tests; axe-core (tests/browser,
//! installed by .ci/run) for accessibility checks.
//!
//! The W3C WebDriver protocol is JSON over HTTP, and the dozen commands the
//! tests use are spoken here through reqwest: the Rust WebDriver clients
//! bring a second TLS stack (aws-lc) into the workspace's build, and with
//! it a second rustls crypto provider for the gateway to choose between.

use base64::Engine as _;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The key of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A browser session; the driver and its profile go when it is dropped.
#[derive(Debug)]
pub struct Browser {
    http: reqwest::Client,
    session: String,
    driver: std::process::Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session.
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let driver = std::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromedriver runs (.ci/run installs Debian's chromium-driver)");
        let profile = tempfile::tempdir().expect("profile");
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }
        }}});
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let session = loop {
            let answer = http
                .post(format!("{base}/session"))
                .json(&capabilities)
                .send()
                .await;
            match answer {
                Ok(response) if response.status().is_success() => {
                    let body: Value = response.json().await.expect("session json");
                    break body["value"]["sessionId"]
                        .as_str()
                        .expect("sessionId")
                        .to_owned();
                }
                Ok(response) => panic!(
                    "no WebDriver session: {}",
                    response.text().await.unwrap_or_default()
                ),
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("chromedriver did not answer: {error}"),
            }
        };
        Self {
            http,
            session: format!("{base}/session/{session}"),
            driver,
            _profile: profile,
        }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        match self.try_command(method, path, body).await {
            Ok(value) => value,
            Err(answer) => panic!("WebDriver {path}: {answer}"),
        }
    }

    /// A command's value, or WebDriver's error answer.
    async fn try_command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Value> {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("webdriver");
        let ok = response.status().is_success();
        let answer: Value = response.json().await.expect("webdriver json");
        if ok {
            Ok(answer["value"].clone())
        } else {
            Err(answer)
        }
    }

    /// Runs `action` on the first element matching `css`, finding it again
    /// when the page replaced it in between (a redraw): a stale element is
    /// not a failure of the page.
    async fn on_element(
        &self,
        css: &str,
        method: reqwest::Method,
        action: &str,
        body: Option<Value>,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let element = self.wait_for(css).await;
            let path = format!("/element/{element}{action}");
            match self.try_command(method.clone(), &path, body.clone()).await {
                Ok(value) => return value,
                Err(answer)
                    if answer["value"]["error"] == "stale element reference"
                        && Instant::now() < deadline => {}
                Err(answer) => panic!("WebDriver {path} on `{css}`: {answer}"),
            }
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.command(reqwest::Method::POST, path, Some(body)).await
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({"url": url})).await;
    }

    /// The elements matching `css`, now.
    pub async fn find_all(&self, css: &str) -> Vec<String> {
        self.post("/elements", json!({"using": "css selector", "value": css}))
            .await
            .as_array()
            .map(|all| {
                all.iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits (up to 10 s) for an element matching `css`.
    pub async fn wait_for(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(found) = self.find_all(css).await.into_iter().next() {
                return found;
            }
            assert!(Instant::now() < deadline, "no `{css}` on the page");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) {
        self.on_element(css, reqwest::Method::POST, "/click", Some(json!({})))
            .await;
    }

    /// Types `text` into the (cleared) field matching `css`.
    pub async fn fill(&self, css: &str, text: &str) {
        self.on_element(css, reqwest::Method::POST, "/clear", Some(json!({})))
            .await;
        self.on_element(
            css,
            reqwest::Method::POST,
            "/value",
            Some(json!({"text": text})),
        )
        .await;
    }

    /// The text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.on_element(css, reqwest::Method::GET, "/text", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Runs `script` in the page and returns what it returns.
    pub async fn execute(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": []}))
            .await
    }

    /// Waits (up to 10 s) until the page's text contains `text`.
    pub async fn wait_for_text(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let body = self.page_text().await;
            if body.contains(text) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "`{text}` never appeared; the page says: {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The page's visible text.
    pub async fn page_text(&self) -> String {
        self.execute("return document.body.innerText")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Saves a PNG of the page as `target/screenshots/NAME.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self
            .command(reqwest::Method::GET, "/screenshot", None)
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("base64 png"))
            .expect("png");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshots folder");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }

    /// The serious and critical accessibility violations axe-core finds on
    /// the page, as `id: description (n nodes: first)`.
    pub async fn accessibility_violations(&self) -> Vec<String> {
        let axe = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/browser/node_modules/axe-core/axe.min.js"
        ))
        .expect("axe-core (.ci/run installs it: cd tests/browser && npm install)");
        self.post("/execute/sync", json!({"script": axe, "args": []}))
            .await;
        let violations = self
            .post(
                "/execute/async",
                json!({"script": "const done = arguments[arguments.length - 1]; \
                 axe.run(document).then(r => done(r.violations)).catch(e => done([{id: 'axe-error', impact: 'critical', description: String(e), nodes: []}]));",
                 "args": []}),
            )
            .await;
        violations
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .map(|v| {
                let nodes = v["nodes"].as_array().cloned().unwrap_or_default();
                format!(
                    "{}: {} ({} nodes: {})",
                    v["id"].as_str().unwrap_or("?"),
                    v["description"].as_str().unwrap_or(""),
                    nodes.len(),
                    nodes.first().and_then(|n| n["html"].as_str()).unwrap_or("")
                )
            })
            .collect()
    }
}

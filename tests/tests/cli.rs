//! `hookgate plugin run`, `plugin new`, `plugin build` and `plugin diff`, as a user runs them.

use hookgate_tests::{hookgate_bin, plugin_path, sample_order, target_dir, workspace_root};
use serde_json::{Value, json};
use std::process::Command;

fn event_file(dir: &std::path::Path, body: &Value) -> std::path::PathBuf {
    let path = dir.join("event.json");
    std::fs::write(&path, serde_json::to_vec(body).expect("json")).expect("write");
    path
}

#[test]
fn plugin_run_prints_the_outcome() {
    let dir = tempfile::tempdir().expect("tempdir");
    let event = event_file(
        dir.path(),
        &json!({"id": "evt_cli", "type": "order_created", "payload": sample_order()}),
    );
    let out = Command::new(hookgate_bin())
        .args(["plugin", "run"])
        .arg(plugin_path("partner"))
        .arg("--event")
        .arg(&event)
        .args(["--config", "companyId=co_9"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(printed["eventId"], "evt_cli");
    assert_eq!(printed["outcome"]["type"], "deliver");
    let body = &printed["outcome"]["requests"][0]["body"]["json"];
    assert_eq!(body["webHookType"], "NEW_CONSUMER_ORDER");
    assert_eq!(body["companyId"], "co_9");
    assert_eq!(printed["version"].as_str().map(str::len), Some(64));
}

#[test]
fn plugin_run_reports_plugin_errors_and_bad_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let event = event_file(
        dir.path(),
        &json!({"type": "order_created", "payload": {"x": 1}}),
    );
    let run = |args: &[&str], file: &std::path::Path, event: &std::path::Path| {
        Command::new(hookgate_bin())
            .args(["plugin", "run"])
            .arg(file)
            .arg("--event")
            .arg(event)
            .args(args)
            .output()
            .expect("run")
    };
    let out = run(
        &["--config", "mode=panic"],
        &plugin_path("misbehave"),
        &event,
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("plugin `plugin_misbehave`") && stderr.contains("told to panic"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());

    // Plugin logs reach stderr.
    let out = run(&[], &plugin_path("misbehave"), &event);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("echo evt_"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let bad_event = dir.path().join("bad.json");
    std::fs::write(&bad_event, r#"{"type": "x", "payload": {}, "surprise": 1}"#).expect("write");
    let out = run(&[], &plugin_path("standard"), &bad_event);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("surprise"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run(&[], &plugin_path("other-world"), &event);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a hookgate:plugin@0.1.0"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The scaffold builds, passes its own test, and its component runs.
#[test]
fn plugin_new_scaffolds_a_working_crate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let crate_dir = dir.path().join("acme-crm");
    let out = Command::new(hookgate_bin())
        .args(["plugin", "new", "acme-crm", "--dir"])
        .arg(&crate_dir)
        .arg("--sdk-path")
        .arg(workspace_root().join("plugin-sdk"))
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Refuses to overwrite.
    let again = Command::new(hookgate_bin())
        .args(["plugin", "new", "acme-crm", "--dir"])
        .arg(&crate_dir)
        .output()
        .expect("run");
    assert!(!again.status.success());

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // Share the workspace's target folder so dependencies are not rebuilt.
    let target = target_dir().join("scaffold");
    let test = Command::new(&cargo)
        .args(["test", "--quiet"])
        .current_dir(&crate_dir)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("cargo test");
    assert!(
        test.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
    assert!(String::from_utf8_lossy(&test.stdout).contains("1 passed"));

    // `hookgate plugin build` builds any language's folder; for a crate,
    // `cargo build --release --target wasm32-wasip2`, the path printed last.
    let build = Command::new(hookgate_bin())
        .args(["plugin", "build"])
        .arg(&crate_dir)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("plugin build");
    assert!(build.status.success(), "{build:?}");
    let printed = String::from_utf8_lossy(&build.stdout);
    let wasm = std::path::PathBuf::from(printed.lines().last().expect("path").trim());
    assert_eq!(wasm, target.join("wasm32-wasip2/release/acme_crm.wasm"));
    let event = event_file(
        dir.path(),
        &json!({"type": "order_created", "payload": {"orderId": 5}}),
    );
    let out = Command::new(hookgate_bin())
        .args(["plugin", "run"])
        .arg(&wasm)
        .arg("--event")
        .arg(&event)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        printed["outcome"]["requests"][0]["body"]["json"]["data"],
        json!({"orderId": 5})
    );
}

/// `plugin diff`: two versions on recorded events, what differs as a diff;
/// exit 0 when nothing does, 1 when something does.
#[test]
fn plugin_diff_shows_what_a_new_version_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = dir.path().join("events.jsonl");
    std::fs::write(
        &events,
        "{\"id\": \"evt_1\", \"type\": \"order_created\", \"payload\": {\"order_id\": \"o1\"}}\n\n\
         {\"id\": \"evt_2\", \"type\": \"order_removed\", \"payload\": {}}\n",
    )
    .expect("events");
    let diff = |old: &str, new: &str, events: &std::path::Path| {
        Command::new(hookgate_bin())
            .args(["plugin", "diff"])
            .arg(plugin_path(old))
            .arg(plugin_path(new))
            .arg("--events")
            .arg(events)
            .output()
            .expect("run")
    };
    let same = diff("partner", "partner", &events);
    assert_eq!(same.status.code(), Some(0));
    let text = String::from_utf8_lossy(&same.stdout);
    assert!(
        text.contains("evt_1 order_created: same")
            && text.ends_with("2 events: 2 same, 0 changed\n"),
        "{text}"
    );

    let changed = diff("partner", "standard", &events);
    assert_eq!(changed.status.code(), Some(1));
    let text = String::from_utf8_lossy(&changed.stdout);
    assert!(text.contains("evt_1 order_created: changed"), "{text}");
    assert!(
        text.contains("-            \"webHookType\": \"NEW_CONSUMER_ORDER\""),
        "{text}"
    );
    assert!(
        text.contains("+            \"type\": \"order_created\""),
        "{text}"
    );
    assert!(text.ends_with("2 events: 0 same, 2 changed\n"), "{text}");

    std::fs::write(&events, "{\"type\": \"t\"}\n").expect("events");
    let bad = diff("partner", "standard", &events);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("line 1: not an event"));
}

/// `hookgate demo`, as the README's first command runs it: sets up the
/// pipeline, sees each sample event delivered, prints the dashboard's
/// address with a key that signs in, and keeps events flowing.
#[tokio::test]
async fn the_demo_delivers_its_samples_and_keeps_events_flowing() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).expect("mkdir");
    for name in ["partner", "slack", "standard"] {
        std::fs::copy(plugin_path(name), plugins.join(format!("{name}.wasm"))).expect("copy");
    }
    let mut demo = Command::new(hookgate_bin())
        .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--plugin-dir")
        .arg(&plugins)
        .env("HOOKGATE_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map(Stopped)
        .expect("demo");
    let stdout = std::io::BufReader::new(demo.0.stdout.take().expect("stdout"));
    // Its set-up and samples, up to the dashboard's line.
    let lines = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        for line in stdout.lines() {
            let line = line.expect("line");
            let done = line.contains("Dashboard: ");
            lines.push(line);
            if done {
                break;
            }
        }
        lines
    })
    .await
    .expect("read");
    let text = lines.join("\n");
    for (event, receivers) in [
        ("demo-order-1", 2),
        ("demo-order-2", 1),
        ("demo-order-3", 2),
    ] {
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("event {event}:")))
            .unwrap_or_else(|| panic!("no line for {event}: {text}"));
        assert_eq!(line.matches(" delivered").count(), receivers, "{line}");
    }
    let dashboard = lines.last().expect("the dashboard line");
    let url = dashboard
        .split_whitespace()
        .find(|w| w.starts_with("http://") && w.ends_with("/ui/"))
        .unwrap_or_else(|| panic!("no dashboard URL: {dashboard}"))
        .to_owned();
    let key = dashboard
        .split_whitespace()
        .find(|w| w.starts_with("hgk_"))
        .unwrap_or_else(|| panic!("no key: {dashboard}"))
        .to_owned();
    let base = url.trim_end_matches("/ui/").to_owned();
    let http = reqwest::Client::new();
    assert_eq!(http.get(&url).send().await.expect("ui").status(), 200);
    let events = || async {
        let stats: Value = http
            .get(format!("{base}/v1/stats"))
            .bearer_auth(&key)
            .send()
            .await
            .expect("stats")
            .json()
            .await
            .expect("json");
        stats["data"]["buckets"]
            .as_array()
            .expect("buckets")
            .iter()
            .map(|b| b["events"].as_i64().unwrap_or(0))
            .sum::<i64>()
    };
    assert_eq!(events().await, 3, "the samples");
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let later = events().await;
    assert!(later > 3, "no event flowed after the samples: {later}");
}

/// A child process stopped when dropped, so a failing test leaves none running.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

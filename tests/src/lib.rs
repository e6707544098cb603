//! Shared helpers for the black-box tests: build the real plugins and the
//! real `hookgate` binary once, and hand their paths to the tests.

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

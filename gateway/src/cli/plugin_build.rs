//! `hookgate plugin build [DIR]`: turns a plugin folder into a component,
//! whatever its language, and prints the `.wasm` path on its last line.
//!
//! - Rust (`Cargo.toml`): `cargo build --release --target wasm32-wasip2`.
//! - Python (`app.py`): `componentize-py` (PyPI) against this binary's own
//!   WIT and Python SDK, written into `DIR/build/` first, so a folder
//!   needs nothing but its code.
//! - JavaScript (`app.js`): `componentize-js` (npm) on the folder's modules
//!   copied into `DIR/build/src/` beside this binary's SDK and glue (the
//!   SDK's `hookgate.js` replaces the folder's copy, as Python's does).

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The contract, as this binary implements it.
const WIT: &str = include_str!("../../../wit/plugin.wit");
/// The Python SDK: the helper authors import, and the component's glue.
const PYTHON_SDK: [(&str, &str); 2] = [
    (
        "hookgate.py",
        include_str!("../../../plugin-sdk/python/hookgate.py"),
    ),
    (
        "hookgate_component.py",
        include_str!("../../../plugin-sdk/python/hookgate_component.py"),
    ),
];
/// The JavaScript SDK: the module authors import, and the component's glue.
const JS_SDK: [(&str, &str); 2] = [
    (
        "hookgate.js",
        include_str!("../../../plugin-sdk/js/hookgate.js"),
    ),
    (
        "hookgate_component.js",
        include_str!("../../../plugin-sdk/js/hookgate_component.js"),
    ),
];
/// The `componentize-py` this SDK is built and tested with.
pub const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";
/// The `componentize-js` this SDK is built and tested with.
pub const COMPONENTIZE_JS: &str = "@bytecodealliance/componentize-js@0.23.0";

/// The languages a plugin can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Language {
    /// A crate depending on `hookgate-sdk`.
    Rust,
    /// `app.py` with `transform(event, config)`, on the `hookgate` module.
    Python,
    /// `app.js` exporting `transform(event, config)`, on `hookgate.js`.
    Js,
}

impl Language {
    /// The language of the plugin folder `dir`, by the file that marks it.
    pub fn of(dir: &Path) -> anyhow::Result<Self> {
        if dir.join("Cargo.toml").is_file() {
            Ok(Self::Rust)
        } else if dir.join("app.py").is_file() {
            Ok(Self::Python)
        } else if dir.join("app.js").is_file() {
            Ok(Self::Js)
        } else {
            bail!(
                "{} is not a plugin folder: no Cargo.toml (Rust), app.py (Python) or app.js (JavaScript)",
                dir.display()
            )
        }
    }
}

/// Builds the plugin in `dir`; the component's path.
pub fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = dir
        .canonicalize()
        .with_context(|| format!("no folder {}", dir.display()))?;
    match Language::of(&dir)? {
        Language::Rust => build_rust(&dir),
        Language::Python => build_python(&dir),
        Language::Js => build_js(&dir),
    }
}

fn build_rust(dir: &Path) -> anyhow::Result<PathBuf> {
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(dir)
        .stderr(Stdio::inherit())
        .output()
        .context("could not run cargo")?;
    if !output.status.success() {
        bail!("cargo build failed ({})", output.status);
    }
    // The last `.wasm` artifact cargo reports is the plugin's.
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .flat_map(|m| {
            m["filenames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str().map(PathBuf::from))
                .collect::<Vec<_>>()
        })
        .rfind(|f| f.extension().is_some_and(|e| e == "wasm"))
        .context("cargo built no .wasm: is the crate a `cdylib`?")
}

fn build_python(dir: &Path) -> anyhow::Result<PathBuf> {
    let (out, wit, component) = prepare(dir)?;
    let sdk = out.join("sdk");
    std::fs::create_dir_all(&sdk)?;
    for (name, text) in PYTHON_SDK {
        std::fs::write(sdk.join(name), text)?;
    }
    let mut command = Command::new("componentize-py");
    command
        .arg("-d")
        .arg(&wit)
        .args(["-w", "integration", "componentize", "-p"])
        .arg(&sdk)
        .arg("-p")
        .arg(dir)
        .arg("hookgate_component")
        .arg("-o")
        .arg(&component);
    componentize(command, &format!("pip install {COMPONENTIZE_PY}"))?;
    Ok(component)
}

fn build_js(dir: &Path) -> anyhow::Result<PathBuf> {
    let (out, wit, component) = prepare(dir)?;
    let src = out.join("src");
    std::fs::create_dir_all(&src)?;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let module = name.ends_with(".js") || name.ends_with(".mjs");
        let test = name.ends_with(".test.js") || name.ends_with(".test.mjs");
        if path.is_file() && module && !test {
            std::fs::copy(&path, src.join(path.file_name().context("a file name")?))?;
        }
    }
    for (name, text) in JS_SDK {
        std::fs::write(src.join(name), text)?;
    }
    // The folder's own componentize-js (`npm install`), else one on PATH.
    let local = dir.join("node_modules/.bin/componentize-js");
    let program = if local.is_file() {
        local
    } else {
        PathBuf::from("componentize-js")
    };
    let mut command = Command::new(&program);
    command
        .arg(src.join("hookgate_component.js"))
        .arg("--wit")
        .arg(&wit)
        .args(["--world-name", "integration"])
        // No wasi:http: the sandbox offers none, and a component importing it is refused.
        .args(["--disable", "http", "fetch-event"])
        .arg("--out")
        .arg(&component);
    componentize(
        command,
        &format!("npm install --save-dev {COMPONENTIZE_JS}"),
    )?;
    Ok(component)
}

/// Runs a componentizer, its output shown as it goes; `install` says how
/// to get it when it is missing.
fn componentize(mut command: Command, install: &str) -> anyhow::Result<()> {
    let program = command.get_program().to_string_lossy().into_owned();
    let status = command
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| {
            anyhow::anyhow!("could not run {program} ({e}); install it with `{install}`")
        })?;
    if !status.success() {
        bail!("{program} failed ({status})");
    }
    Ok(())
}

/// `DIR/build/` with the WIT written into `DIR/build/wit/`; the build
/// folder, the WIT folder and the component's path (`DIR/build/NAME.wasm`).
fn prepare(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf, PathBuf)> {
    let out = dir.join("build");
    let wit = out.join("wit");
    std::fs::create_dir_all(&wit)?;
    std::fs::write(wit.join("plugin.wit"), WIT)?;
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("plugin");
    let component = out.join(format!("{name}.wasm"));
    Ok((out, wit, component))
}

/// The SDK module authors import in `language` (file name, text), copied
/// into a new plugin by the scaffold.
pub(super) fn sdk_module(language: Language) -> Option<(&'static str, &'static str)> {
    match language {
        Language::Rust => None,
        Language::Python => Some(PYTHON_SDK[0]),
        Language::Js => Some(JS_SDK[0]),
    }
}

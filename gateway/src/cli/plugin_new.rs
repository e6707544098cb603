//! `hookgate plugin new`: scaffolds a plugin from `templates/plugin`
//! (Rust) or `templates/plugin-python`.

use super::Language;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

const CARGO_TOML: &str = include_str!("../../templates/plugin/Cargo.toml.tmpl");
const LIB_RS: &str = include_str!("../../templates/plugin/lib.rs.tmpl");
const CARGO_CONFIG: &str = include_str!("../../templates/plugin/cargo-config.toml.tmpl");
const GITIGNORE: &str = "/target\n";
const APP_PY: &str = include_str!("../../templates/plugin-python/app.py.tmpl");
const TEST_APP_PY: &str = include_str!("../../templates/plugin-python/test_app.py.tmpl");
const PYTHON_GITIGNORE: &str = "/build\n__pycache__/\n";
const APP_JS: &str = include_str!("../../templates/plugin-js/app.js.tmpl");
const APP_TEST_JS: &str = include_str!("../../templates/plugin-js/app.test.js.tmpl");
const PACKAGE_JSON: &str = include_str!("../../templates/plugin-js/package.json.tmpl");
const JS_GITIGNORE: &str = "/build\n/node_modules\n";

/// Writes a new plugin `name` in `language` into `dir` (a Rust crate
/// depends on the SDK at `sdk_path`; a Python plugin gets its own copy of
/// the SDK module). Refuses to overwrite an existing folder.
pub fn scaffold(
    name: &str,
    dir: &Path,
    language: Language,
    sdk_path: &Path,
) -> anyhow::Result<PathBuf> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        bail!(
            "invalid plugin name `{name}`: start with a-z, then a-z, 0-9, `-` or `_` (at most 64)"
        );
    }
    if dir.exists() {
        bail!("{} already exists; choose another --dir", dir.display());
    }
    let files: &[(&str, &str)] = match language {
        Language::Rust => return scaffold_rust(name, dir, sdk_path),
        Language::Python => &[
            ("app.py", APP_PY),
            ("test_app.py", TEST_APP_PY),
            (".gitignore", PYTHON_GITIGNORE),
        ],
        Language::Js => &[
            ("app.js", APP_JS),
            ("app.test.js", APP_TEST_JS),
            ("package.json", PACKAGE_JSON),
            (".gitignore", JS_GITIGNORE),
        ],
    };
    std::fs::create_dir_all(dir)?;
    for (file, template) in files {
        std::fs::write(dir.join(file), template.replace("{{name}}", name))?;
    }
    if let Some((file, text)) = super::plugin_build::sdk_module(language) {
        std::fs::write(dir.join(file), text)?;
    }
    Ok(dir.to_path_buf())
}

/// A plugin crate depending on the SDK at `sdk_path`.
fn scaffold_rust(name: &str, dir: &Path, sdk_path: &Path) -> anyhow::Result<PathBuf> {
    let sdk_path = sdk_path
        .canonicalize()
        .with_context(|| format!("the SDK is not at {}; pass --sdk-path", sdk_path.display()))?;
    let sdk = sdk_path.to_str().context("the SDK path is not UTF-8")?;
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate_name}}", &name.replace('-', "_"))
            .replace("{{sdk_path}}", &sdk.replace('\\', "\\\\"))
    };
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::write(dir.join("Cargo.toml"), fill(CARGO_TOML))?;
    std::fs::write(dir.join("src/lib.rs"), fill(LIB_RS))?;
    std::fs::write(dir.join(".gitignore"), GITIGNORE)?;
    std::fs::create_dir_all(dir.join(".cargo"))?;
    std::fs::write(dir.join(".cargo/config.toml"), CARGO_CONFIG)?;
    Ok(dir.to_path_buf())
}

/// The SDK this binary was built beside.
pub fn default_sdk_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-sdk")
}

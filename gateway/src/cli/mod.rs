//! The `hookgate` command line: flags and environment variables parsed into
//! typed settings, and the subcommands that do not serve HTTP.

mod plugin_build;
mod plugin_diff;
mod plugin_new;
mod plugin_run;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

pub use plugin_build::{COMPONENTIZE_JS, COMPONENTIZE_PY, Language, build as build_plugin};
pub use plugin_diff::{DiffReport, diff_plugins};
pub use plugin_new::{default_sdk_path, scaffold};
pub use plugin_run::{EventFile, outcome_json, run_plugin};

/// Hookgate: a WebAssembly plugin-based webhook integration gateway.
#[derive(Debug, Parser)]
#[command(name = "hookgate", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve(Box<crate::config::ServeArgs>),
    /// Run the gateway with a local token endpoint and receiver, set up a
    /// demo organization, post sample events and show them arrive.
    Demo(Box<crate::config::ServeArgs>),
    /// Work with plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

/// `hookgate plugin …`
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Run a plugin once on a sample event and print its outcome as JSON.
    Run(PluginRunArgs),
    /// Create a new plugin (Rust, Python, JavaScript) that builds and passes its test as generated.
    New(PluginNewArgs),
    /// Build a plugin folder of any language into a component; prints the `.wasm` path last.
    Build(PluginBuildArgs),
    /// Run two versions of a plugin on recorded events and show what differs (exit 1 when anything does).
    Diff(PluginDiffArgs),
}

/// `hookgate plugin diff`
#[derive(Debug, Args)]
pub struct PluginDiffArgs {
    /// The version in use (`.wasm`).
    pub old: PathBuf,
    /// The candidate (`.wasm`).
    pub new: PathBuf,
    /// Events, one JSON object per line, shaped like a `POST /v1/events` body.
    #[arg(long)]
    pub events: PathBuf,
    /// A configuration value for both, `key=value`; repeatable.
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub config: Vec<(String, String)>,
    /// Sandbox limits.
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// `hookgate plugin build`
#[derive(Debug, Args)]
pub struct PluginBuildArgs {
    /// The plugin's folder.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

/// Sandbox limits, shared by every command that runs plugins.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Time deadline of one transform, in milliseconds.
    #[arg(long, env = "HOOKGATE_PLUGIN_DEADLINE_MS", default_value_t = 100)]
    pub plugin_deadline_ms: u64,
    /// Linear memory cap of one plugin instance, in MiB.
    #[arg(long, env = "HOOKGATE_PLUGIN_MEMORY_MIB", default_value_t = 32)]
    pub plugin_memory_mib: usize,
    /// Cap on what one transform may return, in KiB.
    #[arg(long, env = "HOOKGATE_PLUGIN_OUTPUT_KIB", default_value_t = 1024)]
    pub plugin_output_kib: usize,
    /// Cap on the requests one transform may return (each is a delivery).
    #[arg(long, env = "HOOKGATE_PLUGIN_MAX_REQUESTS", default_value_t = 64)]
    pub plugin_max_requests: usize,
    /// The largest memory cap a plugin's own settings may ask for, in MiB.
    #[arg(long, env = "HOOKGATE_PLUGIN_MAX_MEMORY_MIB", default_value_t = 256)]
    pub plugin_max_memory_mib: usize,
    /// The longest deadline a plugin's own settings may ask for, in milliseconds.
    #[arg(long, env = "HOOKGATE_PLUGIN_MAX_DEADLINE_MS", default_value_t = 5000)]
    pub plugin_max_deadline_ms: u64,
    /// The most events per instance a plugin's own settings may ask for
    /// (1: no plugin reuses instances).
    #[arg(long, env = "HOOKGATE_PLUGIN_MAX_REUSE", default_value_t = 100_000)]
    pub plugin_max_reuse: u32,
}

impl LimitArgs {
    /// The runtime limits these flags describe.
    pub fn limits(&self) -> crate::plugin::Limits {
        crate::plugin::Limits {
            deadline: std::time::Duration::from_millis(self.plugin_deadline_ms.max(1)),
            memory_bytes: self.plugin_memory_mib.max(1) << 20,
            output_bytes: self.plugin_output_kib.max(1) << 10,
            output_requests: self.plugin_max_requests.max(1),
        }
    }

    /// The most a plugin's own settings may ask for.
    pub fn maxima(&self) -> crate::plugin::Maxima {
        crate::plugin::Maxima {
            memory_bytes: self.plugin_max_memory_mib.max(1) << 20,
            deadline: std::time::Duration::from_millis(self.plugin_max_deadline_ms.max(1)),
            reuse: self.plugin_max_reuse.max(1),
        }
    }

    /// A runtime for a command that runs a plugin or two on this machine.
    pub fn local_runtime(&self) -> anyhow::Result<crate::plugin::Runtime> {
        crate::plugin::Runtime::new(crate::plugin::RuntimeConfig {
            limits: self.limits(),
            maxima: self.maxima(),
            cache_dir: None,
            max_instances: 2,
        })
    }
}

/// `hookgate plugin run`
#[derive(Debug, Args)]
pub struct PluginRunArgs {
    /// The component to run (`.wasm`, built for wasm32-wasip2).
    pub file: PathBuf,
    /// A JSON file shaped like a `POST /v1/events` body: `{"id"?, "type", "payload", "shopId"?}`.
    #[arg(long)]
    pub event: PathBuf,
    /// A configuration value for the plugin, `key=value`; repeatable.
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub config: Vec<(String, String)>,
    /// Sandbox limits.
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// `hookgate plugin new`
#[derive(Debug, Args)]
pub struct PluginNewArgs {
    /// The plugin's name: lowercase letters, digits, `-` and `_`.
    pub name: String,
    /// Folder to create the plugin in (default: `./NAME`).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The language to write it in.
    #[arg(long, value_enum, default_value_t = Language::Rust)]
    pub lang: Language,
    /// Path to the `plugin-sdk` crate (default: the one this binary was built from).
    #[arg(long)]
    pub sdk_path: Option<PathBuf>,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected KEY=VALUE, got `{s}`"))
}

//! The `hookgate` binary.

use clap::Parser;
use hookgate::cli::{Cli, Command, PluginCommand};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Plugin(PluginCommand::Run(args)) => match hookgate::cli::run_plugin(&args)? {
            Ok(output) => {
                println!("{}", serde_json::to_string_pretty(&output)?);
                Ok(ExitCode::SUCCESS)
            }
            Err(message) => {
                eprintln!("error: {message}");
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Plugin(PluginCommand::New(args)) => {
            let dir = args.dir.unwrap_or_else(|| args.name.clone().into());
            let sdk = args
                .sdk_path
                .unwrap_or_else(hookgate::cli::default_sdk_path);
            let dir = hookgate::cli::scaffold(&args.name, &dir, &sdk)?;
            println!(
                "created {} — `cargo test` runs its test; `cargo build --release --target wasm32-wasip2` builds the component",
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Logs go to stderr; `HOOKGATE_LOG` filters them (default `info`),
/// `HOOKGATE_LOG_FORMAT=json` makes them JSON lines.
fn init_logging() {
    let filter = EnvFilter::try_from_env("HOOKGATE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("HOOKGATE_LOG_FORMAT").is_ok_and(|v| v == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

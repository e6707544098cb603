//! The `hookgate` binary.

use clap::Parser;
use hookgate::cli::{Cli, Command, PluginCommand};
use std::process::ExitCode;

/// mimalloc: under load, glibc's malloc took ~17% of the gateway's CPU
/// (`perf`, end-to-end bench), spread over every stage.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let telemetry = match hookgate::telemetry::Telemetry::init() {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let code = match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown();
    code
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Demo(args) => {
            let settings = args.settings()?;
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let cancel = tokio_util::sync::CancellationToken::new();
                let on_signal = cancel.clone();
                tokio::spawn(async move {
                    shutdown_signal().await;
                    on_signal.cancel();
                });
                hookgate::demo::run(settings, cancel).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => {
            let settings = args.settings()?;
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(serve(settings))?;
            Ok(ExitCode::SUCCESS)
        }
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
            let dir = hookgate::cli::scaffold(&args.name, &dir, args.lang, &sdk)?;
            let test = match args.lang {
                hookgate::cli::Language::Rust => "cargo test",
                hookgate::cli::Language::Python => "python3 -m unittest",
                hookgate::cli::Language::Js => "npm install && node --test",
            };
            println!(
                "created {} — `{test}` runs its test; `hookgate plugin build {}` builds the component",
                dir.display(),
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugin(PluginCommand::Diff(args)) => {
            let report = hookgate::cli::diff_plugins(&args)?;
            print!("{}", report.text);
            Ok(if report.changed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Plugin(PluginCommand::Build(args)) => {
            let component = hookgate::cli::build_plugin(&args.dir)?;
            println!("{}", component.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn serve(settings: hookgate::config::ServeSettings) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(settings.listen).await?;
    let cancel = tokio_util::sync::CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        on_signal.cancel();
    });
    hookgate::server::run(settings, listener, cancel).await
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return ctrl_c.await.unwrap_or_default(),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or_default();
}

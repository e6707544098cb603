//! Hookgate: a WebAssembly plugin-based webhook integration gateway.
//!
//! The pipeline is `ingest → route → transform → authorize → sign →
//! deliver → record`; see `ARCHITECTURE.md` for the map.

#![deny(unsafe_code)]

pub mod api;
pub mod cli;
pub mod config;
pub mod demo;
pub mod model;
pub mod pipeline;
pub mod plugin;
pub mod plugin_sync;
pub mod retention;
pub mod secrets;
pub mod server;
pub mod ssrf;
pub mod store;
pub mod telemetry;

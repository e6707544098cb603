//! Hookgate: a WebAssembly plugin-based webhook integration gateway.
//!
//! The pipeline is `ingest → route → transform → authorize → sign →
//! deliver → record`; see `ARCHITECTURE.md` for the map.

#![deny(unsafe_code)]

pub mod api;
pub mod authorize;
pub mod cli;
pub mod config;
pub mod deliver;
pub mod demo;
pub mod ingest;
pub mod model;
pub mod plugin;
pub mod plugin_sync;
pub mod record;
pub mod secrets;
pub mod server;
pub mod sign;
pub mod ssrf;
pub mod store;
pub mod transform;
pub mod worker;

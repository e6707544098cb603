//! Hookgate: a WebAssembly plugin-based webhook integration gateway.
//!
//! The pipeline is `ingest → route → transform → authorize → sign →
//! deliver → record`; see `ARCHITECTURE.md` for the map.

#![deny(unsafe_code)]

pub mod cli;
pub mod plugin;

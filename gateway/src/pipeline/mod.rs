//! The delivery pipeline, one module per stage, in the order data flows:
//!
//! ```text
//! ingest ─► route ─► (durable queue) ─► transform ─► authorize ─► sign ─► deliver ─► record
//! ```
//!
//! [`ingest`] stores an event with one delivery per route in one
//! transaction ([`route`] says what routing is). The [`worker`] claims due
//! deliveries and runs each through [`attempt`], which chains the stages:
//! [`transform`] (the plugin), [`authorize`] (OAuth2 token, auth header),
//! [`sign`] (Standard Webhooks), [`request`] (what the receiver gets, built
//! in one place), [`deliver`] (HTTP), and [`record`] (what the attempt came
//! to and the delivery's next state).

pub mod attempt;
pub mod authorize;
pub mod client_assertion;
pub mod clients;
pub mod deliver;
pub mod dry_run;
pub mod ingest;
pub mod operational;
pub mod record;
pub mod request;
pub mod route;
pub mod schema;
pub mod sign;
pub mod transform;
pub mod verify;
pub mod worker;

pub use worker::{Pipeline, WorkerSettings};

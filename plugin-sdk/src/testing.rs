//! Run a plugin natively in unit tests: plain `cargo test`, no wasm, no
//! gateway.
//!
//! ```
//! use hookgate_sdk::testing::Harness;
//! use hookgate_sdk::{Config, Error, Event, Outcome, Plugin, Request, serde_json::json};
//!
//! struct Echo;
//! impl Plugin for Echo {
//!     fn transform(event: Event, config: &Config) -> Result<Outcome, Error> {
//!         hookgate_sdk::log::info("echoing");
//!         Ok(Outcome::deliver(
//!             Request::new(event.body, "application/json").header("x-tag", config.get_or("tag", "none")),
//!         ))
//!     }
//! }
//!
//! let run = Harness::new().config("tag", "blue").run::<Echo>(Event::from_json("order_created", &json!({"n": 1})));
//! let outcome = run.outcome.unwrap();
//! assert_eq!(outcome.requests()[0].header_value("x-tag"), Some("blue"));
//! assert_eq!(run.logs, vec![(hookgate_sdk::log::Level::Info, "echoing".to_owned())]);
//! ```

use crate::log::Level;
#[cfg(not(target_arch = "wasm32"))]
use crate::{Config, Event, Plugin};
use crate::{Error, Outcome};
use std::collections::BTreeMap;

/// Runs a [`Plugin`] natively with fixed configuration values.
#[derive(Debug, Clone, Default)]
pub struct Harness {
    config: BTreeMap<String, String>,
}

/// The result of one native run: the outcome and every line logged.
#[derive(Debug)]
pub struct Run {
    /// What `transform` returned.
    pub outcome: Result<Outcome, Error>,
    /// The lines the plugin logged, in order.
    pub logs: Vec<(Level, String)>,
}

impl Harness {
    /// A harness with no configuration values.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets configuration value `key` to `value`.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.insert(key.into(), value.into());
        self
    }

    /// Runs `P::transform` on `event`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run<P: Plugin>(&self, event: Event) -> Run {
        let _ = crate::log::take_captured();
        let config = Config::from_pairs(self.config.clone());
        let outcome = P::transform(event, &config);
        Run {
            outcome,
            logs: crate::log::take_captured(),
        }
    }
}

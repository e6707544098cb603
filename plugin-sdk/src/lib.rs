//! The Hookgate plugin SDK.
//!
//! A Hookgate plugin turns one platform event into the request(s) a
//! receiving system wants. Write a type that implements [`Plugin`], export it
//! with [`export_plugin!`], build it for `wasm32-wasip2`, and hand the `.wasm`
//! file to the gateway:
//!
//! ```
//! use hookgate_sdk::{export_plugin, Config, Error, Event, Outcome, Plugin, Request};
//!
//! struct Shout;
//!
//! impl Plugin for Shout {
//!     fn transform(event: Event, config: &Config) -> Result<Outcome, Error> {
//!         let payload = event.json()?;
//!         let prefix = config.get("prefix").unwrap_or_default();
//!         let text = format!("{prefix}{} happened", event.hook_type);
//!         Ok(Outcome::deliver(Request::json(&serde_json::json!({
//!             "text": text.to_uppercase(),
//!             "data": payload,
//!         }))?))
//!     }
//! }
//!
//! export_plugin!(Shout);
//! ```
//!
//! Unit-test the same code natively, with no wasm and no gateway, through
//! [`testing`].
//!
//! # The sandbox
//! A plugin has no network, files, environment or clock of its own; it sees
//! the event and its integration's configuration, and can log through [`log`].
//! It never sees credentials: the gateway adds the auth header and the
//! Standard Webhooks signature after the plugin returns. Each call has a time
//! deadline (default 100 ms), a memory cap (default 32 MiB) and an output cap
//! (default 1 MiB); a plugin that panics, loops or runs past a cap fails that
//! one delivery with a recorded error.
//!
//! # Instances and isolation
//! By default the gateway runs every event on a **fresh instance**: nothing a
//! plugin stores in a `static` survives to the next event. Operators may turn
//! on **instance reuse** for a plugin they trust (about twice the throughput):
//! one instance then serves up to N consecutive events of the *same*
//! integration and plugin version, and is discarded after a trap or deadline.
//! Under reuse, globals and caches *do* persist between events of that one
//! integration, never across integrations. Write plugins as pure functions of
//! `(event, config)` and they behave the same in both modes.

#![deny(missing_docs)]

mod config;
pub mod log;
mod types;

pub mod testing;

pub use config::Config;
pub use serde_json;
pub use types::{Error, Event, Header, Outcome, Request};

/// Implement this for your plugin, then export it with [`export_plugin!`].
pub trait Plugin {
    /// Turns `event` into the requests to deliver, or drops it.
    ///
    /// Return [`Error::InvalidEvent`] when the event is not what the plugin
    /// expects and [`Error::Failed`] for anything else; neither is retried.
    fn transform(event: Event, config: &Config) -> Result<Outcome, Error>;
}

#[doc(hidden)]
#[allow(clippy::too_many_arguments, unsafe_code)]
pub mod __bindings {
    wit_bindgen::generate!({
        world: "integration",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "__export_integration",
        default_bindings_module: "hookgate_sdk::__bindings",
    });
}

#[doc(hidden)]
pub mod __private {
    use crate::__bindings::hookgate::plugin::types as wit;
    use crate::{Config, Plugin};

    /// The body of the exported `transform`: converts WIT types to SDK
    /// types and back.
    pub fn transform<P: Plugin>(event: wit::Event) -> Result<wit::Outcome, wit::PluginError> {
        P::transform(event.into(), &Config::host())
            .map(Into::into)
            .map_err(Into::into)
    }
}

/// Exports a [`Plugin`] implementation as the component's `transform`.
///
/// Use it once, at the root of your plugin crate: `export_plugin!(MyPlugin);`
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        const _: () = {
            struct HookgateExport;
            impl $crate::__bindings::Guest for HookgateExport {
                fn transform(
                    event: $crate::__bindings::hookgate::plugin::types::Event,
                ) -> ::core::result::Result<
                    $crate::__bindings::hookgate::plugin::types::Outcome,
                    $crate::__bindings::hookgate::plugin::types::PluginError,
                > {
                    $crate::__private::transform::<$plugin>(event)
                }
            }
            $crate::__bindings::__export_integration!(HookgateExport with_types_in $crate::__bindings);
        };
    };
}

//! The one place that runs `bindgen!` over `wit/plugin.wit`. Everything
//! generated stays private to `plugin`; the rest of the gateway sees the
//! plain types of `plugin::types`.

wasmtime::component::bindgen!({
    world: "integration",
    path: "../wit",
});

pub(super) use hookgate::plugin::host::{Host, Level};

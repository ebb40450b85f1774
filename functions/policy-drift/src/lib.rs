//! policy-drift: the handler as a library, so tests and the local demo drive the same code the
//! Lambda binary runs.

pub mod apply;
pub mod commands;
pub mod config;
pub mod handler;
pub mod per_key;
pub mod plan;
pub mod record;

pub use config::Config;
pub use handler::{function_handler, invoke, Deps, PolicyDrift, GATE};

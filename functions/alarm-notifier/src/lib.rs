//! alarm-notifier: the handler as a library, so tests and the local demo drive the same code
//! the Lambda binary runs.

pub mod alarm;
pub mod config;
pub mod dedup;
pub mod enrich;
pub mod handler;
pub mod lint;
pub mod message;
pub mod sweep;

pub use config::Config;
pub use handler::{function_handler, AlarmNotifier, AlarmReport, Clients, Deps};

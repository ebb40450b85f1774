//! replica-grant-validator: the handler as a library, so tests and the local demo drive the
//! same code the Lambda binary runs.

pub mod buckets;
pub mod config;
pub mod grants;
pub mod handler;

pub use handler::{FUNCTION, GATE};

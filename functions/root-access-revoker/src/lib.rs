//! root-access-revoker: the handler as a library, so tests and the local demo drive the same
//! code the Lambda binary runs.

pub mod apply;
pub mod config;
pub mod decide;
pub mod deps;
pub mod handler;
pub mod plan;
pub mod proof;
pub mod report;
pub mod revoke;
pub mod watch;

pub use config::Config;
pub use handler::{function_handler, Clients, Deps, RevokerReport, RootAccessRevoker, GATE, NAME};

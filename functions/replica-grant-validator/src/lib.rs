//! replica-grant-validator: the handler as a library, so tests and the local demo drive the
//! same code the Lambda binary runs.

pub mod audit;
pub mod buckets;
pub mod config;
pub mod deps;
pub mod grants;
pub mod handler;
pub mod message;
pub mod primary;
pub mod replicas;
pub mod report;

pub use config::Config;
pub use deps::{Clients, Deps};
pub use handler::{function_handler, ReplicaGrantValidator, Response, FUNCTION, GATE, HANDLED};

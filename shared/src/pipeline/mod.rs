//! The one door of every function: [`handle`] takes the Lambda event, parses the trigger,
//! sends it through the gate, resolution and membership (or the sweep, or the function's own
//! routes), runs the function's `read` -> `decide` -> `apply` per key, and announces the
//! result once, telling failures a retry can fix from those only a person can.

pub mod announce;
pub mod audit;
pub mod door;
pub mod fanout;
pub mod faults;
pub mod guardrail;
pub mod journal;
pub mod managed;
pub mod membership;
pub mod notices;
pub mod resolve;
pub mod sweep;

pub use crate::config::FunctionConfig;
pub use announce::Guard;
pub use audit::{Aliases, Audit, RegionAliases};
pub use door::{audit_one, handle, retry_or_report};
pub use guardrail::{Deps, Guardrail, Invocation, NoReport, Response, SweepMessages};

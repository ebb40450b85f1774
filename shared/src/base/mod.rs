//! The words every other layer speaks: ARNs, Regions, account ids, errors and their
//! classification, and text made safe for messages. Imports nothing from the crate.

pub mod arn;
pub mod error;
pub mod outbox;
pub mod pace;
pub mod region;
pub mod text;

//! The common library of the kms-guardrails Lambda functions.

pub mod aws;
pub mod baseline;
pub mod config;
pub mod error;
pub mod events;
pub mod kms;
pub mod managed;
pub mod notify;
pub mod outcome;
pub mod policy;
pub mod telemetry;

pub use error::GuardrailError;

//! The common library of the kms-guardrails Lambda functions: the pipeline every function
//! runs (trigger, gate, resolution, sweep, announcement) and the key-policy model.

pub mod alarm;
pub mod arn;
pub mod aws;
pub mod baseline;
pub mod config;
pub mod error;
pub mod evaluate;
pub mod events;
pub mod gate;
pub mod grants;
pub mod kms;
pub mod kms_rules;
pub mod managed;
pub mod membership;
pub mod notify;
pub mod outcome;
pub mod pipeline;
pub mod policy;
pub mod resolve;
pub mod runtime;
pub mod safe_policy;
pub mod sweep;
pub mod tagging;
pub mod telemetry;
pub mod text;

pub use error::GuardrailError;

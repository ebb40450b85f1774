//! The common library of the kms-guardrails Lambda functions, in layers read top-down; each
//! imports only from the layers above it in this list (`tests/layers.rs` holds that):
//!
//! - `base`: ARNs, Regions, account ids, errors and their retry classification, safe text.
//! - `policy`: the key-policy model, evaluation, KMS's rules, the baseline. Pure.
//! - `triggers`: EventBridge, CloudTrail and CloudWatch alarm events; the event gate.
//! - `config`: the typed configuration every function shares.
//! - `aws`: SDK configuration, the per-Region client cache, KMS, grant and tagging calls.
//! - `desired`: each key's recorded desired state, its versions, and the floor every key keeps.
//! - `notify`: outcomes, the message frame and delivery, the metrics.
//! - `pipeline`: the `Guardrail` trait and everything around it: resolution, membership,
//!   the sweep, the retry-or-report rule.
//! - `runtime`: start-up and logs.

pub mod aws;
pub mod base;
pub mod config;
pub mod desired;
pub mod notify;
pub mod pipeline;
pub mod policy;
pub mod runtime;
pub mod triggers;

#[cfg(any(test, feature = "test-support"))]
pub mod testing;

pub use base::error::GuardrailError;

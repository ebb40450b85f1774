//! The key-policy model and what is decided from it alone: parsing, canonical form and
//! semantic diff (`model`), evaluation (`evaluate`), KMS's own rules (`kms_rules`), the
//! baseline built from configuration (`baseline`) and the one door to PutKeyPolicy
//! (`safe_policy`). Pure: no I/O.

pub mod baseline;
pub mod evaluate;
pub mod kms_rules;
pub mod model;
pub mod safe_policy;

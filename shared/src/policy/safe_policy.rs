//! The only door to PutKeyPolicy: a document becomes a [`SafePolicy`] after it passed KMS's own
//! rules (which the local emulator does not enforce) and a lockout evaluation for every
//! principal that must keep administering the key. No code path can write anything else.

use crate::policy::evaluate::lockout_problems;
use crate::policy::kms_rules::check_kms_rules;
use crate::policy::model::Policy;

/// What must still hold after a write: the function's own role keeps what KMS's lockout
/// check and the next correction need, and each administrator keeps the policy in hand.
pub const SELF_ACTIONS: &[&str] = &["kms:PutKeyPolicy", "kms:GetKeyPolicy", "kms:DescribeKey"];
pub const ADMIN_ACTIONS: &[&str] = &["kms:PutKeyPolicy", "kms:GetKeyPolicy"];

#[derive(Debug, Clone, Copy)]
pub struct Keeper<'a> {
    pub principal: &'a str,
    pub actions: &'a [&'a str],
}

/// Why a document may not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// KMS itself would reject it (the local emulator would not).
    KmsRules(String),
    /// Writing it would take a keeper's control of the key away.
    Lockout(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::KmsRules(v) => write!(f, "KMS would reject it: {v}"),
            Refusal::Lockout(p) => write!(f, "it would lock a key out: {p}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SafePolicy {
    document: String,
    policy: Policy,
}

impl SafePolicy {
    /// Checks `document` against KMS's rules and evaluates it for every keeper. The keepers'
    /// IAM policies may grant what an account principal in the key policy delegates to IAM
    /// (the template grants the function's role its KMS actions).
    pub fn check(document: &str, keepers: &[Keeper<'_>]) -> Result<SafePolicy, Vec<Refusal>> {
        let policy = check_kms_rules(document)
            .map_err(|violations| vec![Refusal::KmsRules(violations.to_string())])?;
        let requirements: Vec<(&str, &str)> = keepers
            .iter()
            .flat_map(|k| k.actions.iter().map(move |a| (k.principal, *a)))
            .collect();
        let problems: Vec<Refusal> = lockout_problems(&policy, &requirements, true)
            .into_iter()
            .map(Refusal::Lockout)
            .collect();
        if problems.is_empty() {
            Ok(SafePolicy {
                document: document.to_string(),
                policy,
            })
        } else {
            Err(problems)
        }
    }

    pub fn document(&self) -> &str {
        &self.document
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

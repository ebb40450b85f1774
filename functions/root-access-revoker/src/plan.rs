//! What the revoker reads about one key and what it concludes: [`Facts`] in, [`Plan`] out,
//! pure. The checks themselves are [`crate::decide`]'s; the writes are [`crate::apply`]'s.

use shared::aws::kms::KeyInfo;
use shared::policy::model::{Policy, PolicyError};
use shared::policy::safe_policy::SafePolicy;

use crate::config::Config;
use crate::decide::{decide, AdminRole, Check, Decision};
use crate::revoke::{account_wide_statements, unique_id_principals, Revocation};

/// The key policy as KMS holds it and the configured admin roles as IAM knows them.
#[derive(Debug, Clone)]
pub struct Facts {
    pub policy: String,
    pub admins: Vec<AdminRole>,
}

/// What to do with one key.
#[derive(Debug)]
pub enum Plan {
    /// No root grant and nothing account-wide to remove: nothing to write or say.
    NothingToRevoke,
    /// Nothing to revoke, but what a person must know: statements that let every principal of
    /// the account use the key (kept unless REMOVE_ACCOUNT_WIDE_STATEMENTS), and principals
    /// shown by unique id (deleted). Reported; nothing is written.
    Report {
        account_wide: Vec<String>,
        orphans: Vec<String>,
    },
    /// A lockout check failed: nothing is written, and a person is told the fix.
    Blocked {
        check: Check,
        problem: String,
        fix: String,
        revocation: Revocation,
    },
    /// Every check passed: write `policy` (after the Access Analyzer proof, if configured).
    Revoke {
        revocation: Revocation,
        policy: SafePolicy,
    },
    /// The key policy is not a policy the revoker can read: reported, nothing changed.
    PolicyUnreadable(PolicyError),
}

/// The plan for `key` from its facts and the configuration: no I/O.
pub fn plan(config: &Config, key: &KeyInfo, facts: Facts) -> Plan {
    let decision = decide(
        &facts.policy,
        &key.account,
        &facts.admins,
        // In a member account the revoker acts as the member role: that role must keep control.
        &config.common.self_principal(&key.account),
        config.remove_account_wide,
    );
    match decision {
        Err(e) => Plan::PolicyUnreadable(e),
        Ok(Decision::NothingToRevoke) => {
            let Ok(policy) = Policy::parse(&facts.policy) else {
                return Plan::NothingToRevoke;
            };
            let account_wide = account_wide_statements(&policy, &key.account);
            let orphans = unique_id_principals(&policy);
            if account_wide.is_empty() && orphans.is_empty() {
                Plan::NothingToRevoke
            } else {
                Plan::Report {
                    account_wide,
                    orphans,
                }
            }
        }
        Ok(Decision::Blocked {
            check,
            problem,
            fix,
            revocation,
        }) => Plan::Blocked {
            check,
            problem,
            fix,
            revocation,
        },
        Ok(Decision::Revoke { revocation, policy }) => Plan::Revoke { revocation, policy },
    }
}

#[cfg(test)]
#[path = "tests/plan.rs"]
mod tests;

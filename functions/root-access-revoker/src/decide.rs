//! Whether taking the root out of a key policy is safe, as a pure function of the facts the
//! handler gathered: the policy text, the administrator roles as IAM knows them, and the
//! function's own role. Every check must pass before anything is written; the first that fails
//! blocks the write and says what a person should do.

use std::fmt;

use shared::base::text;
use shared::policy::evaluate::{access, lockout_problems, Access};
use shared::policy::model::{Policy, PolicyError};
use shared::policy::safe_policy::{Keeper, Refusal, SafePolicy, ADMIN_ACTIONS, SELF_ACTIONS};

use crate::revoke::{revoke_root, unique_id_principals, Revocation};

/// Longest problem or fix in a blocked message: long enough for every lockout problem of a
/// few administrators, short enough for a notification.
const MAX_MESSAGE_CHARS: usize = 2_000;

/// An administrator role from configuration, with what IAM says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRole {
    pub arn: String,
    /// The role's unique id (`AROA...`) from IAM GetRole; `None` when the role does not exist.
    pub role_id: Option<String>,
}

/// The lockout checks, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Check {
    /// At least one administrator role is configured and every one exists in IAM.
    AdminRoleExists,
    /// The current policy names each administrator role by its ARN, not by the unique id of a
    /// deleted role of the same name.
    SameRole,
    /// Without root, the policy still lets every administrator role call `kms:PutKeyPolicy`
    /// and `kms:GetKeyPolicy`.
    AdminKeepsControl,
    /// Without root, the policy still lets this function's role call what KMS's own lockout
    /// check and the next sweep need.
    FunctionKeepsControl,
    /// KMS would accept the new policy.
    KmsRules,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Check::AdminRoleExists => "the administrator role exists",
            Check::SameRole => "the key policy names the administrator role that exists now",
            Check::AdminKeepsControl => {
                "the administrator role keeps kms:PutKeyPolicy and kms:GetKeyPolicy"
            }
            Check::FunctionKeepsControl => "this function's role keeps control of the key",
            Check::KmsRules => "KMS would accept the new key policy",
        })
    }
}

#[derive(Debug, Clone)]
pub enum Decision {
    /// No root grant (and nothing account-wide to remove): nothing to write.
    NothingToRevoke,
    /// Root (and maybe the account-wide statement) removed; the result passed every check.
    Revoke {
        revocation: Revocation,
        policy: SafePolicy,
    },
    /// A check failed: no write. `problem` says what, `fix` what a person should do.
    Blocked {
        check: Check,
        problem: String,
        fix: String,
        revocation: Revocation,
    },
}

/// What to do with `policy_text` in `account`: nothing, the write of a checked policy without
/// root, or a block naming the first check that failed. `admins` are the configured
/// administrator roles as IAM GetRole found them; `self_role` is this function's role ARN.
pub fn decide(
    policy_text: &str,
    account: &str,
    admins: &[AdminRole],
    self_role: &str,
    remove_account_wide: bool,
) -> Result<Decision, PolicyError> {
    let Some(revocation) = revoke_root(policy_text, account, remove_account_wide)? else {
        return Ok(Decision::NothingToRevoke);
    };
    let current = Policy::parse(policy_text)?;
    let revoked = Policy::parse(&revocation.document)?;
    let checked = admin_role_exists(admins)
        .and_then(|()| same_role(&current, admins))
        .and_then(|()| admin_keeps_control(&revoked, admins))
        .and_then(|()| function_keeps_control(&revoked, self_role))
        .and_then(|()| kms_rules(&revocation.document, admins, self_role));
    Ok(match checked {
        Ok(policy) => Decision::Revoke { revocation, policy },
        Err(Block {
            check,
            problem,
            fix,
        }) => Decision::Blocked {
            check,
            problem: text::one_line(&problem, MAX_MESSAGE_CHARS),
            fix: text::one_line(&format!("{fix} {}", then(&revocation)), MAX_MESSAGE_CHARS),
            revocation,
        },
    })
}

struct Block {
    check: Check,
    problem: String,
    fix: String,
}

/// What every fix ends with: the broad grant is still there, so the fix is possible, and
/// then the revoker finishes the job.
fn then(revocation: &Revocation) -> &'static str {
    if revocation.removed.is_empty() {
        "(the account-wide statement is still in the key policy, so principals of the account \
         can still change it); the next run then removes that statement"
    } else {
        "(the account root is still in the key policy, so IAM administrators can still change \
         it); the next run then removes root"
    }
}

fn arns<'a>(roles: impl IntoIterator<Item = &'a AdminRole>) -> String {
    roles
        .into_iter()
        .map(|r| r.arn.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn admin_role_exists(admins: &[AdminRole]) -> Result<(), Block> {
    if admins.is_empty() {
        return Err(Block {
            check: Check::AdminRoleExists,
            problem: "no administrator role is configured, so once root is gone no principal \
                      would be known to be able to change the key policy"
                .into(),
            fix: "configure at least one administrator role: an IAM role that the key policy \
                  names in an Allow statement for kms:PutKeyPolicy and kms:GetKeyPolicy"
                .into(),
        });
    }
    let missing: Vec<&AdminRole> = admins.iter().filter(|a| a.role_id.is_none()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let roles = arns(missing.iter().copied());
    Err(Block {
        check: Check::AdminRoleExists,
        problem: format!(
            "the administrator role {roles} does not exist (IAM GetRole found no such role), \
             so once root is gone it could not change the key policy"
        ),
        fix: format!(
            "create the role {roles} again (or configure a role that exists), then have an \
             administrator with access add its new principal to the key policy"
        ),
    })
}

/// Whether any statement names `arn` in `Principal.AWS`.
fn names(policy: &Policy, arn: &str) -> bool {
    policy
        .statements
        .iter()
        .filter_map(|s| s.body.principal.as_ref())
        .filter_map(|kinds| kinds.get("AWS"))
        .any(|values| values.contains(arn))
}

fn same_role(current: &Policy, admins: &[AdminRole]) -> Result<(), Block> {
    let Some(admin) = admins.iter().find(|a| !names(current, &a.arn)) else {
        return Ok(());
    };
    let arn = &admin.arn;
    let ids = unique_id_principals(current);
    if ids.is_empty() {
        return Err(Block {
            check: Check::SameRole,
            problem: format!(
                "the key policy does not name the administrator role {arn}, so once root is \
                 gone it could not change the key policy"
            ),
            fix: format!(
                "add {arn} to an Allow statement for kms:PutKeyPolicy and kms:GetKeyPolicy in \
                 the key policy"
            ),
        });
    }
    let ids = ids.join(", ");
    let now = admin
        .role_id
        .as_deref()
        .map(|id| format!(" (its id is now {id})"))
        .unwrap_or_default();
    Err(Block {
        check: Check::SameRole,
        problem: format!(
            "the key policy does not name the administrator role {arn} but names the deleted \
             principal {ids}: the role named there was deleted, and a role created again under \
             the same name{now} is a different principal that the key policy does not name"
        ),
        fix: format!(
            "have an administrator with access replace {ids} with {arn} in the key policy's \
             administrator statement"
        ),
    })
}

fn admin_keeps_control(revoked: &Policy, admins: &[AdminRole]) -> Result<(), Block> {
    let lacking: Vec<&AdminRole> = admins
        .iter()
        .filter(|a| {
            ADMIN_ACTIONS
                .iter()
                .any(|action| access(revoked, &a.arn, action) != Access::Allowed)
        })
        .collect();
    if lacking.is_empty() {
        return Ok(());
    }
    let requirements: Vec<(&str, &str)> = lacking
        .iter()
        .flat_map(|a| ADMIN_ACTIONS.iter().map(|action| (a.arn.as_str(), *action)))
        .collect();
    let roles = arns(lacking.iter().copied());
    Err(Block {
        check: Check::AdminKeepsControl,
        problem: format!(
            "in the new key policy, {}",
            lockout_problems(revoked, &requirements, false).join("; ")
        ),
        fix: format!(
            "name {roles} in an Allow statement for kms:PutKeyPolicy and kms:GetKeyPolicy with \
             no Condition and Resource \"*\", and remove or narrow every Deny that covers it"
        ),
    })
}

fn function_keeps_control(revoked: &Policy, self_role: &str) -> Result<(), Block> {
    let requirements: Vec<(&str, &str)> = SELF_ACTIONS.iter().map(|a| (self_role, *a)).collect();
    let problems = lockout_problems(revoked, &requirements, false);
    if problems.is_empty() {
        return Ok(());
    }
    Err(Block {
        check: Check::FunctionKeepsControl,
        problem: format!(
            "in the new key policy, {}; KMS refuses a key policy that would stop its caller from \
             changing it again, and the next sweep must read the key",
            problems.join("; ")
        ),
        fix: format!(
            "name this function's role {self_role} in an Allow statement for {} with no \
             Condition and Resource \"*\", and remove or narrow every Deny that covers it",
            SELF_ACTIONS.join(", ")
        ),
    })
}

fn kms_rules(document: &str, admins: &[AdminRole], self_role: &str) -> Result<SafePolicy, Block> {
    let keepers: Vec<Keeper<'_>> = admins
        .iter()
        .map(|a| Keeper {
            principal: &a.arn,
            actions: ADMIN_ACTIONS,
        })
        .chain([Keeper {
            principal: self_role,
            actions: SELF_ACTIONS,
        }])
        .collect();
    SafePolicy::check(document, &keepers).map_err(|refusals| {
        let lockout = refusals.iter().any(|r| matches!(r, Refusal::Lockout(_)));
        Block {
            check: Check::KmsRules,
            problem: format!(
                "the new key policy cannot be written: {}",
                refusals
                    .iter()
                    .map(Refusal::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            fix: if lockout {
                "give the principals named above their access in the key policy".to_string()
            } else {
                "correct the key policy so that KMS accepts it (the rules named above)".to_string()
            },
        }
    })
}

#[cfg(test)]
#[path = "tests/decide.rs"]
mod tests;

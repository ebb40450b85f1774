//! The words of a revocation in findings and actions.

use shared::notify::outcome::{Finding, FindingKind};

use crate::revoke::Revocation;

pub fn root_findings(revocation: &Revocation) -> Vec<Finding> {
    let mut findings = Vec::new();
    if !revocation.removed.is_empty() {
        let grants: Vec<String> = revocation
            .removed
            .iter()
            .map(|g| {
                format!(
                    "{} in statement {}",
                    shared::base::text::value(&g.value),
                    shared::base::text::value(&g.statement)
                )
            })
            .collect();
        findings.push(Finding::new(
            FindingKind::RootAccess,
            format!(
                "the key policy grants the account root: {}",
                grants.join("; ")
            ),
        ));
    }
    if !revocation.account_wide.is_empty() {
        findings.push(account_wide_finding(
            &revocation.account_wide,
            revocation.account_wide_removed,
        ));
    }
    findings
}

/// Statements that let every principal of the account use the key, by label.
pub fn account_wide_finding(statements: &[String], removed: bool) -> Finding {
    let labels: Vec<String> = statements
        .iter()
        .map(|s| shared::base::text::value(s))
        .collect();
    Finding::new(
        FindingKind::AccountWideAccess,
        format!(
            "statement(s) {} allow Principal \"*\" limited only by kms:CallerAccount: every principal of the account, root-equivalent or broader{}",
            labels.join(", "),
            if removed { "" } else { " (kept: set REMOVE_ACCOUNT_WIDE_STATEMENTS=true to remove them too)" }
        ),
    )
}

/// What the write does to the policy, after "removed" or "would remove".
pub fn removal_summary(revocation: &Revocation) -> String {
    let mut what = format!(
        "the account root from the key policy ({} grant(s))",
        revocation.removed.len()
    );
    if revocation.account_wide_removed {
        what.push_str(&format!(
            " and the account-wide statement(s) {}",
            revocation.account_wide.join(", ")
        ));
    }
    what
}

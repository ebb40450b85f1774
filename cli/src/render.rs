//! What people read: tables on the terminal, and the progress bar of long runs. Every value
//! from AWS goes through `cell`, so a tag or description cannot reshape the terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use policy_drift::commands::CommandReport;
use shared::base::text;

use crate::audit::{AuditReport, PartResult, Verdict};
use crate::explain::{Explanation, PrincipalKind};

/// A bar on standard error, drawn only on a terminal (and never with `--json`).
pub fn progress(steps: u64, json: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(steps), ProgressDrawTarget::stderr());
    if json {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} auditing {msg}") {
        bar.set_style(style);
    }
    bar
}

/// One line, control characters escaped, at most `max` characters.
fn cell(value: &str, max: usize) -> String {
    text::one_line(value, max)
}

/// Rows as columns padded to their widest cell.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, value) in row.iter().enumerate() {
            widths[i] = widths[i].max(value.chars().count());
        }
    }
    let line = |values: Vec<&str>| {
        let mut out = String::new();
        for (i, value) in values.iter().enumerate() {
            if i + 1 == values.len() {
                out.push_str(value);
            } else {
                out.push_str(&format!("{value:<w$}  ", w = widths[i]));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

pub fn audit(report: &AuditReport) -> String {
    let mut out = format!(
        "Account {} as {}, {}: {}\n\n",
        cell(&report.account, 20),
        cell(&report.caller, 200),
        if report.regions.len() == 1 {
            "Region"
        } else {
            "Regions"
        },
        report.regions.join(", ")
    );
    let parts: Vec<Vec<String>> = report
        .parts
        .iter()
        .map(|part| {
            let (result, keys, found) = match &part.result {
                PartResult::Audited { counts } => (
                    match part.result.keys_not_finished() {
                        0 => "audited".to_string(),
                        n => format!("audited, except {n} key(s) not finished: AWS answered with a failure a retry can fix (throttling, a timeout); run the audit again"),
                    },
                    counts.get("KeysAudited").copied().unwrap_or(0).to_string(),
                    counts.get("Findings").copied().unwrap_or(0).to_string(),
                ),
                PartResult::Skipped { reason } => (
                    format!("skipped: {}", cell(reason, 300)),
                    "-".into(),
                    "-".into(),
                ),
                PartResult::NotConfigured { problems } => (
                    format!("not configured: {}", cell(problems, 300)),
                    "-".into(),
                    "-".into(),
                ),
                PartResult::Failed { error } => (
                    format!("failed: {}", cell(error, 300)),
                    "-".into(),
                    "-".into(),
                ),
            };
            vec![
                part.function.to_string(),
                part.region.clone(),
                keys,
                found,
                result,
            ]
        })
        .collect();
    out.push_str(&table(
        &["GUARDRAIL", "REGION", "AUDITED", "FINDINGS", "RESULT"],
        &parts,
    ));
    if !report.found.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = report
            .found
            .iter()
            .map(|f| {
                vec![
                    cell(&f.severity, 10),
                    f.function.to_string(),
                    cell(&f.region, 20),
                    cell(f.key_id.as_deref().unwrap_or("-"), 80),
                    cell(&f.subject, 120),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "SEVERITY",
                "GUARDRAIL",
                "REGION",
                "KEY",
                "WHAT IT WOULD ANNOUNCE",
            ],
            &rows,
        ));
    }
    let findings = report.found.iter().filter(|f| f.is_finding()).count();
    out.push('\n');
    out.push_str(&match report.verdict() {
        Verdict::Clean => "Nothing found.".to_string(),
        Verdict::Found => format!(
            "{findings} finding{} (report mode: nothing was written). --json shows each message in full.{}",
            if findings == 1 { "" } else { "s" },
            match report.keys_not_finished() {
                0 => String::new(),
                n => format!(" {n} key(s) were not audited to the end: run the audit again."),
            }
        ),
        Verdict::Incomplete => {
            "The audit did not finish: see RESULT above (settings are the deployed functions' variables; errors name the call and what to do).".to_string()
        }
    });
    out.push('\n');
    out
}

pub fn explanation(e: &Explanation) -> String {
    let mut out = format!("Key {}", cell(&e.key_arn, 200));
    if !e.aliases.is_empty() {
        let aliases: Vec<String> = e.aliases.iter().map(|a| cell(a, 256)).collect();
        out.push_str(&format!(" ({})", aliases.join(", ")));
    }
    out.push_str(&format!(
        ", {}, account {}\n",
        cell(&e.state, 40),
        cell(&e.account, 20)
    ));
    out.push_str("\nKey policy: who may do what\n");
    for who in &e.principals {
        let mut flags = Vec::new();
        if who.public {
            flags.push("PUBLIC: anyone, in any account");
        }
        if who.cross_account {
            flags.push("CROSS-ACCOUNT");
        }
        if who.kind == PrincipalKind::Service {
            flags.push("AWS service");
        }
        let flags = if flags.is_empty() {
            String::new()
        } else {
            format!("  [{}]", flags.join(", "))
        };
        out.push_str(&format!("\n  {}{flags}\n", cell(&who.principal, 256)));
        if !who.allowed.is_empty() {
            out.push_str(&format!("    allowed: {}\n", actions(&who.allowed)));
        }
        if !who.through_iam.is_empty() {
            out.push_str(&format!(
                "    allowed to the account, so its IAM policies decide who: {}\n",
                actions(&who.through_iam)
            ));
        }
        for conditional in &who.conditional {
            out.push_str(&format!(
                "    only if {} ({}): {}\n",
                conditional.conditions.join(" and "),
                cell(&conditional.statement, 80),
                actions(&conditional.actions)
            ));
        }
        if !who.denied.is_empty() {
            out.push_str(&format!("    denied: {}\n", actions(&who.denied)));
        }
    }
    out.push_str("\nGrants\n");
    if e.grants.is_empty() {
        out.push_str("  none\n");
    }
    for grant in &e.grants {
        let flag = if grant.cross_account {
            "  [CROSS-ACCOUNT]"
        } else {
            ""
        };
        out.push_str(&format!(
            "\n  {} {}{flag}\n    to {}: {}\n",
            grant.grant_id,
            grant
                .name
                .as_deref()
                .map(|n| format!("\"{n}\""))
                .unwrap_or_default(),
            grant.grantee,
            grant.operations.join(", ")
        ));
        if !grant.constraints.is_empty() {
            out.push_str(&format!(
                "    only with {}\n",
                grant.constraints.join(" and ")
            ));
        }
        if let Some(retiring) = &grant.retiring {
            out.push_str(&format!("    may be retired by {retiring}\n"));
        }
    }
    out.push_str(&format!(
        "\n{} cross-account, {} public.\n",
        e.cross_account, e.public
    ));
    out
}

/// A list of actions, or "all N key actions".
fn actions(list: &[String]) -> String {
    if list.len() == crate::explain::KEY_ACTIONS.len() {
        return format!("all {} key actions (kms:*)", list.len());
    }
    list.join(", ")
}

pub fn command(report: &CommandReport) -> String {
    match report {
        CommandReport::History { key, versions } => {
            let rows: Vec<Vec<String>> = versions
                .iter()
                .map(|v| {
                    vec![
                        v.version.to_string(),
                        cell(&v.approved_at, 40),
                        cell(&v.approved_by, 120),
                        v.key_state.to_string(),
                        cell(v.rotation.as_deref().unwrap_or("-"), 40),
                        v.grants.to_string(),
                        cell(&v.reason, 120),
                    ]
                })
                .collect();
            let mut out = format!("Desired state of {}\n\n", cell(key, 256));
            if rows.is_empty() {
                out.push_str("No version recorded.\n");
            } else {
                out.push_str(&table(
                    &[
                        "VERSION",
                        "APPROVED AT",
                        "APPROVED BY",
                        "STATE",
                        "ROTATION",
                        "GRANTS",
                        "WHY",
                    ],
                    &rows,
                ));
            }
            out
        }
        CommandReport::Rollback {
            key,
            recorded_version,
            from,
            outcome,
        } => {
            let mut out = format!(
                "{}: version {from} recorded again as version {recorded_version}; the key is {:?}.\n",
                cell(key, 256),
                outcome.status
            );
            for action in &outcome.actions {
                out.push_str(&format!("  {}\n", cell(&action.detail, 300)));
            }
            if let Some(reason) = &outcome.reason {
                out.push_str(&format!("  {}\n", cell(reason, 300)));
            }
            out
        }
    }
}

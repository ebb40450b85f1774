//! One managed multi-Region primary: its replicas found through DescribeKey, and in each
//! replica's Region its state, key policy, replication-role access and grants, with the
//! missing grants created in enforce mode. I/O is here; every decision is in `replicas` and
//! `grants`.

use crate::kms_grants::{self, ExistingGrant};
use aws_sdk_kms::types::KeyState;
use shared::aws::kms::{self, KeyInfo};
use shared::base::arn::Arn;
use shared::base::text::value;
use shared::config::Mode;
use shared::notify::outcome::{Action, Finding, FindingKind, KeyOutcome, Severity, Status};
use shared::pipeline::Audit;
use shared::policy::model::Policy;
use shared::GuardrailError;

use crate::deps::Deps;
use crate::grants::{check, GrantCheck};
use crate::replicas::{compare_policies, role_access, PolicyCheck};
use crate::report::{is_critical, PrimaryReport, ReplicaReport};

/// Validates `primary` and every replica it lists. The audit carries what the message needs;
/// the report carries everything.
pub async fn audit_primary(deps: &Deps, primary: &KeyInfo) -> (Audit, PrimaryReport) {
    let mut report = PrimaryReport {
        primary: primary.arn.to_string(),
        region: primary.region.clone(),
        replicas: Vec::new(),
        missing_regions: Vec::new(),
        findings: Vec::new(),
        error: None,
    };
    let mut failures = Vec::new();
    let primary_policy = match primary.not_ready() {
        Some(not_ready) => Err(not_ready),
        None => kms::key_policy(&deps.clients.kms(&primary.region), primary.arn.as_str()).await,
    };
    match primary_policy {
        Err(e) => {
            report.error = Some(e.to_string());
            failures.push(e);
        }
        Ok(policy) => {
            let config = &deps.config;
            for region in &config.replication_regions {
                let has_replica = primary
                    .replica_arns
                    .iter()
                    .any(|arn| region_of(arn) == *region);
                if !has_replica && *region != primary.region {
                    report.missing_regions.push(region.clone());
                    report.findings.push(Finding::new(
                        FindingKind::ReplicaMissing,
                        format!(
                            "no replica in {region}, a configured replication Region: S3 replication into {region} has no key to encrypt with. Create it with `aws kms replicate-key --key-id {} --replica-region {region} --policy file://policy.json`, where policy.json is the primary's key policy with the Region changed (without --policy the replica gets the default key policy)",
                            value(primary.arn.as_str())
                        ),
                    ));
                }
            }
            for arn in &primary.replica_arns {
                let (replica, failure) = check_replica(deps, primary, &policy, arn).await;
                report.replicas.push(replica);
                failures.extend(failure);
            }
        }
    }
    (to_audit(primary, &report, failures), report)
}

/// The Region of a key ARN DescribeKey listed; empty for one that does not parse.
fn region_of(arn: &str) -> String {
    Arn::parse(arn)
        .map(|a| a.region().to_string())
        .unwrap_or_default()
}

/// The message's view of the report: every finding and action, and the failure a retry may
/// fix first (so the invocation is retried), else the first one a person must fix.
fn to_audit(primary: &KeyInfo, report: &PrimaryReport, mut failures: Vec<GuardrailError>) -> Audit {
    let mut outcome = KeyOutcome::new(primary);
    outcome.findings = report.all_findings();
    outcome.actions = report.all_actions();
    outcome.status = if outcome.writes() > 0 {
        Status::Corrected
    } else if outcome.findings.is_empty() && outcome.actions.is_empty() {
        Status::Compliant
    } else {
        Status::Reported
    };
    let critical = outcome.findings.iter().any(is_critical);
    let headline = if outcome.writes() > 0 {
        "Replica grants repaired for multi-Region KMS key"
    } else {
        "Multi-Region KMS key replicas need attention"
    };
    failures.sort_by_key(|e| !e.is_retryable());
    Audit {
        outcome,
        failure: failures.into_iter().next(),
        headline: headline.into(),
        severity: if critical { Severity::Critical } else { Severity::High },
        guidance: Some(
            "Replicas share key material with their primary, not key policies, grants or enabled state: each replica Region needs its own. The full per-replica report is in the function's log and result.".into(),
        ),
    }
}

/// Everything about one replica. Nothing here stops the other replicas.
async fn check_replica(
    deps: &Deps,
    primary: &KeyInfo,
    primary_policy: &str,
    arn: &str,
) -> (ReplicaReport, Option<GuardrailError>) {
    let region = region_of(arn);
    let mut report = ReplicaReport::new(&region, arn);
    let client = deps.clients.kms(&region);
    let stop = |mut report: ReplicaReport, e: GuardrailError| {
        report.error = Some(format!("{e} ({})", e.error_type()));
        (report, Some(e))
    };
    let key = match kms::describe_key(&client, arn).await {
        Ok(key) => key,
        Err(e) => return stop(report, e),
    };
    report.state = key.state.as_str().to_string();
    if let Some(not_ready) = key.not_ready() {
        return stop(report, not_ready);
    }
    let config = &deps.config;
    report.allowed_region = config.region_allowed(&region);
    if !report.allowed_region {
        report.findings.push(Finding::new(
            FindingKind::ReplicaRegionNotAllowed,
            format!(
                "a replica exists in {region}, outside the allowed Regions ({}): find who created it (ReplicateKey in CloudTrail) and schedule its deletion if nobody meant it; no grant is created there",
                config.allowed_regions.join(", ")
            ),
        ));
    }
    let usable = match key.state {
        KeyState::Disabled => {
            report.findings.push(Finding::new(
                FindingKind::KeyDisabled,
                format!("the replica is disabled, so S3 replication cannot encrypt with it (a replica does not share its primary's enabled state): `aws kms enable-key --key-id {} --region {region}`", value(arn)),
            ));
            true
        }
        KeyState::PendingDeletion | KeyState::PendingReplicaDeletion => {
            report.findings.push(Finding::new(
                FindingKind::PendingDeletion,
                format!(
                    "the replica is scheduled for deletion{}: replication into {region} fails once it is gone. If that is a mistake: `aws kms cancel-key-deletion --key-id {} --region {region}` then enable it",
                    key.deletion_date.as_deref().map(|d| format!(" on {}", value(d))).unwrap_or_default(),
                    value(arn)
                ),
            ));
            false
        }
        _ => true,
    };

    let replica_policy = match kms::key_policy(&client, arn).await {
        Ok(text) => text,
        Err(e) => return stop(report, e),
    };
    let policy_check = compare_policies(primary_policy, &primary.region, &replica_policy, &region);
    match &policy_check {
        PolicyCheck::Matches => {}
        PolicyCheck::Drift { summary, diff } => report.findings.push(Finding {
            diff: Some(diff.clone()),
            ..Finding::new(
                FindingKind::PolicyDrift,
                format!("the replica's key policy differs from the primary's (with the Region substituted): {summary}. Replicas do not share key policies: put the primary's policy on the replica, or change the primary's to match, whichever is intended"),
            )
        }),
        PolicyCheck::Unreadable { reason } => report.findings.push(Finding::new(
            FindingKind::PolicyUnreadable,
            format!("{reason}; the replica's policy was not compared"),
        )),
    }
    report.policy = Some(policy_check);

    let existing = match kms_grants::list_grants(&client, arn).await {
        Ok(existing) => existing,
        Err(e) => return stop(report, e),
    };
    let checked = check(&config.required_grants, &region, &existing);
    let (created, failure) = repair_grants(
        deps,
        &key,
        &checked,
        usable && report.allowed_region,
        &mut report,
    )
    .await;

    if let Ok(policy) = Policy::parse(&replica_policy) {
        let with_created: Vec<ExistingGrant> = existing.iter().cloned().chain(created).collect();
        for role in &config.replication_roles {
            let access = role_access(&policy, role, &region, &primary.account, &with_created);
            if access.is_problem() {
                report.findings.push(Finding::new(
                    FindingKind::ReplicationAccess,
                    format!(
                        "replication role {} may not encrypt with this replica through S3 in {region}, so replication into {region} fails with a KMS permission error: {}",
                        value(role),
                        access.detail.as_deref().map(value).unwrap_or_default()
                    ),
                ));
            }
            report.replication_role_access.push(access);
        }
    }
    (report, failure)
}

/// Creates the missing grants (enforce mode, on a replica that can take them) and revokes
/// unexpected ones in strict mode. Returns the grants created, as listed grants, so the
/// access check counts them, and the first failed write.
async fn repair_grants(
    deps: &Deps,
    key: &KeyInfo,
    checked: &GrantCheck,
    writable: bool,
    report: &mut ReplicaReport,
) -> (Vec<ExistingGrant>, Option<GuardrailError>) {
    let config = &deps.config;
    let enforce = config.common.mode == Mode::Enforce && writable;
    let client = deps.clients.kms(&key.region);
    let mut created = Vec::new();
    let mut failure = None;
    report.grants.ok = checked.satisfied.iter().map(|s| s.name.clone()).collect();
    for spec in &checked.missing {
        report.grants.missing.push(spec.name.clone());
        report.findings.push(Finding::new(
            FindingKind::GrantMissing,
            format!("required grant missing: {}", spec.summary()),
        ));
        if !enforce || failure.is_some() {
            report.actions.push(Action {
                operation: "CreateGrant",
                detail: format!("would create grant {}", value(&spec.name)),
                done: false,
            });
            continue;
        }
        match kms_grants::write::create_grant(&client, key, spec).await {
            Ok(grant_id) => {
                tracing::info!(key = %key.arn, grant = %spec.name, grant_id = %grant_id, "grant created");
                report.actions.push(Action {
                    operation: "CreateGrant",
                    detail: format!("created grant {} (id {}); KMS may take up to five minutes to apply it everywhere", value(&spec.name), value(&grant_id)),
                    done: true,
                });
                created.push(ExistingGrant::from_spec(spec, &grant_id));
            }
            Err(e) => {
                report.error = Some(format!("{e} ({})", e.error_type()));
                failure = Some(e);
            }
        }
    }
    for unexpected in &checked.unexpected {
        report.grants.unexpected.push(unexpected.summary());
        report.findings.push(Finding::new(
            FindingKind::GrantUnexpected,
            unexpected.summary(),
        ));
        if !(config.strict_grants && config.common.mode == Mode::Enforce) || failure.is_some() {
            continue;
        }
        let grant_id = &unexpected.grant.grant_id;
        match kms_grants::write::revoke_grant(&client, key, grant_id).await {
            Ok(()) => report.actions.push(Action {
                operation: "RevokeGrant",
                detail: format!("revoked grant {} (STRICT_GRANTS)", value(grant_id)),
                done: true,
            }),
            Err(e) => {
                report.error = Some(format!("{e} ({})", e.error_type()));
                failure = Some(e);
            }
        }
    }
    (created, failure)
}

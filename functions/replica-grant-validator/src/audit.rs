//! One managed multi-Region primary as `read` -> `decide` -> `apply`: its replicas found
//! through DescribeKey; in each replica's Region its state, key policy and grants read
//! ([`read`]); what is wrong and which grant writes fix it ([`decide`], pure); the writes in
//! enforce mode, then the replication roles' access with the grants as they now are
//! ([`apply`]).

use aws_sdk_kms::types::KeyState;
use shared::aws::kms::{self, KeyInfo};
use shared::base::arn::Arn;
use shared::base::error::Disposition;
use shared::base::region::Region;
use shared::base::text::value;
use shared::config::Mode;
use shared::notify::outcome::{Action, Finding, FindingKind, KeyOutcome, Severity, Status};
use shared::pipeline::journal::PlannedWrites;
use shared::pipeline::Audit;
use shared::policy::model::Policy;
use shared::GuardrailError;

use crate::config::Config;
use crate::deps::Deps;
use crate::grants::check;
use crate::replicas::{compare_policies, role_access, PolicyCheck};
use crate::report::{is_critical, PrimaryReport, ReplicaReport};
use shared::aws::grants::{self as kms_grants, ExistingGrant, GrantSpec};

/// What was read about a primary and its replicas.
#[derive(Debug)]
pub struct Facts {
    /// The primary's key policy; when it cannot be read, no replica is read.
    pub primary_policy: Result<String, GuardrailError>,
    /// One per replica DescribeKey listed on the primary, in its order.
    pub replicas: Vec<ReplicaFacts>,
}

/// What was read of one replica, in order, up to the read that failed.
#[derive(Debug)]
pub struct ReplicaFacts {
    pub arn: String,
    pub region: Region,
    /// DescribeKey in the replica's Region.
    pub key: Option<KeyInfo>,
    /// GetKeyPolicy.
    pub policy: Option<String>,
    /// ListGrants.
    pub grants: Option<Vec<ExistingGrant>>,
    /// The read that stopped the others, or a replica KMS is still creating.
    pub failure: Option<GuardrailError>,
}

/// What [`decide`] concludes: the report so far, and per replica the writes that fix it.
#[derive(Debug)]
pub struct Plan {
    /// The set's own findings (missing replicas) and the primary's read failure; the
    /// replicas' reports are in `replicas` until [`apply`] completes them.
    pub report: PrimaryReport,
    pub failure: Option<GuardrailError>,
    pub replicas: Vec<ReplicaPlan>,
}

#[derive(Debug)]
pub struct ReplicaPlan {
    pub report: ReplicaReport,
    pub failure: Option<GuardrailError>,
    /// Present once the replica's grants were read.
    pub grants: Option<GrantPlan>,
}

/// The grant writes of one replica, and what the access check needs after them.
#[derive(Debug)]
pub struct GrantPlan {
    pub key: KeyInfo,
    /// The required grants missing, in order.
    pub missing: Vec<GrantSpec>,
    /// Whether to create them: enforce mode, on a replica that can take them.
    pub create: bool,
    /// Grants to revoke: the unexpected ones, with STRICT_GRANTS in enforce mode.
    pub revoke: Vec<String>,
    pub existing: Vec<ExistingGrant>,
    /// The replica's key policy, when it parses: the replication roles' access is judged on it.
    pub policy: Option<Policy>,
}

/// Reads the primary's policy, then each replica's key, policy and grants in its Region. I/O
/// only; a failed read stops that replica's reads and is kept in the facts.
pub async fn read(deps: &Deps, primary: &KeyInfo) -> Facts {
    let client = deps.clients.kms_in(&primary.account, &primary.region);
    let primary_policy = kms::key_policy(&client, primary.arn.as_str()).await;
    let mut replicas = Vec::new();
    if primary_policy.is_ok() {
        for arn in &primary.replica_arns {
            // DescribeKey lists replicas by ARN, which always names a Region in AWS.
            let Some(region) = region_of(arn) else {
                tracing::warn!(replica = %arn, "DescribeKey listed a replica ARN without a Region; not read");
                continue;
            };
            replicas.push(read_replica(deps, arn, region).await);
        }
    }
    Facts {
        primary_policy,
        replicas,
    }
}

async fn read_replica(deps: &Deps, arn: &str, region: Region) -> ReplicaFacts {
    // A replica lives in its primary's account (KMS replicates within one account).
    let account = Arn::parse(arn)
        .map(|a| a.account().to_string())
        .unwrap_or_else(|_| deps.config.common.account_id.clone());
    let client = deps.clients.kms_in(&account, &region);
    let mut facts = ReplicaFacts {
        arn: arn.to_string(),
        region,
        key: None,
        policy: None,
        grants: None,
        failure: None,
    };
    let key = match kms::describe_key(&client, arn).await {
        Ok(key) => facts.key.insert(key),
        Err(e) => return stopped(facts, e),
    };
    if let Some(not_ready) = key.not_ready() {
        return stopped(facts, not_ready);
    }
    match kms::key_policy(&client, arn).await {
        Ok(policy) => facts.policy = Some(policy),
        Err(e) => return stopped(facts, e),
    }
    match kms_grants::list_grants(&client, arn).await {
        Ok(grants) => facts.grants = Some(grants),
        Err(e) => return stopped(facts, e),
    }
    facts
}

fn stopped(mut facts: ReplicaFacts, failure: GuardrailError) -> ReplicaFacts {
    facts.failure = Some(failure);
    facts
}

/// The Region of a key ARN DescribeKey listed.
fn region_of(arn: &str) -> Option<Region> {
    Region::parse(Arn::parse(arn).ok()?.region()).ok()
}

/// What is wrong with the set and which grant writes fix it. Pure.
pub fn decide(config: &Config, primary: &KeyInfo, facts: Facts) -> Plan {
    let mut report = PrimaryReport {
        primary: primary.arn.to_string(),
        region: primary.region.clone(),
        replicas: Vec::new(),
        missing_regions: Vec::new(),
        findings: Vec::new(),
        error: None,
    };
    let primary_policy = match facts.primary_policy {
        Ok(policy) => policy,
        Err(e) => {
            report.error = Some(e.to_string());
            return Plan {
                report,
                failure: Some(e),
                replicas: Vec::new(),
            };
        }
    };
    for region in &config.replication_regions {
        let has_replica = primary
            .replica_arns
            .iter()
            .any(|arn| region_of(arn).as_ref() == Some(region));
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
    let replicas = facts
        .replicas
        .into_iter()
        .map(|replica| decide_replica(config, primary, &primary_policy, replica))
        .collect();
    Plan {
        report,
        failure: None,
        replicas,
    }
}

/// Everything about one replica that its facts tell. Nothing here stops the other replicas.
fn decide_replica(
    config: &Config,
    primary: &KeyInfo,
    primary_policy: &str,
    facts: ReplicaFacts,
) -> ReplicaPlan {
    let region = facts.region.clone();
    let arn = facts.arn.as_str();
    let mut report = ReplicaReport::new(&region, arn);
    let mut failure = facts.failure;
    if let Some(e) = &failure {
        report.error = Some(format!("{e} ({})", e.error_type()));
    }
    let allowed = config.region_allowed(&region);
    if !allowed
        && failure
            .as_ref()
            .is_some_and(GuardrailError::is_access_denied)
    {
        // A Region nobody should use is often closed by an SCP: the denial is that Region's
        // finding, not the guardrail being shut out of the key.
        failure = None;
        report.allowed_region = false;
        report.findings.push(Finding::new(
            FindingKind::ReplicaRegionNotAllowed,
            format!(
                "a replica exists in {region}, outside the allowed Regions ({}), and calls there are denied (a Region-deny SCP, probably), so it was not read: find who created it (ReplicateKey in CloudTrail) and schedule its deletion from an account or role the SCP lets act there",
                config.allowed_regions.iter().map(Region::as_str).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let Some(key) = facts.key else {
        return ReplicaPlan {
            report,
            failure,
            grants: None,
        };
    };
    report.state = key.state.as_str().to_string();
    if key.not_ready().is_some() {
        return ReplicaPlan {
            report,
            failure,
            grants: None,
        };
    }
    report.allowed_region = allowed;
    if !report.allowed_region {
        report.findings.push(Finding::new(
            FindingKind::ReplicaRegionNotAllowed,
            format!(
                "a replica exists in {region}, outside the allowed Regions ({}): find who created it (ReplicateKey in CloudTrail) and schedule its deletion if nobody meant it; no grant is created there",
                config.allowed_regions.iter().map(Region::as_str).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let usable = match key.state {
        KeyState::Disabled => {
            report.findings.push(Finding::new(
                FindingKind::KeyDisabled,
                format!("the replica is disabled, so S3 replication cannot encrypt with it (a replica does not share its primary's enabled state): `aws kms enable-key --key-id {} --region {region}`; KMS creates no grant on a disabled key, so missing grants are created once it is enabled", value(arn)),
            ));
            false
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

    let Some(replica_policy) = facts.policy else {
        return ReplicaPlan {
            report,
            failure,
            grants: None,
        };
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

    let Some(existing) = facts.grants else {
        return ReplicaPlan {
            report,
            failure,
            grants: None,
        };
    };
    let checked = check(&config.required_grants, &region, &existing);
    report.grants.ok = checked.satisfied.iter().map(|s| s.name.clone()).collect();
    // The deployed role may create grants only in the replication Regions (the template's
    // aws:RequestedRegion condition); elsewhere a missing grant is reported, not attempted.
    let creatable_here = config.replication_regions.contains(&region);
    let not_here = if creatable_here || !report.allowed_region {
        String::new()
    } else {
        format!(" (not created: {region} is not in REPLICATION_REGIONS, the only Regions where the function may create grants; add it there or create the grant yourself)")
    };
    for spec in &checked.missing {
        report.grants.missing.push(spec.name.clone());
        report.findings.push(Finding::new(
            FindingKind::GrantMissing,
            format!("required grant missing: {}{not_here}", spec.summary()),
        ));
    }
    for unexpected in &checked.unexpected {
        report.grants.unexpected.push(unexpected.summary());
        report.findings.push(Finding::new(
            FindingKind::GrantUnexpected,
            unexpected.summary(),
        ));
    }
    let enforce = config.common.mode == Mode::Enforce;
    let revoke = match enforce && config.strict_grants {
        true => checked
            .unexpected
            .iter()
            .map(|u| u.grant.grant_id.clone())
            .collect(),
        false => Vec::new(),
    };
    let grants = GrantPlan {
        key,
        missing: checked.missing,
        create: enforce && usable && report.allowed_region && creatable_here,
        revoke,
        existing,
        policy: Policy::parse(&replica_policy).ok(),
    };
    ReplicaPlan {
        report,
        failure,
        grants: Some(grants),
    }
}

/// Makes the plan's grant writes (a failed write stops that replica's later ones), judges the
/// replication roles' access with the grants as they now are, and says what to announce.
/// The grant writes `apply` will make, for the state table's record before the first.
pub fn planned_writes(plan: &Plan) -> Option<PlannedWrites> {
    let (mut findings, mut operations) = (Vec::new(), Vec::new());
    for grants in plan.replicas.iter().filter_map(|r| r.grants.as_ref()) {
        let region = &grants.key.region;
        if grants.create {
            for spec in &grants.missing {
                findings.push(format!(
                    "replica in {region}: required grant {} is missing",
                    spec.summary()
                ));
                operations.push("CreateGrant");
            }
        }
        for grant_id in &grants.revoke {
            findings.push(format!(
                "replica in {region}: unexpected grant {} (STRICT_GRANTS)",
                value(grant_id)
            ));
            operations.push("RevokeGrant");
        }
    }
    (!operations.is_empty()).then_some(PlannedWrites {
        findings,
        operations,
    })
}

pub async fn apply(deps: &Deps, primary: &KeyInfo, plan: Plan) -> (Audit, PrimaryReport) {
    let Plan {
        mut report,
        failure,
        replicas,
    } = plan;
    let mut failures: Vec<GuardrailError> = failure.into_iter().collect();
    for ReplicaPlan {
        report: mut replica,
        failure,
        grants,
    } in replicas
    {
        failures.extend(failure);
        if let Some(grants) = grants {
            let (created, failure) = write_grants(deps, &grants, &mut replica).await;
            let mut all = grants.existing.clone();
            all.extend(created);
            if let Some(policy) = &grants.policy {
                check_access(&deps.config, policy, &primary.account, &all, &mut replica);
            }
            failures.extend(failure);
        }
        report.replicas.push(replica);
    }
    (to_audit(primary, &report, failures), report)
}

/// Creates the missing grants when the plan says so and revokes the ones it names. Returns
/// the grants created, as listed grants, so the access check counts them, and the first
/// failed write.
async fn write_grants(
    deps: &Deps,
    plan: &GrantPlan,
    report: &mut ReplicaReport,
) -> (Vec<ExistingGrant>, Option<GuardrailError>) {
    let key = &plan.key;
    let client = deps.clients.kms_in(&key.account, &key.region);
    let mut created = Vec::new();
    let mut failure = None;
    for spec in &plan.missing {
        if !plan.create || failure.is_some() {
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
    for grant_id in &plan.revoke {
        if failure.is_some() {
            break;
        }
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

/// Whether each replication role may encrypt with the replica through S3 in its Region, with
/// `grants` as they are after the writes. Pure.
pub fn check_access(
    config: &Config,
    policy: &Policy,
    account: &str,
    grants: &[ExistingGrant],
    report: &mut ReplicaReport,
) {
    let region = report.region.clone();
    for role in &config.replication_roles {
        let access = role_access(policy, role, &region, account, grants);
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
    failures.sort_by_key(|e| e.disposition() != Disposition::Retry);
    Audit {
        outcome,
        failure: failures.into_iter().next(),
        headline: headline.into(),
        severity: if critical { Severity::Critical } else { Severity::High },
        guidance: Some(
            "Replicas share key material with their primary, not key policies, grants or enabled state: each replica Region needs its own. The full per-replica report is in the function's log and result.".into(),
        ),
        ..Audit::new(KeyOutcome::new(primary), None, "")
    }
}

#[cfg(test)]
#[path = "audit_tests.rs"]
mod tests;

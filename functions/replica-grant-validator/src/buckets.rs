//! The S3 side: each configured source bucket's replication rules must name, by key ARN, an
//! enabled symmetric multi-Region replica of a managed primary, and must replicate SSE-KMS
//! objects. The decision ([`check_rule`]) is a function of data; reading S3 and KMS wraps it.

use std::collections::HashMap;

use aws_sdk_kms::types::KeyState;
use aws_sdk_s3::types::{
    ReplicationConfiguration, ReplicationRuleStatus, SseKmsEncryptedObjectsStatus,
};
use serde::{Serialize, Serializer};
use shared::aws::kms::{self, KeyInfo};
use shared::aws::AwsClients;
use shared::base::arn::Arn;
use shared::base::error::Disposition;
use shared::base::region::Region;
use shared::base::text::{quoted, value};
use shared::config::CommonConfig;
use shared::notify::outcome::Outcome;
use shared::notify::Cause;
use shared::pipeline::resolve::{resolve, Resolution};
use shared::pipeline::retry_or_report;
use shared::triggers::events::CloudTrailDetail;
use shared::triggers::events::KeyLocator;
use shared::GuardrailError;

use crate::deps::{self, Deps};
use crate::handler::Response;
use crate::message::announce;
use crate::report::ValidationReport;

/// The code S3 answers GetBucketReplication with when the bucket has no replication.
const NO_REPLICATION: &str = "ReplicationConfigurationNotFoundError";

/// A configured source bucket and the Region its API calls must go to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BucketRef {
    pub name: String,
    pub region: Region,
}

/// A configuration entry: `bucket-name` (in `default_region`, the function's) or
/// `bucket-name@region`.
pub fn parse_bucket_entry(entry: &str, default_region: &Region) -> Result<BucketRef, String> {
    let entry = entry.trim();
    let (name, region) = entry
        .split_once('@')
        .unwrap_or((entry, default_region.as_str()));
    if let Some(problem) = bucket_name_problem(name) {
        return Err(format!(
            "{} is not an S3 bucket name: {problem}",
            quoted(name, 80)
        ));
    }
    let region = Region::parse(region)
        .map_err(|problem| format!("bucket entry {}: {problem}", quoted(entry, 120)))?;
    Ok(BucketRef {
        name: name.to_string(),
        region,
    })
}

/// The S3 general purpose bucket naming rules a configuration typo breaks.
fn bucket_name_problem(name: &str) -> Option<&'static str> {
    let letter_or_digit =
        |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !(3..=63).contains(&name.len()) {
        Some("a bucket name has 3 to 63 characters")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        Some("only lowercase letters, digits, dots and hyphens are allowed")
    } else if !letter_or_digit(name.bytes().next()) || !letter_or_digit(name.bytes().last()) {
        Some("a bucket name begins and ends with a letter or digit")
    } else if name.contains("..") {
        Some("a bucket name has no two adjacent dots")
    } else if name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok()) {
        Some("a bucket name is not formatted as an IP address")
    } else {
        None
    }
}

/// A bucket's replication configuration, reduced to what the checks read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replication {
    /// The IAM role S3 assumes to replicate.
    pub role: String,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub id: Option<String>,
    pub enabled: bool,
    /// As S3 returns it: the destination bucket's ARN.
    pub destination_bucket: String,
    /// `Destination.EncryptionConfiguration.ReplicaKmsKeyID`.
    pub replica_kms_key_id: Option<String>,
    /// `SourceSelectionCriteria.SseKmsEncryptedObjects` is Enabled; `None` when the rule has no
    /// SourceSelectionCriteria.
    pub sse_kms_replicated: Option<bool>,
}

impl Replication {
    pub fn from_sdk(config: &ReplicationConfiguration) -> Replication {
        Replication {
            role: config.role().to_string(),
            rules: config
                .rules()
                .iter()
                .map(|r| Rule {
                    id: r.id().filter(|id| !id.is_empty()).map(str::to_string),
                    enabled: *r.status() == ReplicationRuleStatus::Enabled,
                    destination_bucket: r
                        .destination()
                        .map(|d| d.bucket().to_string())
                        .unwrap_or_default(),
                    replica_kms_key_id: r
                        .destination()
                        .and_then(|d| d.encryption_configuration())
                        .and_then(|e| e.replica_kms_key_id())
                        .filter(|id| !id.trim().is_empty())
                        .map(|id| id.trim().to_string()),
                    sse_kms_replicated: r.source_selection_criteria().map(|c| {
                        c.sse_kms_encrypted_objects()
                            .is_some_and(|o| *o.status() == SseKmsEncryptedObjectsStatus::Enabled)
                    }),
                })
                .collect(),
        }
    }
}

/// GetBucketReplication; `None` when the bucket has no replication configuration. `s3` must
/// be a client in the bucket's Region.
pub async fn replication(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
) -> Result<Option<Replication>, GuardrailError> {
    match s3.get_bucket_replication().bucket(bucket).send().await {
        Ok(out) => Ok(out.replication_configuration().map(Replication::from_sdk)),
        Err(e) if e.as_service_error().and_then(|s| s.meta().code()) == Some(NO_REPLICATION) => {
            Ok(None)
        }
        Err(e) => Err(GuardrailError::aws("GetBucketReplication", bucket, e)),
    }
}

/// What DescribeKey said about a rule's ReplicaKmsKeyID (for an alias, about its target).
#[derive(Debug, Clone)]
pub enum KeyLookup {
    Found {
        key: Box<KeyInfo>,
        /// Whether the replica's primary is a managed key; `None` when that cannot be told.
        primary_managed: Option<bool>,
    },
    NotFound,
    /// A permanent failure (AccessDenied), as text for the report.
    Unreadable(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BucketProblemKind {
    NoReplicationConfiguration,
    /// SSE-KMS objects are replicated but no ReplicaKmsKeyID is set.
    NoReplicaKey,
    /// A replica key is set but SseKmsEncryptedObjects is not Enabled.
    SseKmsNotReplicated,
    AliasNotKeyArn,
    KeyIdNotArn,
    KeyNotFound,
    KeyUnreadable,
    NotMultiRegionReplica,
    KeyDisabled,
    KeyPendingDeletion,
    NotSymmetric,
    NotManagedPrimary,
    /// The configuration's Role is not one of REPLICATION_ROLE_ARNS (when that list is set).
    RoleNotConfigured,
    /// The replica key is in another Region than the destination bucket: S3 needs it there.
    KeyNotInDestinationRegion,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BucketProblem {
    pub kind: BucketProblemKind,
    /// One line that names the fix; every value from AWS escaped.
    pub summary: String,
}

impl BucketProblem {
    fn new(kind: BucketProblemKind, summary: String) -> BucketProblem {
        BucketProblem { kind, summary }
    }
}

/// How a ReplicaKmsKeyID names its key. S3 accepts key and alias ARNs, and KMS resolves an
/// alias at each use, so only a key ARN pins the key.
enum KeyReference {
    KeyArn(Arn),
    AliasArn(Arn),
    AliasName,
    /// A bare key id, an ARN of something else, or garbage.
    NotArn,
}

impl KeyReference {
    fn of(id: &str) -> KeyReference {
        if id.starts_with("alias/") {
            return KeyReference::AliasName;
        }
        match Arn::parse(id) {
            Ok(arn) if arn.service() == "kms" && Region::parse(arn.region()).is_ok() => {
                if arn.kms_key_id().is_some_and(|k| !k.is_empty()) {
                    KeyReference::KeyArn(arn)
                } else if arn.kms_alias_name().is_some() {
                    KeyReference::AliasArn(arn)
                } else {
                    KeyReference::NotArn
                }
            }
            _ => KeyReference::NotArn,
        }
    }
}

/// A problem the configuration's Role has: the replica keys' grants and policies are checked
/// for the listed roles only. An empty list checks nothing.
pub fn check_role(role: &str, replication_roles: &[String]) -> Option<BucketProblem> {
    (!replication_roles.is_empty() && !replication_roles.iter().any(|r| r == role)).then(|| {
        BucketProblem::new(
            BucketProblemKind::RoleNotConfigured,
            format!(
                "replication role {} is not in REPLICATION_ROLE_ARNS, so its access to the replica keys is not checked: add it, or make the bucket replicate with a listed role",
                value(role)
            ),
        )
    })
}

/// What is wrong with one rule. `key` is the lookup of its ReplicaKmsKeyID (`None` when none
/// was made). Disabled rules have no problems.
pub fn check_rule(rule: &Rule, key: Option<&KeyLookup>) -> Vec<BucketProblem> {
    use BucketProblemKind as K;
    let mut problems = Vec::new();
    if !rule.enabled {
        return problems;
    }
    let name = rule_name(rule);
    let Some(id) = rule.replica_kms_key_id.as_deref() else {
        if rule.sse_kms_replicated == Some(true) {
            problems.push(BucketProblem::new(
                K::NoReplicaKey,
                format!("{name} replicates SSE-KMS objects but sets no ReplicaKmsKeyID: set it to the key ARN of the multi-Region replica in the destination bucket's Region"),
            ));
        }
        return problems;
    };
    if rule.sse_kms_replicated != Some(true) {
        problems.push(BucketProblem::new(
            K::SseKmsNotReplicated,
            format!("{name} names replica key {} but SourceSelectionCriteria.SseKmsEncryptedObjects is not Enabled: enable it, or objects encrypted with SSE-KMS are not replicated", value(id)),
        ));
    }
    let target = match key {
        Some(KeyLookup::Found { key, .. }) => Some(key.arn.as_str()),
        _ => None,
    };
    match KeyReference::of(id) {
        KeyReference::KeyArn(_) => {}
        KeyReference::AliasArn(_) | KeyReference::AliasName => {
            let fix = match target {
                Some(arn) => format!("replace it with the key ARN {} it points to now", value(arn)),
                None => "replace it with the key ARN of the replica in the destination bucket's Region".into(),
            };
            problems.push(BucketProblem::new(
                K::AliasNotKeyArn,
                format!("{name} names alias {}: {fix}: an alias can be moved to another key without the bucket noticing", value(id)),
            ));
        }
        KeyReference::NotArn => problems.push(BucketProblem::new(
            K::KeyIdNotArn,
            format!("{name} names {}, not a KMS key ARN: replace it with the key ARN (arn:aws:kms:<Region>:<account>:key/<id>) of the replica in the destination bucket's Region", value(id)),
        )),
    }
    match key {
        None => {}
        Some(KeyLookup::NotFound) => problems.push(BucketProblem::new(
            K::KeyNotFound,
            format!("{name} names {}, which does not exist: replace it with the key ARN of an existing replica in the destination bucket's Region, or replication fails", value(id)),
        )),
        Some(KeyLookup::Unreadable(reason)) => problems.push(BucketProblem::new(
            K::KeyUnreadable,
            format!("{name} names {}, which cannot be described ({}): allow kms:DescribeKey on it so it can be checked", value(id), value(reason)),
        )),
        Some(KeyLookup::Found {
            key,
            primary_managed,
        }) => problems.extend(check_key(&name, key, *primary_managed)),
    }
    problems
}

/// The Region GetBucketLocation's answer names: none is us-east-1, `EU` is eu-west-1.
pub fn location_region(constraint: Option<&str>) -> Option<Region> {
    match constraint.map(str::trim) {
        None | Some("") => Region::parse("us-east-1").ok(),
        Some("EU") => Region::parse("eu-west-1").ok(),
        Some(other) => Region::parse(other).ok(),
    }
}

/// S3 encrypts a replica with a key in the destination bucket's own Region only: a key named
/// elsewhere fails every replication of an SSE-KMS object. Pure.
pub fn check_destination_region(
    rule: &Rule,
    key: &KeyInfo,
    destination: &Region,
) -> Option<BucketProblem> {
    (key.region != *destination).then(|| {
        BucketProblem::new(
            BucketProblemKind::KeyNotInDestinationRegion,
            format!(
                "{} encrypts replicas in bucket {} ({destination}) with {}, a key in {}: S3 needs the key in the destination bucket's Region; name the replica of the same primary in {destination}",
                rule_name(rule),
                value(&rule.destination_bucket),
                value(key.arn.as_str()),
                key.region
            ),
        )
    })
}

/// The destination bucket's Region, from GetBucketLocation; `None` (logged) when it cannot be
/// read: a bucket of another account that does not share its location.
async fn destination_region(s3: &aws_sdk_s3::Client, destination_arn: &str) -> Option<Region> {
    let name = destination_arn
        .rsplit(":::")
        .next()
        .unwrap_or(destination_arn);
    match s3.get_bucket_location().bucket(name).send().await {
        Ok(out) => location_region(out.location_constraint().map(|c| c.as_str())),
        Err(e) => {
            let e = GuardrailError::aws("GetBucketLocation", name, e);
            tracing::warn!(error = %e, bucket = name, "the destination bucket's Region is unknown: whether the replica key is in it is not checked");
            None
        }
    }
}

/// What is wrong with the key a rule encrypts replicas with.
fn check_key(name: &str, key: &KeyInfo, primary_managed: Option<bool>) -> Vec<BucketProblem> {
    use BucketProblemKind as K;
    let arn = value(key.arn.as_str());
    let mut problems = Vec::new();
    match &key.state {
        KeyState::Enabled | KeyState::Creating | KeyState::Updating => {}
        KeyState::PendingDeletion | KeyState::PendingReplicaDeletion => {
            let when = key
                .deletion_date
                .as_deref()
                .map(|d| format!(" (deleted {})", value(d)))
                .unwrap_or_default();
            problems.push(BucketProblem::new(
                K::KeyPendingDeletion,
                format!("{name} encrypts with {arn}, which is pending deletion{when}: cancel the deletion and enable it, or replication fails and replicated objects become unreadable"),
            ));
        }
        state => problems.push(BucketProblem::new(
            K::KeyDisabled,
            format!("{name} encrypts with {arn}, which is {}: enable it, or S3 cannot encrypt replicas and replication fails", value(state.as_str())),
        )),
    }
    if !key.is_replica() {
        let what = if key.multi_region {
            "a multi-Region primary, not a replica: name its replica in the destination bucket's Region"
        } else {
            "a single-Region key: name a multi-Region replica of a managed primary in the destination bucket's Region"
        };
        problems.push(BucketProblem::new(
            K::NotMultiRegionReplica,
            format!("{name} encrypts with {arn}, {what}"),
        ));
    }
    if !key.symmetric {
        problems.push(BucketProblem::new(
            K::NotSymmetric,
            format!("{name} encrypts with {arn}, which is not SYMMETRIC_DEFAULT: S3 encrypts only with symmetric keys; name a symmetric multi-Region replica"),
        ));
    }
    if key.is_replica() && primary_managed == Some(false) {
        let primary = value(key.primary_arn.as_deref().unwrap_or_default());
        problems.push(BucketProblem::new(
            K::NotManagedPrimary,
            format!("{name} encrypts with {arn}, a replica of {primary}, which the guardrails do not manage: name a replica of a managed primary, or bring {primary} under management"),
        ));
    }
    problems
}

fn rule_name(rule: &Rule) -> String {
    match &rule.id {
        Some(id) => format!("rule {}", quoted(id, 80)),
        None => format!("the rule to {}", value(&rule.destination_bucket)),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleReport {
    pub id: Option<String>,
    pub destination_bucket: String,
    pub replica_kms_key_id: Option<String>,
    pub problems: Vec<BucketProblem>,
}

/// One bucket's result. `error` set means the bucket was not (fully) checked.
#[derive(Debug, Serialize)]
pub struct BucketReport {
    pub bucket: String,
    pub region: Region,
    pub role: Option<String>,
    /// Problems of the bucket as a whole: no replication, a role not configured.
    pub problems: Vec<BucketProblem>,
    /// The enabled rules, each with its problems.
    pub rules: Vec<RuleReport>,
    #[serde(serialize_with = "error_text", skip_serializing_if = "Option::is_none")]
    pub error: Option<GuardrailError>,
}

impl BucketReport {
    fn new(bucket: &BucketRef) -> BucketReport {
        BucketReport {
            bucket: bucket.name.clone(),
            region: bucket.region.clone(),
            role: None,
            problems: Vec::new(),
            rules: Vec::new(),
            error: None,
        }
    }

    /// Every problem found, bucket-wide ones first.
    pub fn all_problems(&self) -> impl Iterator<Item = &BucketProblem> {
        self.problems
            .iter()
            .chain(self.rules.iter().flat_map(|r| r.problems.iter()))
    }

    /// What the check's failure calls for, if it failed: a retry, or a person.
    pub fn disposition(&self) -> Option<Disposition> {
        self.error.as_ref().map(GuardrailError::disposition)
    }
}

fn error_text<S: Serializer>(error: &Option<GuardrailError>, s: S) -> Result<S::Ok, S::Error> {
    match error {
        Some(e) => s.serialize_str(&e.to_string()),
        None => s.serialize_none(),
    }
}

/// Checks one bucket: reads its replication, describes each distinct replica key once (in the
/// Region its ARN names) and asks whether each replica's primary is managed.
pub async fn validate_bucket(
    s3: &aws_sdk_s3::Client,
    clients: &AwsClients,
    common: &CommonConfig,
    replication_roles: &[String],
    bucket: &BucketRef,
) -> BucketReport {
    let mut report = BucketReport::new(bucket);
    let replication = match replication(&client_in(s3, &bucket.region), &bucket.name).await {
        Ok(Some(replication)) => replication,
        Ok(None) => {
            report.problems.push(BucketProblem::new(
                BucketProblemKind::NoReplicationConfiguration,
                format!("bucket {} has no replication configuration: add rules that name the replica key ARN, or remove the bucket from the configuration", value(&bucket.name)),
            ));
            return report;
        }
        Err(e) => {
            report.error = Some(e);
            return report;
        }
    };
    report
        .problems
        .extend(check_role(&replication.role, replication_roles));
    report.role = Some(replication.role);
    let mut lookups: HashMap<String, Option<KeyLookup>> = HashMap::new();
    let mut primaries: HashMap<String, Option<bool>> = HashMap::new();
    for rule in replication.rules.iter().filter(|r| r.enabled) {
        if let Some(id) = rule.replica_kms_key_id.as_deref() {
            if !lookups.contains_key(id) {
                match look_up(clients, common, id, &mut primaries).await {
                    Ok(lookup) => {
                        lookups.insert(id.to_string(), lookup);
                    }
                    // A transient failure: the whole bucket is checked again, not half reported.
                    Err(e) => {
                        report.rules.clear();
                        report.error = Some(e);
                        return report;
                    }
                }
            }
        }
        let lookup = rule
            .replica_kms_key_id
            .as_deref()
            .and_then(|id| lookups.get(id))
            .and_then(Option::as_ref);
        let mut problems = check_rule(rule, lookup);
        if let Some(KeyLookup::Found { key, .. }) = lookup {
            let s3 = client_in(s3, &bucket.region);
            if let Some(destination) = destination_region(&s3, &rule.destination_bucket).await {
                problems.extend(check_destination_region(rule, key, &destination));
            }
        }
        report.rules.push(RuleReport {
            id: rule.id.clone(),
            destination_bucket: rule.destination_bucket.clone(),
            replica_kms_key_id: rule.replica_kms_key_id.clone(),
            problems,
        });
    }
    report
}

/// S3 answers only in the bucket's Region: the given client, moved there when it is elsewhere.
fn client_in(s3: &aws_sdk_s3::Client, region: &str) -> aws_sdk_s3::Client {
    if s3.config().region().is_some_and(|r| r.as_ref() == region) {
        return s3.clone();
    }
    aws_sdk_s3::Client::from_conf(
        s3.config()
            .to_builder()
            .region(aws_sdk_s3::config::Region::new(region.to_string()))
            .build(),
    )
}

/// DescribeKey on a key or alias ARN in its Region; `None` for references that cannot be
/// described without guessing a Region. Retryable failures are errors.
async fn look_up(
    clients: &AwsClients,
    common: &CommonConfig,
    id: &str,
    primaries: &mut HashMap<String, Option<bool>>,
) -> Result<Option<KeyLookup>, GuardrailError> {
    let (KeyReference::KeyArn(arn) | KeyReference::AliasArn(arn)) = KeyReference::of(id) else {
        return Ok(None);
    };
    match kms::describe_key(&clients.kms_in(arn.account(), arn.region()), id).await {
        Ok(key) => {
            let primary_managed = match key.primary_arn.as_deref().filter(|_| key.is_replica()) {
                Some(primary) => match primaries.get(primary) {
                    Some(known) => *known,
                    None => {
                        let managed = primary_managed(clients, common, primary).await;
                        primaries.insert(primary.to_string(), managed);
                        managed
                    }
                },
                None => None,
            };
            Ok(Some(KeyLookup::Found {
                key: Box::new(key),
                primary_managed,
            }))
        }
        Err(e) if e.is_not_found() => Ok(Some(KeyLookup::NotFound)),
        Err(e) => {
            let e = retry_or_report(e)?;
            Ok(Some(KeyLookup::Unreadable(e.to_string())))
        }
    }
}

/// Whether the primary is a managed key: `None` when the function is shut out of it or the
/// question failed, so an unknown answer is not reported as a problem.
async fn primary_managed(
    clients: &AwsClients,
    common: &CommonConfig,
    primary: &str,
) -> Option<bool> {
    let region = Region::parse(Arn::parse(primary).ok()?.region()).ok()?;
    let locator = KeyLocator {
        region,
        identifier: primary.to_string(),
    };
    match resolve(clients, common, &locator, None).await {
        Ok(Resolution::Managed(_)) => Some(true),
        Ok(Resolution::Unmanaged { .. } | Resolution::NotOurs(_)) => Some(false),
        Ok(Resolution::ShutOut { error, .. }) | Err(error) => {
            tracing::warn!(primary = %value(primary), %error, "cannot tell whether the primary is managed");
            None
        }
    }
}

/// PutBucketReplication on a configured bucket: its rules against the replicas they name,
/// in one message.
pub async fn on_bucket_event(
    deps: &Deps,
    detail: &CloudTrailDetail,
) -> Result<Response, GuardrailError> {
    let config = &deps.config;
    let name = detail
        .request_parameters
        .as_ref()
        .and_then(|p| p.get("bucketName"))
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| {
            GuardrailError::InvalidEvent(format!(
                "{} event {} names no bucket (requestParameters.bucketName)",
                detail.event_name,
                detail.event_id()
            ))
        })?;
    let Some(bucket) = config.buckets.iter().find(|b| b.name == name) else {
        return Ok(Response::Outcome(Outcome::skipped(
            detail.event_id(),
            &detail.event_name,
            format!("bucket {} is not in REPLICATION_BUCKETS", quoted(name, 80)),
        )));
    };
    let s3 = deps::s3(deps, &bucket.region);
    let roles = &config.replication_roles;
    let checked = validate_bucket(&s3, &deps.clients, &config.common, roles, bucket).await;
    let mut report = ValidationReport::new(&detail.event_name, config.common.mode);
    report.buckets.push(checked);
    announce(deps, Cause::Event(detail), report).await
}

#[cfg(test)]
#[path = "buckets_tests.rs"]
mod tests;

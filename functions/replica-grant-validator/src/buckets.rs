//! The S3 side: each configured source bucket's replication rules must name, by key ARN, an
//! enabled symmetric multi-Region replica of a managed primary, and must replicate SSE-KMS
//! objects. The decision ([`check_rule`]) is a function of data; reading S3 and KMS wraps it.

use std::collections::HashMap;

use aws_sdk_kms::types::KeyState;
use aws_sdk_s3::config::Region;
use aws_sdk_s3::types::{
    ReplicationConfiguration, ReplicationRuleStatus, SseKmsEncryptedObjectsStatus,
};
use serde::{Serialize, Serializer};
use shared::aws::kms::{self, KeyInfo};
use shared::aws::AwsClients;
use shared::base::arn::Arn;
use shared::base::region::is_region;
use shared::base::text::{quoted, value};
use shared::config::CommonConfig;
use shared::pipeline::resolve::{resolve, Resolution};
use shared::triggers::events::KeyLocator;
use shared::GuardrailError;

/// The code S3 answers GetBucketReplication with when the bucket has no replication.
const NO_REPLICATION: &str = "ReplicationConfigurationNotFoundError";

/// A configured source bucket and the Region its API calls must go to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BucketRef {
    pub name: String,
    pub region: String,
}

/// A configuration entry: `bucket-name` (in `default_region`, the function's) or
/// `bucket-name@region`.
pub fn parse_bucket_entry(entry: &str, default_region: &str) -> Result<BucketRef, String> {
    let entry = entry.trim();
    let (name, region) = entry.split_once('@').unwrap_or((entry, default_region));
    if let Some(problem) = bucket_name_problem(name) {
        return Err(format!(
            "{} is not an S3 bucket name: {problem}",
            quoted(name, 80)
        ));
    }
    if !is_region(region) {
        return Err(format!(
            "bucket entry {}: {} is not a Region",
            quoted(entry, 120),
            quoted(region, 40)
        ));
    }
    Ok(BucketRef {
        name: name.to_string(),
        region: region.to_string(),
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
            Ok(arn) if arn.service() == "kms" && is_region(arn.region()) => {
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
    pub region: String,
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

    /// Whether the check failed in a way trying again can fix (throttling, 5xx).
    pub fn is_retryable(&self) -> bool {
        self.error
            .as_ref()
            .is_some_and(GuardrailError::is_retryable)
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
        report.rules.push(RuleReport {
            id: rule.id.clone(),
            destination_bucket: rule.destination_bucket.clone(),
            replica_kms_key_id: rule.replica_kms_key_id.clone(),
            problems: check_rule(rule, lookup),
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
            .region(Region::new(region.to_string()))
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
    match kms::describe_key(&clients.kms(arn.region()), id).await {
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
        Err(e) if e.is_retryable() => Err(e),
        Err(e) => Ok(Some(KeyLookup::Unreadable(e.to_string()))),
    }
}

/// Whether the primary is a managed key: `None` when the function is shut out of it or the
/// question failed, so an unknown answer is not reported as a problem.
async fn primary_managed(
    clients: &AwsClients,
    common: &CommonConfig,
    primary: &str,
) -> Option<bool> {
    let region = Arn::parse(primary).ok()?.region().to_string();
    let locator = KeyLocator {
        region,
        identifier: primary.to_string(),
    };
    match resolve(clients, common, &locator).await {
        Ok(Resolution::Managed(_)) => Some(true),
        Ok(Resolution::Unmanaged { .. } | Resolution::NotOurs(_)) => Some(false),
        Ok(Resolution::ShutOut { error, .. }) | Err(error) => {
            tracing::warn!(primary = %value(primary), %error, "cannot tell whether the primary is managed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_kms::operation::describe_key::{DescribeKeyError, DescribeKeyOutput};
    use aws_sdk_kms::types::{
        KeyManagerType, KeyMetadata, KeySpec, MultiRegionConfiguration, MultiRegionKey,
        MultiRegionKeyType,
    };
    use aws_sdk_kms::Client as KmsClient;
    use aws_sdk_s3::operation::get_bucket_replication::GetBucketReplicationOutput;
    use aws_sdk_s3::types::{
        Destination, EncryptionConfiguration, ReplicationRule, SourceSelectionCriteria,
        SseKmsEncryptedObjects,
    };
    use aws_sdk_s3::Client as S3Client;
    use aws_smithy_mocks::{mock, mock_client, Rule as MockRule, RuleMode};
    use aws_smithy_types::error::ErrorMetadata;
    use std::collections::HashMap;

    const ACCOUNT: &str = "111122223333";
    const PRIMARY: &str =
        "arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab";
    const REPLICA: &str =
        "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab";
    const ALIAS: &str = "arn:aws:kms:eu-west-1:111122223333:alias/replica-data";
    const ROLE: &str = "arn:aws:iam::111122223333:role/s3-replication";
    const DESTINATION: &str = "arn:aws:s3:::replica-bucket";

    fn kinds(problems: &[BucketProblem]) -> Vec<BucketProblemKind> {
        problems.iter().map(|p| p.kind).collect()
    }

    fn rule(key: Option<&str>, sse_kms: Option<bool>) -> Rule {
        Rule {
            id: Some("to-dublin".into()),
            enabled: true,
            destination_bucket: DESTINATION.into(),
            replica_kms_key_id: key.map(str::to_string),
            sse_kms_replicated: sse_kms,
        }
    }

    /// Key metadata as DescribeKey returns it: `primary` None for a single-Region key.
    fn metadata(arn: &str, state: KeyState, primary: Option<&str>, spec: KeySpec) -> KeyMetadata {
        let mut meta = KeyMetadata::builder()
            .key_id(arn.rsplit('/').next().unwrap_or_default())
            .arn(arn)
            .aws_account_id(ACCOUNT)
            .key_state(state)
            .key_manager(KeyManagerType::Customer)
            .key_spec(spec)
            .multi_region(primary.is_some());
        if let Some(primary) = primary {
            let kind = if primary == arn {
                MultiRegionKeyType::Primary
            } else {
                MultiRegionKeyType::Replica
            };
            meta = meta.multi_region_configuration(
                MultiRegionConfiguration::builder()
                    .multi_region_key_type(kind)
                    .primary_key(
                        MultiRegionKey::builder()
                            .arn(primary)
                            .region("us-east-1")
                            .build(),
                    )
                    .build(),
            );
        }
        meta.build().unwrap()
    }

    fn found(state: KeyState, primary_managed: Option<bool>) -> KeyLookup {
        KeyLookup::Found {
            key: Box::new(
                KeyInfo::from_metadata(&metadata(
                    REPLICA,
                    state,
                    Some(PRIMARY),
                    KeySpec::SymmetricDefault,
                ))
                .unwrap(),
            ),
            primary_managed,
        }
    }

    #[test]
    fn a_good_rule_has_no_problems_and_a_disabled_rule_is_skipped() {
        let good = rule(Some(REPLICA), Some(true));
        assert_eq!(
            check_rule(&good, Some(&found(KeyState::Enabled, Some(true)))),
            vec![]
        );
        // An unknown primary is not held against the rule.
        assert_eq!(
            check_rule(&good, Some(&found(KeyState::Enabled, None))),
            vec![]
        );
        let off = Rule {
            enabled: false,
            ..rule(Some("alias/x"), Some(false))
        };
        assert_eq!(check_rule(&off, Some(&KeyLookup::NotFound)), vec![]);
        // Without SSE-KMS replication and without a key there is nothing to encrypt.
        assert_eq!(check_rule(&rule(None, None), None), vec![]);
    }

    #[test]
    fn sse_kms_replication_and_the_replica_key_go_together() {
        let problems = check_rule(&rule(None, Some(true)), None);
        assert_eq!(kinds(&problems), [BucketProblemKind::NoReplicaKey]);
        assert!(
            problems[0]
                .summary
                .starts_with("rule \"to-dublin\" replicates SSE-KMS objects"),
            "{}",
            problems[0].summary
        );
        for criteria in [None, Some(false)] {
            let problems = check_rule(
                &rule(Some(REPLICA), criteria),
                Some(&found(KeyState::Enabled, Some(true))),
            );
            assert_eq!(kinds(&problems), [BucketProblemKind::SseKmsNotReplicated]);
            assert!(problems[0]
                .summary
                .contains("objects encrypted with SSE-KMS are not replicated"));
        }
    }

    #[test]
    fn an_alias_is_replaced_by_the_key_it_points_to() {
        let problems = check_rule(
            &rule(Some(ALIAS), Some(true)),
            Some(&found(KeyState::Enabled, Some(true))),
        );
        assert_eq!(kinds(&problems), [BucketProblemKind::AliasNotKeyArn]);
        assert_eq!(
            problems[0].summary,
            format!("rule \"to-dublin\" names alias {ALIAS}: replace it with the key ARN {REPLICA} it points to now: an alias can be moved to another key without the bucket noticing")
        );
        // An alias name cannot be described without knowing its Region.
        let problems = check_rule(&rule(Some("alias/replica-data"), Some(true)), None);
        assert_eq!(kinds(&problems), [BucketProblemKind::AliasNotKeyArn]);
        assert!(problems[0]
            .summary
            .contains("key ARN of the replica in the destination bucket's Region"));
    }

    #[test]
    fn anything_but_a_key_or_alias_arn_is_not_an_arn() {
        for id in [
            "mrk-1234abcd12ab34cd56ef1234567890ab",
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:s3:::replica-bucket",
            "arn:aws:kms::111122223333:key/mrk-1",
        ] {
            let problems = check_rule(&rule(Some(id), Some(true)), None);
            assert_eq!(kinds(&problems), [BucketProblemKind::KeyIdNotArn], "{id}");
        }
    }

    #[test]
    fn a_missing_or_unreadable_key_is_reported() {
        let r = rule(Some(REPLICA), Some(true));
        assert_eq!(
            kinds(&check_rule(&r, Some(&KeyLookup::NotFound))),
            [BucketProblemKind::KeyNotFound]
        );
        let problems = check_rule(
            &r,
            Some(&KeyLookup::Unreadable("AccessDeniedException:\nno".into())),
        );
        assert_eq!(kinds(&problems), [BucketProblemKind::KeyUnreadable]);
        assert!(
            problems[0]
                .summary
                .contains("(AccessDeniedException:\\nno)"),
            "{}",
            problems[0].summary
        );
    }

    #[test]
    fn the_replica_must_be_enabled_and_not_pending_deletion() {
        let r = rule(Some(REPLICA), Some(true));
        for (state, kind) in [
            (KeyState::Disabled, BucketProblemKind::KeyDisabled),
            (KeyState::Unavailable, BucketProblemKind::KeyDisabled),
            (
                KeyState::PendingDeletion,
                BucketProblemKind::KeyPendingDeletion,
            ),
            (
                KeyState::PendingReplicaDeletion,
                BucketProblemKind::KeyPendingDeletion,
            ),
        ] {
            let problems = check_rule(&r, Some(&found(state.clone(), Some(true))));
            assert_eq!(kinds(&problems), [kind], "{state:?}");
        }
        let problems = check_rule(&r, Some(&found(KeyState::Disabled, Some(true))));
        assert!(
            problems[0].summary.contains("which is Disabled: enable it"),
            "{}",
            problems[0].summary
        );
    }

    #[test]
    fn only_a_symmetric_replica_of_a_managed_primary_will_do() {
        let r = rule(Some(PRIMARY), Some(true));
        let lookup = |arn: &str, primary: Option<&str>, spec: KeySpec| KeyLookup::Found {
            key: Box::new(
                KeyInfo::from_metadata(&metadata(arn, KeyState::Enabled, primary, spec.clone()))
                    .unwrap(),
            ),
            primary_managed: Some(true),
        };
        let primary = check_rule(
            &r,
            Some(&lookup(PRIMARY, Some(PRIMARY), KeySpec::SymmetricDefault)),
        );
        assert_eq!(kinds(&primary), [BucketProblemKind::NotMultiRegionReplica]);
        assert!(primary[0]
            .summary
            .contains("a multi-Region primary, not a replica"));
        let single = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let problems = check_rule(
            &rule(Some(single), Some(true)),
            Some(&lookup(single, None, KeySpec::SymmetricDefault)),
        );
        assert_eq!(kinds(&problems), [BucketProblemKind::NotMultiRegionReplica]);
        assert!(problems[0].summary.contains("a single-Region key"));
        let problems = check_rule(
            &rule(Some(REPLICA), Some(true)),
            Some(&lookup(REPLICA, Some(PRIMARY), KeySpec::Rsa2048)),
        );
        assert_eq!(kinds(&problems), [BucketProblemKind::NotSymmetric]);
        let problems = check_rule(
            &rule(Some(REPLICA), Some(true)),
            Some(&found(KeyState::Enabled, Some(false))),
        );
        assert_eq!(kinds(&problems), [BucketProblemKind::NotManagedPrimary]);
        assert!(problems[0].summary.contains(&format!(
            "a replica of {PRIMARY}, which the guardrails do not manage"
        )));
    }

    #[test]
    fn the_role_must_be_a_configured_one_when_roles_are_configured() {
        assert_eq!(check_role(ROLE, &[]), None);
        assert_eq!(check_role(ROLE, &[ROLE.to_string()]), None);
        let problem = check_role(
            "arn:aws:iam::111122223333:role/other\n",
            &[ROLE.to_string()],
        )
        .unwrap();
        assert_eq!(problem.kind, BucketProblemKind::RoleNotConfigured);
        assert!(problem.summary.starts_with("replication role arn:aws:iam::111122223333:role/other\\n is not in REPLICATION_ROLE_ARNS"));
    }

    #[test]
    fn problem_kinds_serialize_in_snake_case() {
        let json = serde_json::to_value(BucketProblem::new(
            BucketProblemKind::AliasNotKeyArn,
            "s".into(),
        ))
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "alias_not_key_arn", "summary": "s"})
        );
    }

    #[test]
    fn bucket_entries_name_a_bucket_and_optionally_its_region() {
        assert_eq!(
            parse_bucket_entry(" logs.example-1 ", "eu-west-1"),
            Ok(BucketRef {
                name: "logs.example-1".into(),
                region: "eu-west-1".into()
            })
        );
        assert_eq!(
            parse_bucket_entry("data@us-east-2", "eu-west-1"),
            Ok(BucketRef {
                name: "data".into(),
                region: "us-east-2".into()
            })
        );
        for (bad, says) in [
            ("ab", "3 to 63 characters"),
            (&"a".repeat(64) as &str, "3 to 63 characters"),
            ("My-Bucket", "only lowercase letters"),
            ("bucket_name", "only lowercase letters"),
            ("-bucket", "begins and ends"),
            ("bucket.", "begins and ends"),
            ("my..bucket", "adjacent dots"),
            ("192.168.5.4", "IP address"),
            ("data@europe", "\"europe\" is not a Region"),
            ("data@", "\"\" is not a Region"),
            ("x\ny", "\"x\\ny\" is not an S3 bucket name"),
        ] {
            let err = parse_bucket_entry(bad, "eu-west-1").unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    // --- I/O against the real SDK clients with mocked answers ---

    fn s3_error(status: u16, code: &str) -> MockRule {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>from S3</Message><BucketName>source-bucket</BucketName><RequestId>R</RequestId><HostId>H</HostId></Error>"
        );
        mock!(S3Client::get_bucket_replication)
            .sequence()
            .http_status(status, Some(body))
            .build()
    }

    fn s3_replication(rules: Vec<ReplicationRule>) -> MockRule {
        mock!(S3Client::get_bucket_replication)
            .match_requests(|r| r.bucket() == Some("source-bucket"))
            .then_output(move || {
                GetBucketReplicationOutput::builder()
                    .replication_configuration(
                        ReplicationConfiguration::builder()
                            .role(ROLE)
                            .set_rules(Some(rules.clone()))
                            .build()
                            .unwrap(),
                    )
                    .build()
            })
    }

    fn sdk_rule(id: &str, key: &str) -> ReplicationRule {
        ReplicationRule::builder()
            .id(id)
            .status(ReplicationRuleStatus::Enabled)
            .destination(
                Destination::builder()
                    .bucket(DESTINATION)
                    .encryption_configuration(
                        EncryptionConfiguration::builder()
                            .replica_kms_key_id(key)
                            .build(),
                    )
                    .build()
                    .unwrap(),
            )
            .source_selection_criteria(
                SourceSelectionCriteria::builder()
                    .sse_kms_encrypted_objects(
                        SseKmsEncryptedObjects::builder()
                            .status(SseKmsEncryptedObjectsStatus::Enabled)
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .build()
            .unwrap()
    }

    /// S3 in `region` with the production retry settings.
    fn s3(region: &'static str, rules: &[&MockRule]) -> S3Client {
        mock_client!(aws_sdk_s3, RuleMode::MatchAny, rules, |c| c
            .region(Region::new(region))
            .retry_config(shared::aws::retry_config()))
    }

    fn describes(identifier: &'static str, meta: KeyMetadata) -> MockRule {
        mock!(KmsClient::describe_key)
            .match_requests(move |r| r.key_id() == Some(identifier))
            .then_output(move || {
                DescribeKeyOutput::builder()
                    .key_metadata(meta.clone())
                    .build()
            })
    }

    fn clients(replica_region: &[&MockRule], primary_region: &[&MockRule]) -> AwsClients {
        let eu: KmsClient = mock_client!(aws_sdk_kms, RuleMode::MatchAny, replica_region);
        let us: KmsClient = mock_client!(aws_sdk_kms, RuleMode::MatchAny, primary_region);
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        AwsClients::new(sdk)
            .with_kms_client("eu-west-1", eu)
            .with_kms_client("us-east-1", us)
    }

    /// The primary is managed by being listed: resolving it needs its DescribeKey only.
    fn common() -> CommonConfig {
        let env: HashMap<&str, &str> = HashMap::from([
            ("MODE", "report"),
            ("ACCOUNT_ID", ACCOUNT),
            ("AWS_REGION", "eu-west-1"),
            (
                "NOTIFY_TOPIC_ARN",
                "arn:aws:sns:eu-west-1:111122223333:kms-guardrails",
            ),
            (
                "SELF_ROLE_ARN",
                "arn:aws:iam::111122223333:role/replica-grant-validator",
            ),
            ("MANAGED_KEYS", PRIMARY),
        ]);
        shared::config::load(
            &|k| env.get(k).map(|v| v.to_string()),
            CommonConfig::read,
            |_| Vec::new(),
        )
        .unwrap()
    }

    fn source() -> BucketRef {
        BucketRef {
            name: "source-bucket".into(),
            region: "eu-west-1".into(),
        }
    }

    fn primary_described() -> MockRule {
        describes(
            PRIMARY,
            metadata(
                PRIMARY,
                KeyState::Enabled,
                Some(PRIMARY),
                KeySpec::SymmetricDefault,
            ),
        )
    }

    #[tokio::test]
    async fn s3_xml_errors_carry_their_codes() {
        let denied = s3_error(403, "AccessDenied");
        let err = replication(&s3("eu-west-1", &[&denied]), "source-bucket")
            .await
            .unwrap_err();
        assert!(err.is_access_denied() && !err.is_retryable(), "{err}");
        assert_eq!(
            err.to_string(),
            "GetBucketReplication on source-bucket failed: AccessDenied: from S3"
        );

        let none = s3_error(404, "ReplicationConfigurationNotFoundError");
        assert_eq!(
            replication(&s3("eu-west-1", &[&none]), "source-bucket")
                .await
                .unwrap(),
            None
        );

        let slow = mock!(S3Client::get_bucket_replication)
            .sequence()
            .http_status(503, Some("<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>".into()))
            .times(3)
            .build();
        let err = replication(&s3("eu-west-1", &[&slow]), "source-bucket")
            .await
            .unwrap_err();
        assert_eq!(
            (err.error_type(), err.is_retryable()),
            ("Throttling", true),
            "{err}"
        );
        assert_eq!(slow.num_calls(), shared::aws::MAX_ATTEMPTS as usize);
    }

    #[tokio::test]
    async fn a_denied_replication_read_is_a_permanent_error_of_the_report() {
        let denied = s3_error(403, "AccessDenied");
        let report = validate_bucket(
            &s3("eu-west-1", &[&denied]),
            &clients(&[], &[]),
            &common(),
            &[],
            &source(),
        )
        .await;
        assert!(report
            .error
            .as_ref()
            .is_some_and(GuardrailError::is_access_denied));
        assert!(!report.is_retryable());
        assert!(report.rules.is_empty() && report.problems.is_empty());
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json["error"],
            "GetBucketReplication on source-bucket failed: AccessDenied: from S3"
        );
    }

    #[tokio::test]
    async fn a_bucket_without_replication_is_a_problem() {
        let none = s3_error(404, "ReplicationConfigurationNotFoundError");
        let report = validate_bucket(
            &s3("eu-west-1", &[&none]),
            &clients(&[], &[]),
            &common(),
            &[],
            &source(),
        )
        .await;
        assert!(report.error.is_none());
        assert_eq!(
            kinds(&report.problems),
            [BucketProblemKind::NoReplicationConfiguration]
        );
        assert!(serde_json::to_value(&report)
            .unwrap()
            .get("error")
            .is_none());
    }

    #[tokio::test]
    async fn a_good_rule_has_no_problems_and_each_key_is_described_once() {
        let bucket = s3_replication(vec![sdk_rule("one", REPLICA), sdk_rule("two", REPLICA)]);
        let replica = describes(
            REPLICA,
            metadata(
                REPLICA,
                KeyState::Enabled,
                Some(PRIMARY),
                KeySpec::SymmetricDefault,
            ),
        );
        let primary = primary_described();
        // The client is in another Region: the call still goes to the bucket's.
        let report = validate_bucket(
            &s3("us-west-2", &[&bucket]),
            &clients(&[&replica], &[&primary]),
            &common(),
            &[ROLE.to_string()],
            &source(),
        )
        .await;
        assert!(report.error.is_none(), "{:?}", report.error);
        assert_eq!(report.role.as_deref(), Some(ROLE));
        assert_eq!(report.rules.len(), 2);
        assert_eq!(report.all_problems().count(), 0, "{report:?}");
        assert_eq!((replica.num_calls(), primary.num_calls()), (1, 1));
        assert_eq!(bucket.num_calls(), 1);
    }

    #[tokio::test]
    async fn an_alias_is_named_by_the_key_it_points_to() {
        let bucket = s3_replication(vec![sdk_rule("via-alias", ALIAS)]);
        let alias = describes(
            ALIAS,
            metadata(
                REPLICA,
                KeyState::Enabled,
                Some(PRIMARY),
                KeySpec::SymmetricDefault,
            ),
        );
        let primary = primary_described();
        let report = validate_bucket(
            &s3("eu-west-1", &[&bucket]),
            &clients(&[&alias], &[&primary]),
            &common(),
            &["arn:aws:iam::111122223333:role/other".to_string()],
            &source(),
        )
        .await;
        assert_eq!(
            kinds(&report.problems),
            [BucketProblemKind::RoleNotConfigured]
        );
        let problems = &report.rules[0].problems;
        assert_eq!(kinds(problems), [BucketProblemKind::AliasNotKeyArn]);
        assert!(problems[0].summary.contains(&format!(
            "replace it with the key ARN {REPLICA} it points to now"
        )));
    }

    #[tokio::test]
    async fn a_disabled_replica_and_an_unmanaged_primary_are_reported() {
        let bucket = s3_replication(vec![sdk_rule("disabled", REPLICA)]);
        let replica = describes(
            REPLICA,
            metadata(
                REPLICA,
                KeyState::Disabled,
                Some(PRIMARY),
                KeySpec::SymmetricDefault,
            ),
        );
        let primary = primary_described();
        let report = validate_bucket(
            &s3("eu-west-1", &[&bucket]),
            &clients(&[&replica], &[&primary]),
            &common(),
            &[],
            &source(),
        )
        .await;
        assert_eq!(
            kinds(&report.rules[0].problems),
            [BucketProblemKind::KeyDisabled]
        );

        // Not in MANAGED_KEYS: the primary is not managed.
        let other = "arn:aws:kms:us-east-1:111122223333:key/mrk-99999999999999999999999999999999";
        let replica = describes(
            REPLICA,
            metadata(
                REPLICA,
                KeyState::Enabled,
                Some(other),
                KeySpec::SymmetricDefault,
            ),
        );
        let unlisted = describes(
            other,
            metadata(
                other,
                KeyState::Enabled,
                Some(other),
                KeySpec::SymmetricDefault,
            ),
        );
        let report = validate_bucket(
            &s3("eu-west-1", &[&bucket]),
            &clients(&[&replica], &[&unlisted]),
            &common(),
            &[],
            &source(),
        )
        .await;
        assert_eq!(
            kinds(&report.rules[0].problems),
            [BucketProblemKind::NotManagedPrimary]
        );
    }

    #[tokio::test]
    async fn missing_and_unreadable_keys_are_problems_and_throttling_a_retryable_error() {
        let bucket = s3_replication(vec![sdk_rule("r", REPLICA)]);
        let kms_error = |code: &'static str| {
            mock!(KmsClient::describe_key).then_error(move || {
                DescribeKeyError::generic(ErrorMetadata::builder().code(code).message("m").build())
            })
        };
        for (code, kind) in [
            ("NotFoundException", BucketProblemKind::KeyNotFound),
            ("AccessDeniedException", BucketProblemKind::KeyUnreadable),
        ] {
            let answer = kms_error(code);
            let report = validate_bucket(
                &s3("eu-west-1", &[&bucket]),
                &clients(&[&answer], &[]),
                &common(),
                &[],
                &source(),
            )
            .await;
            assert_eq!(kinds(&report.rules[0].problems), [kind], "{code}");
        }
        let throttled = kms_error("ThrottlingException");
        let report = validate_bucket(
            &s3("eu-west-1", &[&bucket]),
            &clients(&[&throttled], &[]),
            &common(),
            &[],
            &source(),
        )
        .await;
        assert!(
            report.is_retryable() && report.rules.is_empty(),
            "{report:?}"
        );
    }
}

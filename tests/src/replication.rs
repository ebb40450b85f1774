//! The test bed's multi-Region part: a managed primary in the test Region with replicas in two
//! replication Regions, S3 buckets whose replication names them, and the validator's
//! configuration as the template would set it.

use aws_config::Region;
use aws_sdk_kms::types::Tag;
use serde_json::{json, Value};
use shared::config::FunctionConfig;

use crate::{TestBed, ACCOUNT_ID, ADMIN_ROLE_ARN, REGION};

pub const REPLICA_REGIONS: [&str; 2] = ["us-west-2", "eu-central-1"];
pub const VALIDATOR_ROLE_ARN: &str =
    "arn:aws:iam::111122223333:role/kms-guardrails-ReplicaGrantValidatorRole-1A2B3C4D5E6F";
pub const REPLICATION_ROLE_ARN: &str = "arn:aws:iam::111122223333:role/s3-replication";

/// The grant every replica needs in the tests: the replication role may encrypt.
pub const REQUIRED_GRANTS: &str = r#"[{"Name": "s3-replication", "GranteePrincipal": "arn:aws:iam::111122223333:role/s3-replication", "Operations": ["Encrypt", "GenerateDataKey"]}]"#;

/// Every Region the key set lives in, primary first.
pub fn all_regions() -> Vec<&'static str> {
    std::iter::once(REGION).chain(REPLICA_REGIONS).collect()
}

/// The validator's configuration as the template would set it, enforce mode, with `extra`
/// on top.
pub fn validator_config(
    topic_arn: &str,
    extra: &[(&str, &str)],
) -> replica_grant_validator::Config {
    let mut env: Vec<(String, String)> = vec![
        ("ACCOUNT_ID".into(), ACCOUNT_ID.into()),
        ("AWS_REGION".into(), REGION.into()),
        ("NOTIFY_TOPIC_ARN".into(), topic_arn.into()),
        ("SELF_ROLE_ARN".into(), VALIDATOR_ROLE_ARN.into()),
        ("MODE".into(), "enforce".into()),
        ("STATE_TABLE".into(), crate::STATE_TABLE.into()),
        ("ENVIRONMENT".into(), "test".into()),
        ("REPLICATION_REGIONS".into(), REPLICA_REGIONS.join(",")),
        ("REPLICATION_ROLE_ARNS".into(), REPLICATION_ROLE_ARN.into()),
        ("REQUIRED_GRANTS".into(), REQUIRED_GRANTS.into()),
    ];
    for (k, v) in extra {
        env.retain(|(name, _)| name != k);
        env.push((k.to_string(), v.to_string()));
    }
    replica_grant_validator::Config::from_lookup(&|name| {
        env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    })
    .unwrap_or_else(|e| panic!("test configuration: {e}"))
}

/// A key policy for `region`: the admin role administers, the replication role may encrypt
/// through S3 in that Region.
pub fn replica_policy(region: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": [ADMIN_ROLE_ARN, VALIDATOR_ROLE_ARN]},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "S3Replication", "Effect": "Allow", "Principal": {"AWS": REPLICATION_ROLE_ARN},
         "Action": ["kms:Encrypt", "kms:GenerateDataKey"], "Resource": "*",
         "Condition": {"StringEquals": {"kms:ViaService": format!("s3.{region}.amazonaws.com")}}}
    ]})
}

/// A managed multi-Region primary and its replicas.
pub struct KeySet {
    /// `mrk-...`, the same in every Region.
    pub key_id: String,
    pub primary_arn: String,
}

impl KeySet {
    pub fn arn_in(&self, region: &str) -> String {
        format!("arn:aws:kms:{region}:{ACCOUNT_ID}:key/{}", self.key_id)
    }
}

impl TestBed {
    pub fn kms_in(&self, region: &str) -> aws_sdk_kms::Client {
        let config = aws_sdk_kms::config::Builder::from(&self.sdk)
            .region(Region::new(region.to_string()))
            .build();
        aws_sdk_kms::Client::from_conf(config)
    }

    pub fn s3_in(&self, region: &str) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.sdk)
            .region(Region::new(region.to_string()))
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// A managed multi-Region primary in the test Region, replicated into `replica_regions`,
    /// every key with the policy of its own Region. (moto's ReplicateKey copies the primary's
    /// policy, where AWS gives the default one; the tests put each replica's own.)
    pub async fn create_key_set(&self, replica_regions: &[&str]) -> KeySet {
        let created = self
            .kms
            .create_key()
            .description("replicated app-data key")
            .multi_region(true)
            .policy(replica_policy(REGION).to_string())
            .tags(
                Tag::builder()
                    .tag_key("guardrails:managed")
                    .tag_value("true")
                    .build()
                    .expect("tag"),
            )
            .send()
            .await
            .expect("create multi-Region key")
            .key_metadata
            .expect("key metadata");
        let key_id = created.key_id;
        for region in replica_regions {
            self.kms
                .replicate_key()
                .key_id(&key_id)
                .replica_region(*region)
                .send()
                .await
                .expect("replicate key");
            self.kms_in(region)
                .put_key_policy()
                .key_id(&key_id)
                .policy_name("default")
                .policy(replica_policy(region).to_string())
                .send()
                .await
                .expect("put replica policy");
        }
        KeySet {
            primary_arn: created.arn.expect("key arn"),
            key_id,
        }
    }

    /// The grants on the key in `region`: (name, grantee, operations).
    pub async fn grants_in(
        &self,
        region: &str,
        key_id: &str,
    ) -> Vec<(String, String, Vec<String>)> {
        let out = self
            .kms_in(region)
            .list_grants()
            .key_id(key_id)
            .send()
            .await
            .expect("list grants");
        out.grants()
            .iter()
            .map(|g| {
                (
                    g.name().unwrap_or_default().to_string(),
                    g.grantee_principal().unwrap_or_default().to_string(),
                    g.operations()
                        .iter()
                        .map(|o| o.as_str().to_string())
                        .collect(),
                )
            })
            .collect()
    }

    pub async fn create_grant_in(
        &self,
        region: &str,
        key_id: &str,
        name: &str,
        grantee: &str,
        operations: &[&str],
    ) {
        let mut request = self
            .kms_in(region)
            .create_grant()
            .key_id(key_id)
            .name(name)
            .grantee_principal(grantee);
        for op in operations {
            request = request.operations(aws_sdk_kms::types::GrantOperation::from(*op));
        }
        request.send().await.expect("create grant");
    }

    /// An empty bucket in `region`: a replication destination.
    pub async fn create_bucket_in(&self, bucket: &str, region: &str) {
        use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
        let location = CreateBucketConfiguration::builder()
            .location_constraint(BucketLocationConstraint::from(region))
            .build();
        self.s3_in(region)
            .create_bucket()
            .bucket(bucket)
            .create_bucket_configuration(location)
            .send()
            .await
            .expect("create destination bucket");
    }

    /// A versioned bucket in the test Region whose replication rule sends SSE-KMS objects to
    /// `destination` encrypted with `replica_key` (a key or alias ARN).
    pub async fn create_replicating_bucket(
        &self,
        bucket: &str,
        destination: &str,
        replica_key: &str,
    ) {
        use aws_sdk_s3::types::*;
        let s3 = self.s3_in(REGION);
        let location = CreateBucketConfiguration::builder()
            .location_constraint(BucketLocationConstraint::from(REGION))
            .build();
        s3.create_bucket()
            .bucket(bucket)
            .create_bucket_configuration(location)
            .send()
            .await
            .expect("create bucket");
        s3.put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .expect("enable versioning");
        let rule = ReplicationRule::builder()
            .id("to-replica-region")
            .priority(1)
            .status(ReplicationRuleStatus::Enabled)
            .filter(ReplicationRuleFilter::builder().prefix("").build())
            .delete_marker_replication(
                DeleteMarkerReplication::builder()
                    .status(DeleteMarkerReplicationStatus::Disabled)
                    .build(),
            )
            .source_selection_criteria(
                SourceSelectionCriteria::builder()
                    .sse_kms_encrypted_objects(
                        SseKmsEncryptedObjects::builder()
                            .status(SseKmsEncryptedObjectsStatus::Enabled)
                            .build()
                            .expect("sse-kms criteria"),
                    )
                    .build(),
            )
            .destination(
                Destination::builder()
                    .bucket(format!("arn:aws:s3:::{destination}"))
                    .encryption_configuration(
                        EncryptionConfiguration::builder()
                            .replica_kms_key_id(replica_key)
                            .build(),
                    )
                    .build()
                    .expect("destination"),
            )
            .build()
            .expect("rule");
        s3.put_bucket_replication()
            .bucket(bucket)
            .replication_configuration(
                ReplicationConfiguration::builder()
                    .role(REPLICATION_ROLE_ARN)
                    .rules(rule)
                    .build()
                    .expect("replication configuration"),
            )
            .send()
            .await
            .expect("put bucket replication");
    }
}

//! replica-grant-validator: checks that every managed multi-Region primary's replicas, their
//! grants and key policies, and the S3 replication rules that name them let S3 replication
//! encrypt, and creates the grants that are missing.

use shared::triggers::gate::{EventGate, HandledEvents};

pub const FUNCTION: &str = "replica-grant-validator";

/// KMS calls that change what a replica lets S3 replication do, and the S3 call that changes
/// which replica a bucket's replication uses.
pub const GATE: EventGate = EventGate {
    function: FUNCTION,
    handled: &[
        HandledEvents {
            source: "kms.amazonaws.com",
            names: &[
                "CreateGrant",
                "DisableKey",
                "PutKeyPolicy",
                "ReplicateKey",
                "RetireGrant",
                "RevokeGrant",
                "ScheduleKeyDeletion",
                "UpdatePrimaryRegion",
            ],
        },
        HandledEvents {
            source: "s3.amazonaws.com",
            names: &["PutBucketReplication"],
        },
    ],
};

use std::collections::HashSet;
use std::sync::Mutex;

use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;
use shared::aws::kms::KeyInfo;
use shared::notify::outcome::{KeyOutcome, Outcome, Status};
use shared::notify::{deliver, Cause};
use shared::pipeline::sweep::{self, Deadline, Swept};
use shared::pipeline::Aliases;
use shared::triggers::events::{parse_trigger, CloudTrailDetail, KeyLocator, Trigger};
use shared::GuardrailError;

use crate::audit::audit_primary;
use crate::buckets::validate_bucket;
use crate::deps::Deps;
use crate::message::digest;
use crate::primary::{primary_of, Target};
use crate::report::ValidationReport;

/// The invocation's result: an event not acted on (or a key the function was shut out of),
/// or the validation report.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Response {
    Outcome(Outcome),
    Report(Box<ValidationReport>),
}

pub async fn function_handler(
    event: LambdaEvent<Value>,
    deps: &Deps,
) -> Result<Response, GuardrailError> {
    let result = match parse_trigger(&event.payload) {
        Ok(Trigger::CloudTrail(ev)) => on_event(deps, &ev.detail).await,
        Ok(Trigger::Scheduled { id, time }) => {
            let deadline = Deadline::from_context_millis(event.context.deadline);
            let seed = id.as_deref().unwrap_or("sweep");
            on_sweep(deps, deadline, seed, time.as_deref()).await
        }
        Ok(other) => Err(GuardrailError::InvalidEvent(format!(
            "{FUNCTION} does not handle a {}",
            other.describe()
        ))),
        Err(e) => Err(e),
    };
    match &result {
        Ok(Response::Report(report)) => {
            let json = serde_json::to_string(report).unwrap_or_default();
            tracing::info!(report = %json, "validation report");
        }
        Ok(Response::Outcome(_)) => {}
        Err(e) => {
            tracing::error!(error_type = e.error_type(), error = %e, "invocation failed")
        }
    }
    result
}

async fn on_event(deps: &Deps, detail: &CloudTrailDetail) -> Result<Response, GuardrailError> {
    let common = &deps.config.common;
    let skipped = |reason: String| {
        Ok(Response::Outcome(Outcome::skipped(
            detail.event_id(),
            &detail.event_name,
            reason,
        )))
    };
    if let Err(reason) = GATE.admit(detail, &common.self_role_arn) {
        return skipped(reason);
    }
    if detail.event_source == "s3.amazonaws.com" {
        return on_bucket_event(deps, detail).await;
    }
    let locator = detail.key_locator(&common.region)?;
    let guard = deps.guard();
    let cause = Cause::Event(detail);
    let primary = match primary_of(deps, &locator).await? {
        Target::Primary(primary) => primary,
        Target::Skip(reason) => return skipped(reason),
        Target::ShutOut { key, error } => {
            let outcome = guard.shut_out(&key, cause, error).await?;
            return Ok(Response::Outcome(Outcome::Key(outcome)));
        }
    };
    let (audit, key_report) = audit_primary(deps, &primary).await;
    let mut report = ValidationReport::new(&detail.event_name, common.mode);
    report.keys.push(key_report);
    let outcome = guard
        .finish(&primary, cause, Aliases::PerKey, audit)
        .await?;
    report.notification = outcome.notification;
    Ok(Response::Report(Box::new(report)))
}

/// PutBucketReplication on a configured bucket: its rules against the replicas they name.
async fn on_bucket_event(
    deps: &Deps,
    detail: &CloudTrailDetail,
) -> Result<Response, GuardrailError> {
    let config = &deps.config;
    let name = detail
        .request_parameters
        .as_ref()
        .and_then(|p| p.get("bucketName"))
        .and_then(Value::as_str)
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
            format!(
                "bucket {} is not in REPLICATION_BUCKETS",
                shared::base::text::quoted(name, 80)
            ),
        )));
    };
    let s3 = deps.s3(&bucket.region);
    let checked = validate_bucket(
        &s3,
        &deps.clients,
        &config.common,
        &config.replication_roles,
        bucket,
    )
    .await;
    let mut report = ValidationReport::new(&detail.event_name, config.common.mode);
    report.buckets.push(checked);
    announce(deps, Cause::Event(detail), report).await
}

/// Every managed primary of the sweep Regions, then every configured bucket, with one
/// message for the whole run.
async fn on_sweep(
    deps: &Deps,
    deadline: Deadline,
    seed: &str,
    time: Option<&str>,
) -> Result<Response, GuardrailError> {
    let common = &deps.config.common;
    let reports = Mutex::new(Vec::new());
    let seen = Mutex::new(HashSet::new());
    let (reports_ref, seen_ref) = (&reports, &seen);
    let guard = deps.guard();
    let sweep = sweep::run(&deps.clients, common, deadline, seed, |swept| async move {
        let swept = match swept {
            Swept::Key(swept) => swept,
            Swept::ShutOut { key, error } => {
                return guard.shut_out(&key, Cause::Sweep { time }, error).await;
            }
        };
        let key = swept.key;
        let locator = KeyLocator {
            region: key.region.clone(),
            identifier: key.arn.to_string(),
        };
        let primary = match key.multi_region {
            false => None,
            true if !key.is_replica() => Some(key.clone()),
            true => match primary_of(deps, &locator).await? {
                Target::Primary(primary) => Some(primary),
                _ => None,
            },
        };
        let Some(primary) = primary else {
            return Ok(skipped_key(
                &key,
                "single-Region key, or a replica of an unmanaged primary: nothing to validate",
            ));
        };
        let first_time = seen_ref
            .lock()
            .map(|mut s| s.insert(primary.arn.to_string()))
            .unwrap_or(true);
        if !first_time {
            return Ok(skipped_key(
                &key,
                "validated with its primary in this sweep",
            ));
        }
        let (mut audit, report) = audit_primary(deps, &primary).await;
        if let Ok(mut all) = reports_ref.lock() {
            all.push(report);
        }
        match audit.failure.take() {
            Some(e) if e.is_retryable() => Err(e),
            Some(e) => {
                audit.outcome.status = Status::Failed;
                audit.outcome.reason = Some(format!("{e} ({})", e.error_type()));
                Ok(audit.outcome)
            }
            None => Ok(audit.outcome),
        }
    })
    .await;
    let mut report = ValidationReport::new("ScheduledSweep", common.mode);
    report.keys = reports.into_inner().unwrap_or_default();
    for bucket in &deps.config.buckets {
        let s3 = deps.s3(&bucket.region);
        let config = &deps.config;
        report.buckets.push(
            validate_bucket(
                &s3,
                &deps.clients,
                common,
                &config.replication_roles,
                bucket,
            )
            .await,
        );
    }
    report.sweep = Some(sweep);
    // Transient failures were counted as `retry_later`; the next sweep sees those keys again.
    announce(deps, Cause::Sweep { time }, report).await
}

fn skipped_key(key: &KeyInfo, reason: &str) -> KeyOutcome {
    let mut outcome = KeyOutcome::new(key);
    outcome.status = Status::Skipped;
    outcome.reason = Some(reason.to_string());
    outcome
}

/// One message for the run when it found or did anything. A bucket whose check a retry may
/// fix fails the invocation after the message, so nothing found is lost.
async fn announce(
    deps: &Deps,
    cause: Cause<'_>,
    mut report: ValidationReport,
) -> Result<Response, GuardrailError> {
    let common = &deps.config.common;
    if let Some(notification) = digest(&deps.guard().speaker(), cause, &report) {
        report.notification = Some(deliver(&deps.clients, common, &notification).await?);
    }
    let retry = report
        .buckets
        .iter()
        .find_map(|b| b.error.as_ref().filter(|_| b.is_retryable()));
    if let (Some(e), Cause::Event(_)) = (retry, cause) {
        return Err(e.clone());
    }
    Ok(Response::Report(Box::new(report)))
}

#[cfg(test)]
mod tests {
    //! Paths moto cannot produce: throttling and AccessDenied in one replica Region, against
    //! the real SDK clients with mocked answers, one client per Region.

    use super::*;
    use aws_sdk_kms::operation::create_grant::CreateGrantOutput;
    use aws_sdk_kms::operation::describe_key::DescribeKeyOutput;
    use aws_sdk_kms::operation::get_key_policy::GetKeyPolicyOutput;
    use aws_sdk_kms::operation::list_aliases::ListAliasesOutput;
    use aws_sdk_kms::operation::list_grants::ListGrantsOutput;
    use aws_sdk_kms::operation::list_resource_tags::ListResourceTagsOutput;
    use aws_sdk_kms::types::{
        GrantListEntry, GrantOperation, KeyManagerType, KeyMetadata, KeySpec, KeyState,
        MultiRegionConfiguration, MultiRegionKey, MultiRegionKeyType, Tag,
    };
    use aws_sdk_kms::Client as KmsClient;
    use aws_sdk_sns::operation::publish::PublishOutput;
    use aws_sdk_sns::Client as SnsClient;
    use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
    use aws_smithy_types::error::ErrorMetadata;
    use lambda_runtime::Context;
    use shared::aws::AwsClients;
    use std::collections::HashMap;

    const ID: &str = "mrk-1234abcd12ab34cd56ef1234567890ab";
    const ROLE: &str = "arn:aws:iam::111122223333:role/s3-replication";
    const REVOKE_GRANT: &str =
        include_str!("../../../events/replica-grant-validator/revoke-grant.json");

    fn arn(region: &str) -> String {
        format!("arn:aws:kms:{region}:111122223333:key/{ID}")
    }

    fn config() -> crate::Config {
        let env: HashMap<&str, String> = HashMap::from([
            ("MODE", "enforce".to_string()),
            ("ACCOUNT_ID", "111122223333".to_string()),
            ("AWS_REGION", "eu-west-1".to_string()),
            (
                "NOTIFY_TOPIC_ARN",
                "arn:aws:sns:eu-west-1:111122223333:kms-guardrails".to_string(),
            ),
            (
                "SELF_ROLE_ARN",
                "arn:aws:iam::111122223333:role/replica-grant-validator".to_string(),
            ),
            ("REPLICATION_REGIONS", "us-west-2,eu-central-1".to_string()),
            ("REPLICATION_ROLE_ARNS", ROLE.to_string()),
            (
                "REQUIRED_GRANTS",
                format!(
                    r#"[{{"Name":"s3-replication","GranteePrincipal":"{ROLE}","Operations":["Encrypt","GenerateDataKey"]}}]"#
                ),
            ),
        ]);
        crate::Config::from_lookup(&|k| env.get(k).cloned()).unwrap()
    }

    /// The key in `region` of a set whose primary is in `primary`; the other two are replicas.
    fn metadata(region: &str, primary: &str) -> KeyMetadata {
        let key = |r: &str| MultiRegionKey::builder().arn(arn(r)).region(r).build();
        let kind = if region == primary {
            MultiRegionKeyType::Primary
        } else {
            MultiRegionKeyType::Replica
        };
        let mut config = MultiRegionConfiguration::builder()
            .multi_region_key_type(kind)
            .primary_key(key(primary));
        for replica in ["eu-west-1", "us-west-2", "eu-central-1"] {
            if replica != primary {
                config = config.replica_keys(key(replica));
            }
        }
        KeyMetadata::builder()
            .key_id(ID)
            .arn(arn(region))
            .aws_account_id("111122223333")
            .key_state(KeyState::Enabled)
            .key_manager(KeyManagerType::Customer)
            .key_spec(KeySpec::SymmetricDefault)
            .multi_region(true)
            .multi_region_configuration(config.build())
            .build()
            .unwrap()
    }

    fn policy(region: &str) -> String {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"Admin","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::111122223333:role/kms-admin"}},"Action":"kms:*","Resource":"*"}},
               {{"Sid":"S3Replication","Effect":"Allow","Principal":{{"AWS":"{ROLE}"}},"Action":["kms:Encrypt","kms:GenerateDataKey"],"Resource":"*","Condition":{{"StringEquals":{{"kms:ViaService":"s3.{region}.amazonaws.com"}}}}}}]}}"#
        )
    }

    fn error(code: &str) -> ErrorMetadata {
        ErrorMetadata::builder()
            .code(code)
            .message("mocked")
            .build()
    }

    /// DescribeKey, tags (managed on the primary only), policy and aliases of `region`.
    fn key_rules(region: &'static str) -> Vec<Rule> {
        key_rules_in_set(region, "eu-west-1", region == "eu-west-1")
    }

    /// The same for a set whose primary is in `primary`, the key in `region` tagged or not.
    fn key_rules_in_set(region: &'static str, primary: &'static str, tagged: bool) -> Vec<Rule> {
        let tags = if tagged {
            vec![Tag::builder()
                .tag_key("guardrails:managed")
                .tag_value("true")
                .build()
                .unwrap()]
        } else {
            Vec::new()
        };
        vec![
            mock!(KmsClient::describe_key).then_output(move || {
                DescribeKeyOutput::builder()
                    .key_metadata(metadata(region, primary))
                    .build()
            }),
            mock!(KmsClient::list_resource_tags).then_output(move || {
                ListResourceTagsOutput::builder()
                    .set_tags(Some(tags.clone()))
                    .build()
            }),
            mock!(KmsClient::get_key_policy)
                .then_output(move || GetKeyPolicyOutput::builder().policy(policy(region)).build()),
            mock!(KmsClient::list_aliases).then_output(|| ListAliasesOutput::builder().build()),
        ]
    }

    fn required_grant() -> GrantListEntry {
        GrantListEntry::builder()
            .grant_id("g-1")
            .name("s3-replication")
            .grantee_principal(ROLE)
            .operations(GrantOperation::Encrypt)
            .operations(GrantOperation::GenerateDataKey)
            .build()
    }

    fn client(rules: &[Rule]) -> KmsClient {
        let refs: Vec<&Rule> = rules.iter().collect();
        mock_client!(aws_sdk_kms, RuleMode::MatchAny, &refs)
    }

    async fn invoke(clients: AwsClients) -> Result<Response, GuardrailError> {
        invoke_with(clients, REVOKE_GRANT).await
    }

    async fn invoke_with(clients: AwsClients, sample: &str) -> Result<Response, GuardrailError> {
        let deps = Deps::new(config(), clients, &aws_config::SdkConfig::builder().build());
        let event = serde_json::from_str(sample).unwrap();
        function_handler(LambdaEvent::new(event, Context::default()), &deps).await
    }

    #[tokio::test]
    async fn a_throttled_replica_region_fails_the_invocation_and_nothing_is_written_or_sent() {
        let west_grants = mock!(KmsClient::list_grants).then_error(|| {
            aws_sdk_kms::operation::list_grants::ListGrantsError::generic(error(
                "ThrottlingException",
            ))
        });
        let central_grants = mock!(KmsClient::list_grants)
            .then_output(|| ListGrantsOutput::builder().grants(required_grant()).build());
        let create =
            mock!(KmsClient::create_grant).then_output(|| CreateGrantOutput::builder().build());
        let publish = mock!(SnsClient::publish)
            .then_output(|| PublishOutput::builder().message_id("m-1").build());
        let west: Vec<Rule> = key_rules("us-west-2")
            .into_iter()
            .chain([west_grants, create.clone()])
            .collect();
        let central: Vec<Rule> = key_rules("eu-central-1")
            .into_iter()
            .chain([central_grants, create.clone()])
            .collect();
        let sns: SnsClient = mock_client!(aws_sdk_sns, RuleMode::MatchAny, &[&publish]);
        let clients = AwsClients::new(aws_config::SdkConfig::builder().build())
            .with_kms_client("eu-west-1", client(&key_rules("eu-west-1")))
            .with_kms_client("us-west-2", client(&west))
            .with_kms_client("eu-central-1", client(&central))
            .with_sns_client("eu-west-1", sns);

        let error = invoke(clients).await.unwrap_err();

        assert!(error.is_retryable(), "{error}");
        assert_eq!(error.operation(), Some("ListGrants"));
        assert_eq!(create.num_calls(), 0);
        assert_eq!(publish.num_calls(), 0, "the retry announces what it finds");
    }

    #[tokio::test]
    async fn a_denied_replica_region_is_reported_once_and_the_other_region_is_still_repaired() {
        let west_grants = mock!(KmsClient::list_grants).then_error(|| {
            aws_sdk_kms::operation::list_grants::ListGrantsError::generic(error(
                "AccessDeniedException",
            ))
        });
        let central_grants =
            mock!(KmsClient::list_grants).then_output(|| ListGrantsOutput::builder().build());
        let create = mock!(KmsClient::create_grant)
            .match_requests(|r| {
                r.name() == Some("s3-replication")
                    && r.key_id() == Some(arn("eu-central-1").as_str())
            })
            .then_output(|| CreateGrantOutput::builder().grant_id("g-2").build());
        let publish = mock!(SnsClient::publish)
            .then_output(|| PublishOutput::builder().message_id("m-1").build());
        let west: Vec<Rule> = key_rules("us-west-2")
            .into_iter()
            .chain([west_grants])
            .collect();
        let central: Vec<Rule> = key_rules("eu-central-1")
            .into_iter()
            .chain([central_grants, create.clone()])
            .collect();
        let sns: SnsClient = mock_client!(aws_sdk_sns, RuleMode::MatchAny, &[&publish]);
        let clients = AwsClients::new(aws_config::SdkConfig::builder().build())
            .with_kms_client("eu-west-1", client(&key_rules("eu-west-1")))
            .with_kms_client("us-west-2", client(&west))
            .with_kms_client("eu-central-1", client(&central))
            .with_sns_client("eu-west-1", sns);

        let report = match invoke(clients).await.unwrap() {
            Response::Report(report) => report,
            other => panic!("{other:?}"),
        };

        assert_eq!(create.num_calls(), 1);
        assert_eq!(publish.num_calls(), 1);
        let replicas = &report.keys[0].replicas;
        let west = replicas.iter().find(|r| r.region == "us-west-2").unwrap();
        assert!(
            west.error.as_deref().unwrap().contains("ListGrants"),
            "{west:?}"
        );
        let central = replicas
            .iter()
            .find(|r| r.region == "eu-central-1")
            .unwrap();
        assert_eq!(central.grants.missing, ["s3-replication"]);
        assert!(central.actions[0].done);
    }

    /// moto has no UpdatePrimaryRegion. Afterwards the managed tag sits on the eu-west-1 key,
    /// now a replica of the us-west-2 primary, which has no tag: the set is still managed, and
    /// validated from its new primary.
    #[tokio::test]
    async fn after_update_primary_region_the_set_is_validated_from_its_new_primary() {
        let empty =
            || mock!(KmsClient::list_grants).then_output(|| ListGrantsOutput::builder().build());
        let create = mock!(KmsClient::create_grant)
            .then_output(|| CreateGrantOutput::builder().grant_id("g-new").build());
        let publish = mock!(SnsClient::publish)
            .then_output(|| PublishOutput::builder().message_id("m-1").build());
        let old_primary: Vec<Rule> = key_rules_in_set("eu-west-1", "us-west-2", true)
            .into_iter()
            .chain([empty(), create.clone()])
            .collect();
        let new_primary = key_rules_in_set("us-west-2", "us-west-2", false);
        let central: Vec<Rule> = key_rules_in_set("eu-central-1", "us-west-2", false)
            .into_iter()
            .chain([empty(), create.clone()])
            .collect();
        let sns: SnsClient = mock_client!(aws_sdk_sns, RuleMode::MatchAny, &[&publish]);
        let clients = AwsClients::new(aws_config::SdkConfig::builder().build())
            .with_kms_client("eu-west-1", client(&old_primary))
            .with_kms_client("us-west-2", client(&new_primary))
            .with_kms_client("eu-central-1", client(&central))
            .with_sns_client("eu-west-1", sns);

        let sample =
            include_str!("../../../events/replica-grant-validator/update-primary-region.json");
        let report = match invoke_with(clients, sample).await.unwrap() {
            Response::Report(report) => report,
            other => panic!("{other:?}"),
        };

        assert_eq!(report.keys[0].primary, arn("us-west-2"));
        let regions: Vec<&str> = report.keys[0]
            .replicas
            .iter()
            .map(|r| r.region.as_str())
            .collect();
        assert_eq!(regions, ["eu-west-1", "eu-central-1"]);
        // eu-west-1 is outside the allowed Regions of this configuration: reported, no grant.
        assert!(report.keys[0].replicas[0]
            .findings
            .iter()
            .any(|f| f.kind == shared::notify::outcome::FindingKind::ReplicaRegionNotAllowed));
        assert_eq!(create.num_calls(), 1, "the eu-central-1 grant only");
        assert_eq!(publish.num_calls(), 1);
    }
}

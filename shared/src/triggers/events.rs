//! EventBridge envelopes and the CloudTrail record inside them, parsed leniently, and key
//! resolution from whatever identifier the record carries.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::Deserialize;
use serde_json::Value;

use crate::base::error::GuardrailError;
use crate::base::region::Region;
use crate::triggers::alarm::{parse_alarm_payload, AlarmChange};
use crate::triggers::work::{parse_sqs_batch, WorkDelivery};

pub const API_CALL_DETAIL_TYPE: &str = "AWS API Call via CloudTrail";
pub const SERVICE_EVENT_DETAIL_TYPE: &str = "AWS Service Event via CloudTrail";
pub const SCHEDULED_DETAIL_TYPE: &str = "Scheduled Event";

/// What invoked the function: every shape the four functions receive.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// A CloudTrail record delivered by EventBridge.
    CloudTrail(Box<CloudTrailEvent>),
    /// An EventBridge schedule: audit every managed key.
    Scheduled {
        id: Option<String>,
        time: Option<String>,
    },
    /// A CloudWatch alarm state change, from EventBridge, an SNS notification or the direct
    /// Lambda alarm action (`AlarmChange::delivery` says which).
    Alarm(Box<AlarmChange>),
    /// An operator's command, sent with `aws lambda invoke` (policy-drift's desired-state
    /// history and rollback).
    Command(OperatorCommand),
    /// Parts of a fanned-out sweep, from its SQS queue.
    SweepWork(Vec<WorkDelivery>),
}

/// `{"command": "history", "key": "alias/app"}` or
/// `{"command": "rollback", "key": "alias/app", "version": 2, "requested_by": "jane"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum OperatorCommand {
    /// Every recorded version of the key's desired state.
    History { key: String },
    /// Records version `version` again as the latest and restores the key to it.
    Rollback {
        key: String,
        version: u32,
        /// Who asked, for the record and the message (the invocation carries no identity).
        #[serde(default)]
        requested_by: Option<String>,
    },
}

impl OperatorCommand {
    pub fn key(&self) -> &str {
        match self {
            OperatorCommand::History { key } | OperatorCommand::Rollback { key, .. } => key,
        }
    }
}

impl Trigger {
    /// A short name for logs and skip reasons.
    pub fn describe(&self) -> String {
        match self {
            Trigger::CloudTrail(event) => format!("CloudTrail {} event", event.detail.event_name),
            Trigger::Scheduled { .. } => "scheduled sweep".to_string(),
            Trigger::Alarm(alarm) => format!("alarm state change ({:?})", alarm.delivery),
            Trigger::Command(command) => format!("operator command {command:?}"),
            Trigger::SweepWork(batch) => format!("{} sweep work item(s) from SQS", batch.len()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct CloudTrailEvent {
    /// The EventBridge envelope id.
    pub envelope_id: Option<String>,
    pub detail: CloudTrailDetail,
}

/// A CloudTrail record. Every field a real record may omit is optional: AwsServiceEvent
/// records (KMS `RotateKey`, `DeleteExpiredKeyMaterial`) have no `userIdentity.type`,
/// `requestID` or `requestParameters`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloudTrailDetail {
    #[serde(default)]
    pub event_version: Option<String>,
    #[serde(default)]
    pub user_identity: UserIdentity,
    #[serde(default)]
    pub event_time: Option<String>,
    pub event_source: String,
    pub event_name: String,
    #[serde(default)]
    pub aws_region: Option<String>,
    #[serde(default, rename = "sourceIPAddress")]
    pub source_ip_address: Option<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub error_message: Option<String>,
    #[serde(default)]
    pub request_parameters: Option<Value>,
    #[serde(default)]
    pub response_elements: Option<Value>,
    #[serde(default, rename = "requestID")]
    pub request_id: Option<String>,
    #[serde(default, rename = "eventID")]
    pub event_id: Option<String>,
    #[serde(default)]
    pub read_only: Option<bool>,
    #[serde(default)]
    pub resources: Vec<TrailResource>,
    #[serde(default)]
    pub event_type: Option<String>,
    #[serde(default)]
    pub recipient_account_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    #[serde(default, rename = "type")]
    pub identity_type: Option<String>,
    #[serde(default)]
    pub principal_id: Option<String>,
    #[serde(default)]
    pub arn: Option<String>,
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub invoked_by: Option<String>,
    #[serde(default)]
    pub session_context: Option<SessionContext>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionContext {
    #[serde(default)]
    pub session_issuer: Option<SessionIssuer>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionIssuer {
    #[serde(default, rename = "type")]
    pub issuer_type: Option<String>,
    #[serde(default)]
    pub arn: Option<String>,
    #[serde(default)]
    pub user_name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TrailResource {
    #[serde(default, rename = "ARN")]
    pub arn: Option<String>,
    #[serde(default, rename = "type")]
    pub resource_type: Option<String>,
}

fn invalid(msg: impl Into<String>) -> GuardrailError {
    GuardrailError::InvalidEvent(msg.into())
}

/// Parses what Lambda handed the function. Errors name what is wrong with the event.
pub fn parse_trigger(payload: &Value) -> Result<Trigger, GuardrailError> {
    if !payload.is_object() {
        return Err(invalid(format!(
            "expected an EventBridge event (a JSON object), got {}",
            short_json(payload)
        )));
    }
    if let Some(batch) = parse_sqs_batch(payload) {
        return Ok(Trigger::SweepWork(batch));
    }
    if let Some(alarm) = parse_alarm_payload(payload) {
        return alarm.map(|a| Trigger::Alarm(Box::new(a)));
    }
    if payload.get("command").is_some() {
        return serde_json::from_value(payload.clone())
            .map(Trigger::Command)
            .map_err(|e| {
                invalid(format!(
                    "not an operator command ({}); send {{\"command\": \"history\", \"key\": KEY}} or {{\"command\": \"rollback\", \"key\": KEY, \"version\": N}}",
                    crate::base::text::one_line(&e.to_string(), 200)
                ))
            });
    }
    let envelope: EventBridgeEvent<Value> =
        serde_json::from_value(payload.clone()).map_err(|e| {
            invalid(format!(
                "not an EventBridge event, SNS notification or alarm action: {}",
                crate::base::text::one_line(&e.to_string(), 200)
            ))
        })?;
    match envelope.detail_type.as_str() {
        API_CALL_DETAIL_TYPE | SERVICE_EVENT_DETAIL_TYPE => {
            let detail: CloudTrailDetail = serde_json::from_value(envelope.detail)
                .map_err(|e| {
                    invalid(format!(
                        "the CloudTrail record in detail is malformed: {}",
                        crate::base::text::one_line(&e.to_string(), 200)
                    ))
                })?;
            Ok(Trigger::CloudTrail(Box::new(CloudTrailEvent {
                envelope_id: envelope.id,
                detail,
            })))
        }
        SCHEDULED_DETAIL_TYPE if envelope.source == "aws.events" || envelope.source == "aws.scheduler" => {
            Ok(Trigger::Scheduled {
                id: envelope.id,
                time: envelope.time.map(|t| t.to_rfc3339()),
            })
        }
        other => Err(invalid(format!(
            "unsupported detail-type {} from source {}; expected {API_CALL_DETAIL_TYPE:?}, {SCHEDULED_DETAIL_TYPE:?} or a CloudWatch alarm",
            crate::base::text::quoted(other, 80),
            crate::base::text::quoted(&envelope.source, 80)
        ))),
    }
}

fn short_json(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 80 {
        format!(
            "{}...",
            &text[..text.char_indices().nth(77).map_or(text.len(), |(i, _)| i)]
        )
    } else {
        text
    }
}

impl CloudTrailDetail {
    /// The id that ties logs and notifications to the CloudTrail record.
    pub fn event_id(&self) -> &str {
        self.event_id.as_deref().unwrap_or("unknown")
    }

    /// Who made the call, for people: the identity ARN, else the service that acted.
    pub fn actor(&self) -> String {
        let id = &self.user_identity;
        id.arn
            .clone()
            .or_else(|| id.invoked_by.clone())
            .or_else(|| id.principal_id.clone())
            .unwrap_or_else(|| "unknown (no userIdentity in the record)".to_string())
    }

    /// The IAM role behind an assumed-role session, if any.
    pub fn session_issuer_arn(&self) -> Option<&str> {
        self.user_identity
            .session_context
            .as_ref()
            .and_then(|c| c.session_issuer.as_ref())
            .and_then(|i| i.arn.as_deref())
    }

    /// Where the key this record is about lives and how to name it to DescribeKey.
    /// Tries the record's resources, the created key's metadata, then the request's keyId.
    pub fn key_locator(&self, default_region: &Region) -> Result<KeyLocator, GuardrailError> {
        let region = match self.aws_region.as_deref() {
            Some(named) => Region::parse(named).map_err(|e| {
                invalid(format!(
                    "{} event {}: awsRegion: {e}",
                    self.event_name,
                    self.event_id()
                ))
            })?,
            None => default_region.clone(),
        };
        let from_resources = self.resources.iter().find_map(|r| {
            let arn = r.arn.as_deref()?;
            (r.resource_type
                .as_deref()
                .is_none_or(|t| t == "AWS::KMS::Key")
                && arn.contains(":key/"))
            .then_some(arn)
        });
        // CreateKey returns keyMetadata; alias calls record the key ARN in keyId (since 2022).
        let from_response = self.response_elements.as_ref().and_then(|r| {
            r.pointer("/keyMetadata/arn")
                .or_else(|| r.get("keyId"))
                .and_then(Value::as_str)
        });
        let from_request = self
            .request_parameters
            .as_ref()
            .and_then(|r| r.get("keyId"))
            .and_then(Value::as_str);
        let reference = from_resources.or(from_response).or(from_request).ok_or_else(|| {
            invalid(format!(
                "{} event {} names no key: no KMS key in resources, responseElements.keyMetadata or keyId, or requestParameters.keyId",
                self.event_name,
                self.event_id()
            ))
        })?;
        KeyLocator::parse(reference, &region).map_err(|e| {
            invalid(format!(
                "{} event {}: {e}",
                self.event_name,
                self.event_id()
            ))
        })
    }
}

/// A key reference resolved to a Region and an identifier DescribeKey accepts there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLocator {
    pub region: Region,
    /// A key ARN, key id, alias name or alias ARN.
    pub identifier: String,
}

fn is_key_id(s: &str) -> bool {
    let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some(mrk) = s.strip_prefix("mrk-") {
        // AWS: 32 hex digits. The local emulator spells them as a UUID; accepting that form
        // too costs nothing, since DescribeKey decides whether the key exists.
        return (mrk.len() == 32 && hex(mrk)) || is_uuid(mrk);
    }
    is_uuid(s)
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_alias_name(s: &str) -> bool {
    s.strip_prefix("alias/").is_some_and(|n| {
        !n.is_empty()
            && n.len() <= 250
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-'))
    })
}

impl KeyLocator {
    /// The account an ARN identifier names; `None` for key ids and alias names, which name a
    /// key of the account the call was made in.
    pub fn account(&self) -> Option<&str> {
        let rest = self.identifier.strip_prefix("arn:")?;
        let account = rest.split(':').nth(3)?;
        (!account.is_empty()).then_some(account)
    }

    /// Accepts a bare key id, an `mrk-` id, an alias name, an alias ARN or a key ARN. An ARN's
    /// own Region wins over `default_region`: the call must go where the key lives.
    pub fn parse(reference: &str, default_region: &Region) -> Result<KeyLocator, String> {
        let reference = reference.trim();
        if let Some(rest) = reference.strip_prefix("arn:") {
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            let well_formed = parts.len() == 5
                && !parts[0].is_empty()
                && parts[1] == "kms"
                && parts[3].len() == 12
                && match parts[4].split_once('/') {
                    Some(("key", id)) => is_key_id(id),
                    Some(("alias", _)) => is_alias_name(parts[4]),
                    _ => false,
                };
            let region = parts.get(2).and_then(|r| Region::parse(r).ok());
            let (Some(region), true) = (region, well_formed) else {
                return Err(format!(
                    "{} is not a KMS key or alias ARN",
                    crate::base::text::quoted(reference, 120)
                ));
            };
            return Ok(KeyLocator {
                region,
                identifier: reference.to_string(),
            });
        }
        if is_key_id(reference) || is_alias_name(reference) {
            return Ok(KeyLocator {
                region: default_region.clone(),
                identifier: reference.to_string(),
            });
        }
        Err(format!(
            "{} is not a key ARN, key id, mrk- id, alias name or alias ARN",
            crate::base::text::quoted(reference, 120)
        ))
    }
}

#[cfg(test)]
mod tests;

//! What people are told: notifications published to SNS, and metrics in CloudWatch.

pub mod metrics;
pub mod outcome;

use std::collections::BTreeMap;

use aws_sdk_sns::types::MessageAttributeValue;

use crate::aws::kms::KeyInfo;
use crate::aws::AwsClients;
use crate::base::arn::Arn;
use crate::base::error::{AwsErrorKind, AwsService, Disposition, GuardrailError};
use crate::base::outbox::Kept;
use crate::base::text;
use crate::config::{CommonConfig, Mode};
use crate::notify::outcome::{Delivery, KeyOutcome, Severity, Status};
use crate::triggers::events::CloudTrailDetail;

/// SNS limits: subjects are ASCII, one line, at most 100 characters; messages at most 256 KiB.
pub const MAX_SUBJECT_CHARS: usize = 100;
const MAX_MESSAGE_BYTES: usize = 240 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub subject: String,
    pub body: String,
    /// SNS message attributes, so subscribers can filter (severity, key id, ...).
    pub attributes: BTreeMap<String, String>,
    /// `body` is a `MessageStructure=json` document: one variant per protocol.
    pub structured: bool,
}

impl Notification {
    pub fn new(subject: &str, body: String) -> Notification {
        Notification {
            subject: subject_line(subject),
            body: truncate_message(body),
            attributes: BTreeMap::new(),
            structured: false,
        }
    }

    /// A notification whose `message` is SNS's `MessageStructure=json` document (`default`,
    /// `email`, `sms`, `https`, ...), each protocol getting its own variant. The caller keeps
    /// it under SNS's size limit (it is not cut, which would break the JSON).
    pub fn structured(subject: &str, message: String) -> Notification {
        Notification {
            subject: subject_line(subject),
            body: message,
            attributes: BTreeMap::new(),
            structured: true,
        }
    }

    pub fn attribute(mut self, name: &str, value: impl Into<String>) -> Notification {
        let value = value.into();
        if !value.is_empty() {
            self.attributes.insert(name.to_string(), value);
        }
        self
    }

    /// Publishes to `topic_arn` (in the topic's own Region) and returns the SNS message id.
    pub async fn publish(
        &self,
        clients: &AwsClients,
        topic_arn: &Arn,
    ) -> Result<String, GuardrailError> {
        let mut request = clients
            .sns(topic_arn.region())
            .publish()
            .topic_arn(topic_arn.as_str())
            .subject(&self.subject)
            .message(&self.body)
            .set_message_structure(self.structured.then(|| "json".to_string()));
        for (name, value) in &self.attributes {
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| {
                    GuardrailError::InvalidEvent(format!("message attribute {name}: {e}"))
                })?;
            request = request.message_attributes(name, attribute);
        }
        let out = request
            .send()
            .await
            .map_err(|e| GuardrailError::aws("Publish", topic_arn.as_str(), e))?;
        Ok(out.message_id().unwrap_or_default().to_string())
    }
}

/// A subject SNS accepts: printable ASCII on one line, at most 100 characters.
pub fn subject_line(text: &str) -> String {
    let mut cleaned = String::with_capacity(text.len());
    for c in text.chars() {
        let c = match c {
            c if c.is_ascii_graphic() => c,
            c if c.is_whitespace() || c.is_control() => ' ',
            // Typographic dashes and quotes have ASCII twins; anything else is replaced.
            '\u{2013}' | '\u{2014}' => '-',
            '\u{2018}' | '\u{2019}' => '\'',
            '\u{201c}' | '\u{201d}' => '"',
            _ => '?',
        };
        if !(c == ' ' && (cleaned.is_empty() || cleaned.ends_with(' '))) {
            cleaned.push(c);
        }
    }
    let cleaned = cleaned.trim_end().to_string();
    if cleaned.is_empty() {
        return "kms-guardrails notification".to_string();
    }
    if cleaned.len() <= MAX_SUBJECT_CHARS {
        cleaned
    } else {
        format!("{}...", cleaned[..MAX_SUBJECT_CHARS - 3].trim_end())
    }
}

fn truncate_message(body: String) -> String {
    if body.len() <= MAX_MESSAGE_BYTES {
        return body;
    }
    let mut end = MAX_MESSAGE_BYTES;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}\n\n[message truncated at {} KiB: see the function's logs for the rest]",
        &body[..end],
        MAX_MESSAGE_BYTES / 1024
    )
}

/// Who is speaking in a message: the function, its mode and the environment label.
#[derive(Debug, Clone, Copy)]
pub struct Speaker<'a> {
    pub function: &'static str,
    pub mode: Mode,
    pub environment: Option<&'a str>,
}

impl<'a> Speaker<'a> {
    pub fn new(function: &'static str, common: &'a CommonConfig) -> Speaker<'a> {
        Speaker {
            function,
            mode: common.mode,
            environment: common.environment.as_deref(),
        }
    }

    /// `[prod] ` before a subject, or nothing without an environment label.
    pub fn subject_label(&self) -> String {
        match self.environment {
            Some(env) if !env.is_empty() => format!("[{env}] "),
            _ => String::new(),
        }
    }
}

/// What led to a message: a CloudTrail record, or a sweep that found the state.
#[derive(Debug, Clone, Copy)]
pub enum Cause<'a> {
    Event(&'a CloudTrailDetail),
    /// `id`: the scheduled event's id, the same on Lambda's retries of it.
    Sweep {
        id: &'a str,
        time: Option<&'a str>,
    },
    /// An operator's command (a rollback); `id` names this invocation.
    Command {
        id: &'a str,
        name: &'a str,
        requested_by: &'a str,
    },
}

impl Cause<'_> {
    /// The invocation's run: the CloudTrail event id or the sweep's id, the same on retries.
    pub fn run(&self) -> &str {
        match self {
            Cause::Event(detail) => detail.event_id(),
            Cause::Sweep { id, .. } | Cause::Command { id, .. } => id,
        }
    }

    pub fn event_name(&self) -> &str {
        match self {
            Cause::Event(detail) => &detail.event_name,
            Cause::Sweep { .. } => "ScheduledSweep",
            Cause::Command { name, .. } => name,
        }
    }
}

/// A message about one key: everything the common frame needs, plus the function's words.
pub struct KeyMessage<'a> {
    pub key: &'a KeyInfo,
    pub cause: Cause<'a>,
    pub outcome: &'a KeyOutcome,
    pub failure: Option<&'a GuardrailError>,
    /// The subject before the key's name, e.g. "KMS key policy drift corrected".
    pub headline: &'a str,
    pub severity: Severity,
    /// A closing paragraph of advice (how to undo, how to fix).
    pub guidance: Option<String>,
}

/// What a failure only a person can fix means for the key, and what to do, by the call that
/// failed and how: a refused write leaves the key out of its desired state, a refused read
/// leaves it unknown, and each kind of refusal has its own places to look.
pub fn after_failure(e: &GuardrailError) -> String {
    let operation = e.operation().unwrap_or("the call");
    let service = e.operation().map(AwsService::of);
    let state = match service {
        Some(AwsService::Kms) if AwsService::writes_key(operation) => {
            format!("The key is still out of its desired state: {operation} was not done.")
        }
        Some(AwsService::Kms) => format!(
            "The key was not fully audited ({operation} failed): whether it drifted is unknown."
        ),
        Some(AwsService::DynamoDb) => format!(
            "Nothing was written to the key: each correction is recorded in the state table (STATE_TABLE) before it is made, and {operation} failed. The key is still out of its desired state."
        ),
        _ => format!("{operation} failed, so this key was not fully handled."),
    };
    let fix = match (e.aws_kind(), service) {
        (Some(AwsErrorKind::NotFound), Some(AwsService::DynamoDb)) => {
            "The table STATE_TABLE names does not exist in its Region: create it (template.yaml does, keys pk and sk) or correct STATE_TABLE.".to_string()
        }
        (Some(AwsErrorKind::AccessDenied), Some(AwsService::DynamoDb)) => format!(
            "Check that the function's role may call dynamodb:{operation} on the state table (template.yaml grants PutItem, DeleteItem and Query), and that no SCP or permissions boundary denies it."
        ),
        (Some(AwsErrorKind::AccessDenied), Some(AwsService::Kms)) => format!(
            "Check that the function's role may call kms:{operation} on this key: the key policy, the role's IAM policy, a permissions boundary, an SCP or a VPC endpoint policy can each deny it."
        ),
        (Some(AwsErrorKind::AccessDenied), Some(AwsService::Iam)) => format!(
            "Check that the function's role may call iam:{operation} on the admin role: its IAM policy, a permissions boundary or an SCP. The key policy has no say over IAM calls."
        ),
        (Some(AwsErrorKind::AccessDenied), _) => format!(
            "Check that the function's role may call {operation}: its IAM policy, a permissions boundary or an SCP."
        ),
        (Some(AwsErrorKind::NotFound), _) => {
            "What the call named no longer exists; if it was deleted on purpose there is nothing left to do.".to_string()
        }
        (Some(AwsErrorKind::InvalidState), _) => format!(
            "KMS refused {operation} in the key's current state; once the key is enabled (or its deletion cancelled) the next event or sweep tries again."
        ),
        (Some(AwsErrorKind::Validation), _) => {
            "AWS refused the request itself (the error says which part): the configuration or the function needs a fix.".to_string()
        }
        _ => "Retrying will not help until someone acts.".to_string(),
    };
    format!("{state} {fix}")
}

/// `[env] Headline: name (region)` within SNS's subject limit: a long name (a key id, a long
/// alias) is shortened, never the Region, which a person needs to find the key.
pub fn key_subject(label: &str, headline: &str, name: &str, region: &str) -> String {
    let head = subject_line(&format!("{label}{headline}:"));
    let tail = format!(" ({region})");
    let room = MAX_SUBJECT_CHARS.saturating_sub(head.len() + 1 + tail.len());
    let name = subject_line(name);
    let name = if name.len() <= room {
        name
    } else {
        format!("{}...", &name[..room.saturating_sub(3)])
    };
    subject_line(&format!("{head} {name}{tail}"))
}

impl KeyMessage<'_> {
    pub fn render(&self, speaker: &Speaker<'_>) -> Notification {
        let outcome = self.outcome;
        let name = outcome.alias.as_deref().unwrap_or(&self.key.key_id);
        let label = speaker.subject_label();
        let subject = key_subject(&label, self.headline, name, &self.key.region);

        let mut body = format!(
            "kms-guardrails {}, mode {}\n\n{}\n{}",
            speaker.function,
            speaker.mode,
            key_block(self.key, outcome.alias.as_deref()),
            change_block(self.cause)
        );
        if !outcome.findings.is_empty() {
            body.push_str("\nFindings:\n");
            for finding in &outcome.findings {
                body.push_str(&format!("- {}\n", finding.summary));
                if let Some(diff) = &finding.diff {
                    body.push_str("  Statement diff (- desired only, + actual only):\n");
                    for line in diff.lines() {
                        body.push_str(&format!("  {}\n", text::one_line(line, 2000)));
                    }
                }
            }
        }
        if !outcome.actions.is_empty() {
            let heading = if outcome.actions.iter().any(|a| a.done) {
                "\nActions taken:\n"
            } else if speaker.mode == Mode::Report {
                "\nReport mode: nothing was changed. Enforce mode would:\n"
            } else {
                "\nNot done:\n"
            };
            body.push_str(heading);
            for action in &outcome.actions {
                body.push_str(&format!("- {}: {}\n", action.operation, action.detail));
            }
        }
        if let Some(e) = self.failure {
            let next = match e.disposition() {
                Disposition::Retry => "The invocation fails so that Lambda retries it; the retry completes what is left.".to_string(),
                Disposition::Report => after_failure(e),
            };
            body.push_str(&format!("\nFAILED ({}): {e}\n{next}\n", e.error_type()));
        }
        if let Some(guidance) = &self.guidance {
            body.push('\n');
            body.push_str(guidance);
            if !guidance.ends_with('\n') {
                body.push('\n');
            }
        }
        Notification::new(&subject, body)
            .attribute("function", speaker.function)
            .attribute("severity", self.severity.to_string())
            .attribute("status", status_name(outcome.status))
            .attribute("mode", speaker.mode.to_string())
            .attribute("key_id", self.key.key_id.clone())
            .attribute("region", self.key.region.to_string())
            .attribute("event_name", text::one_line(self.cause.event_name(), 64))
            .attribute("environment", speaker.environment.unwrap_or_default())
    }
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Compliant => "compliant",
        Status::Corrected => "corrected",
        Status::Reported => "reported",
        Status::Skipped => "skipped",
        Status::Blocked => "blocked",
        Status::Failed => "failed",
    }
}

/// The "which key" block of a message body. Every value from AWS is one bounded line.
pub fn key_block(key: &KeyInfo, alias: Option<&str>) -> String {
    let mut out = format!(
        "Key:         {}\nKey id:      {}\nAlias:       {}\nRegion:      {}\nAccount:     {}\n",
        text::value(key.arn.as_str()),
        text::value(&key.key_id),
        alias.map_or_else(|| "(none)".to_string(), text::value),
        text::value(&key.region),
        text::value(&key.account)
    );
    if !key.description.is_empty() {
        out.push_str(&format!("Description: {}\n", text::value(&key.description)));
    }
    out
}

/// The "who changed it" block: identity, source IP, time and event id of the CloudTrail record,
/// or a note that a scheduled sweep found the change.
pub fn change_block(cause: Cause<'_>) -> String {
    match cause {
        Cause::Event(d) => format!(
            "Changed by:  {}\nSource IP:   {}\nTime:        {}\nEvent:       {} (event id {})\n",
            text::value(&d.actor()),
            text::value(d.source_ip_address.as_deref().unwrap_or("unknown")),
            text::value(d.event_time.as_deref().unwrap_or("unknown")),
            text::value(&d.event_name),
            text::value(d.event_id())
        ),
        Cause::Sweep { time, .. } => format!(
            "Found by:    scheduled sweep at {}\n             (no CloudTrail event was processed for this change: it may have been\n             missed or delivered late; look it up in CloudTrail for who made it)\n",
            text::value(time.unwrap_or("unknown time"))
        ),
        Cause::Command {
            id,
            name,
            requested_by,
        } => format!(
            "Requested:   operator command {} by {} (id {})\n",
            text::value(name),
            text::value(requested_by),
            text::value(id)
        ),
    }
}

/// Publishes `notification`; when SNS cannot take it, logs it whole and puts it on the
/// fallback queue, so a finding is never lost. Errs (retryably, when SNS's failure was
/// transient) only when neither took it; the log line still has it.
pub async fn deliver(
    clients: &AwsClients,
    common: &CommonConfig,
    notification: &Notification,
) -> Result<Delivery, GuardrailError> {
    if let Some(outbox) = clients.outbox() {
        let place = outbox.keep(Kept {
            subject: notification.subject.clone(),
            body: notification.body.clone(),
            attributes: notification.attributes.clone(),
        });
        return Ok(Delivery::Outbox { place });
    }
    let sns_error = match notification
        .publish(clients, &common.notify_topic_arn)
        .await
    {
        Ok(message_id) => return Ok(Delivery::Sns { message_id }),
        Err(e) => e,
    };
    tracing::error!(
        error_type = sns_error.error_type(),
        error = %sns_error,
        subject = %notification.subject,
        message = %notification.body,
        attributes = ?notification.attributes,
        "notification not delivered by SNS"
    );
    let Some(queue_url) = &common.fallback_queue_url else {
        return Err(sns_error);
    };
    let region = queue_region(queue_url).unwrap_or(&common.region);
    let payload = serde_json::json!({
        "kind": "kms-guardrails undelivered notification",
        "topic": common.notify_topic_arn.as_str(),
        "sns_error": sns_error.to_string(),
        "subject": notification.subject,
        "message": notification.body,
        "attributes": notification.attributes,
    });
    match clients
        .sqs(region)
        .send_message()
        .queue_url(queue_url)
        .message_body(payload.to_string())
        .send()
        .await
    {
        Ok(out) => {
            tracing::warn!(queue = %queue_url, "notification kept in the fallback queue");
            Ok(Delivery::FallbackQueue {
                message_id: out.message_id().unwrap_or_default().to_string(),
            })
        }
        Err(e) => {
            let e = GuardrailError::aws("SendMessage", queue_url, e);
            tracing::error!(error = %e, "fallback queue refused the notification too; it is only in this log");
            Err(sns_error)
        }
    }
}

/// The Region of an SQS queue URL (`https://sqs.eu-west-1.amazonaws.com/...`).
fn queue_region(url: &str) -> Option<&str> {
    let host = url.split("://").nth(1)?.split('/').next()?;
    let mut parts = host.split('.');
    (parts.next()? == "sqs").then_some(())?;
    parts.next().filter(|r| crate::base::region::is_region(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_subject_keeps_its_region_whatever_the_name() {
        let id = "mrk-1234abcd12ab34cd56ef1234567890ab";
        let headline = "Removal of root access from KMS key NOT done";
        let subject = key_subject("[production-eu] ", headline, id, "ap-southeast-2");
        assert!(subject.len() <= 100, "{subject}");
        assert!(subject.ends_with(" (ap-southeast-2)"), "{subject}");
        assert!(
            subject.starts_with(
                "[production-eu] Removal of root access from KMS key NOT done: mrk-1234"
            ),
            "{subject}"
        );
        let short = key_subject("", "KMS key drift corrected", "alias/app-data", "eu-west-1");
        assert_eq!(short, "KMS key drift corrected: alias/app-data (eu-west-1)");
    }

    fn failed(operation: &'static str, kind: AwsErrorKind) -> GuardrailError {
        GuardrailError::Aws {
            operation,
            key: "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                .into(),
            kind,
            code: "SomeCode".into(),
            message: "refused".into(),
        }
    }

    #[test]
    fn advice_after_a_failure_names_what_is_known_and_where_to_look() {
        use AwsErrorKind::*;
        #[rustfmt::skip]
        let table: &[(&'static str, AwsErrorKind, &str, &str)] = &[
            ("PutKeyPolicy", AccessDenied, "still out of its desired state: PutKeyPolicy was not done", "kms:PutKeyPolicy on this key: the key policy"),
            ("GetKeyPolicy", AccessDenied, "not fully audited (GetKeyPolicy failed): whether it drifted is unknown", "kms:GetKeyPolicy on this key"),
            ("GetRole", AccessDenied, "GetRole failed, so this key was not fully handled", "iam:GetRole on the admin role: its IAM policy, a permissions boundary or an SCP. The key policy has no say"),
            ("EnableKeyRotation", InvalidState, "still out of its desired state", "once the key is enabled"),
            ("DescribeKey", NotFound, "not fully audited", "no longer exists"),
            ("CreateGrant", Validation, "still out of its desired state: CreateGrant was not done", "refused the request itself"),
            ("Publish", AccessDenied, "Publish failed", "may call Publish: its IAM policy"),
            ("PutItem", NotFound, "Nothing was written to the key", "The table STATE_TABLE names does not exist"),
            ("PutItem", AccessDenied, "recorded in the state table (STATE_TABLE) before it is made", "dynamodb:PutItem on the state table"),
        ];
        for (operation, kind, state, fix) in table {
            let advice = after_failure(&failed(operation, *kind));
            assert!(advice.contains(state), "{operation}: {advice}");
            assert!(advice.contains(fix), "{operation}: {advice}");
        }
        // Never the key policy for a call the key policy does not govern.
        assert!(!after_failure(&failed("GetRole", AccessDenied))
            .contains("check that the function's role may call kms"));
    }

    #[test]
    fn subjects_are_one_ascii_line_of_at_most_100_chars() {
        assert_eq!(
            subject_line("Drift on\nalias/app \u{2014} key\t\u{00e9}"),
            "Drift on alias/app - key ?"
        );
        let long = subject_line(&"x".repeat(300));
        assert_eq!(long.len(), 100);
        assert!(long.ends_with("..."));
        assert_eq!(subject_line(" \n "), "kms-guardrails notification");
        for s in [subject_line("Ключ изменён"), subject_line("키 정책 변경")] {
            assert!(s.is_ascii() && !s.contains('\n') && s.len() <= 100, "{s}");
        }
    }

    #[test]
    fn the_queue_region_comes_from_the_url() {
        assert_eq!(
            queue_region("https://sqs.eu-west-1.amazonaws.com/111122223333/dlq"),
            Some("eu-west-1")
        );
        assert_eq!(queue_region("http://127.0.0.1:5000/111122223333/dlq"), None);
    }

    #[test]
    fn oversized_messages_are_truncated_under_the_sns_limit() {
        let n = Notification::new("s", "é".repeat(200_000));
        assert!(n.body.len() < 256 * 1024);
        assert!(n.body.ends_with("see the function's logs for the rest]"));
    }
}

//! `audit`: each guardrail's scheduled sweep, run here in report mode against the caller's
//! account and Regions. What it would announce is kept, not published; the HTTP client refuses
//! any write (see `read_only`), the function is never told of a queue or member role, and the
//! state table is only read (per-key desired state), so it has nothing to write to.

use std::collections::BTreeMap;

use lambda_runtime::{Context, LambdaEvent};
use serde::Serialize;
use serde_json::{json, Value};
use shared::aws::AwsClients;
use shared::base::outbox::{Kept, Outbox};
use shared::config::FunctionConfig;
use shared::notify::metrics::Measures;
use shared::notify::outcome::Outcome;
use shared::pipeline::{Guardrail, Response};
use shared::GuardrailError;

use crate::session::Session;

/// The guardrails an audit runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Function {
    PolicyDrift,
    RootAccessRevoker,
    AlarmNotifier,
    ReplicaGrantValidator,
}

impl Function {
    pub const ALL: [Function; 4] = [
        Function::PolicyDrift,
        Function::RootAccessRevoker,
        Function::AlarmNotifier,
        Function::ReplicaGrantValidator,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Function::PolicyDrift => policy_drift::PolicyDrift::NAME,
            Function::RootAccessRevoker => root_access_revoker::NAME,
            Function::AlarmNotifier => alarm_notifier::AlarmNotifier::NAME,
            Function::ReplicaGrantValidator => replica_grant_validator::FUNCTION,
        }
    }
}

/// Settings a deployed function has and an audit must not: where it would write. The state
/// table stays: with `DESIRED_STATE=per-key` each key is compared with its own record, read
/// through clients that record nothing there (`AwsClients::with_state_read_only`).
const WRITE_TARGETS: &[&str] = &[
    "DEDUP_TABLE",
    "FALLBACK_QUEUE_URL",
    "SWEEP_QUEUE_URL",
    "MEMBER_ROLE_NAME",
    "MEMBER_EXTERNAL_ID",
    "SWEEP_ACCOUNTS",
];

/// A function's setting in an audit of `region`: report mode, the caller's account and
/// identity, one Region; the desired state (baseline, admin roles, rotation, ...) from the
/// same variables the deployed functions read; nothing it could write to.
pub fn setting(
    session: &Session,
    region: &str,
    name: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    match name {
        "MODE" => Some("report".into()),
        "ACCOUNT_ID" => Some(session.account.clone()),
        "AWS_REGION" | "SWEEP_REGIONS" => Some(region.to_string()),
        // Never published: the outbox keeps the messages.
        "NOTIFY_TOPIC_ARN" => Some(format!(
            "arn:{}:sns:{region}:{}:kms-guardrails-audit",
            session.partition, session.account
        )),
        // The deployed function's role when given (its baseline names it), else the caller.
        "SELF_ROLE_ARN" => env(name).or_else(|| Some(session.principal.clone())),
        name if WRITE_TARGETS.contains(&name) => None,
        name => env(name),
    }
}

/// One message the guardrail would have sent.
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    pub function: &'static str,
    pub region: String,
    pub severity: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    pub subject: String,
    pub message: String,
}

impl Found {
    fn of(function: Function, region: &str, kept: Kept) -> Found {
        let attribute = |name: &str| kept.attributes.get(name).cloned();
        Found {
            function: function.name(),
            region: attribute("region").unwrap_or_else(|| region.to_string()),
            severity: attribute("severity").unwrap_or_else(|| "info".into()),
            status: attribute("status").unwrap_or_default(),
            key_id: attribute("key_id"),
            subject: kept.subject,
            message: kept.body,
        }
    }

    /// Whether it asks for action: anything above information.
    pub fn is_finding(&self) -> bool {
        self.severity != "info"
    }
}

/// One guardrail in one Region.
#[derive(Debug, Serialize)]
pub struct Part {
    pub function: &'static str,
    pub region: String,
    #[serde(flatten)]
    pub result: PartResult,
}

#[derive(Debug, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum PartResult {
    Audited {
        counts: BTreeMap<&'static str, u64>,
    },
    /// The guardrail is off by its settings (root-access-revoker with ROOT_ACCESS on).
    Skipped {
        reason: String,
    },
    /// Its settings are missing or wrong: set them as for the deployed function.
    NotConfigured {
        problems: String,
    },
    Failed {
        error: String,
    },
}

#[derive(Debug, Serialize)]
pub struct AuditReport {
    pub account: String,
    pub caller: String,
    pub regions: Vec<String>,
    pub parts: Vec<Part>,
    pub found: Vec<Found>,
}

/// How an audit ends, for scripts and CI jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Everything audited, nothing found.
    Clean,
    /// Something found.
    Found,
    /// A guardrail could not finish its audit, or none could start.
    Incomplete,
}

impl PartResult {
    /// Managed keys this audit did not finish: a failure a retry can fix (throttling, a
    /// timeout). Nothing can be said of them, so the audit is not clean.
    pub fn keys_not_finished(&self) -> u64 {
        match self {
            PartResult::Audited { counts } => counts.get("KeysNotFinished").copied().unwrap_or(0),
            _ => 0,
        }
    }
}

impl AuditReport {
    pub fn keys_not_finished(&self) -> u64 {
        self.parts
            .iter()
            .map(|p| p.result.keys_not_finished())
            .sum()
    }

    pub fn verdict(&self) -> Verdict {
        let failed = self
            .parts
            .iter()
            .any(|p| matches!(p.result, PartResult::Failed { .. }));
        let audited = self
            .parts
            .iter()
            .any(|p| matches!(p.result, PartResult::Audited { .. }));
        if self.found.iter().any(Found::is_finding) {
            Verdict::Found
        } else if failed || !audited || self.keys_not_finished() > 0 {
            Verdict::Incomplete
        } else {
            Verdict::Clean
        }
    }
}

/// Runs `functions` in every Region of `session`, telling `progress` how many parts are done
/// and which one starts.
pub async fn run(
    session: &Session,
    functions: &[Function],
    env: &dyn Fn(&str) -> Option<String>,
    progress: &dyn Fn(usize, &str),
) -> AuditReport {
    let mut report = AuditReport {
        account: session.account.clone(),
        caller: session.principal.clone(),
        regions: session.regions.clone(),
        parts: Vec::new(),
        found: Vec::new(),
    };
    for region in &session.regions {
        for &function in functions {
            progress(
                report.parts.len(),
                &format!("{} in {region}", function.name()),
            );
            let outbox = Outbox::default();
            let lookup = |name: &str| setting(session, region, name, env);
            let result = audit_one(session, function, region, &lookup, &outbox).await;
            report.found.extend(
                outbox
                    .take()
                    .into_iter()
                    .map(|kept| Found::of(function, region, kept)),
            );
            report.parts.push(Part {
                function: function.name(),
                region: region.clone(),
                result,
            });
        }
    }
    report
}

async fn audit_one(
    session: &Session,
    function: Function,
    region: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    outbox: &Outbox,
) -> PartResult {
    let clients = || {
        AwsClients::new(session.sdk.clone())
            .with_outbox(outbox.clone())
            .with_state_read_only()
    };
    let event = || sweep_event(session, region);
    match function {
        Function::PolicyDrift => match policy_drift::Config::from_lookup(lookup) {
            Err(e) => not_configured(e),
            Ok(config) => {
                let deps = policy_drift::Deps {
                    config,
                    clients: clients(),
                    own: (),
                };
                let result = policy_drift::invoke(event(), &deps).await;
                audited(result, policy_drift::PolicyDrift::measure)
            }
        },
        Function::RootAccessRevoker => match root_access_revoker::Config::from_lookup(lookup) {
            Err(e) => not_configured(e),
            Ok(config) => {
                let deps = root_access_revoker::deps::new(config, clients());
                let result = root_access_revoker::function_handler(event(), &deps).await;
                audited(result, root_access_revoker::RootAccessRevoker::measure)
            }
        },
        Function::AlarmNotifier => match alarm_notifier::Config::from_lookup(lookup) {
            Err(e) => not_configured(e),
            Ok(config) => {
                let deps = alarm_notifier::Deps {
                    config,
                    clients: clients(),
                    own: alarm_notifier::Clients::new(),
                };
                let result = alarm_notifier::function_handler(event(), &deps).await;
                audited(result, alarm_notifier::AlarmNotifier::measure)
            }
        },
        Function::ReplicaGrantValidator => {
            match replica_grant_validator::Config::from_lookup(lookup) {
                Err(e) => not_configured(e),
                Ok(config) => {
                    let deps = replica_grant_validator::Deps {
                        config,
                        clients: clients(),
                        own: replica_grant_validator::Clients::new(),
                    };
                    let result = replica_grant_validator::function_handler(event(), &deps).await;
                    audited(
                        result,
                        replica_grant_validator::ReplicaGrantValidator::measure,
                    )
                }
            }
        }
    }
}

fn not_configured(error: shared::config::ConfigError) -> PartResult {
    PartResult::NotConfigured {
        problems: error.to_string(),
    }
}

fn audited<R>(
    result: Result<Response<R>, GuardrailError>,
    measure: fn(&R) -> Measures,
) -> PartResult {
    match result {
        Ok(Response::Outcome(Outcome::Skipped { reason, .. })) => PartResult::Skipped { reason },
        Ok(response) => PartResult::Audited {
            counts: response.measures(measure).counts().into_iter().collect(),
        },
        Err(error) => PartResult::Failed {
            error: error.to_string(),
        },
    }
}

/// The schedule's event, as EventBridge sends it to a deployed function.
fn sweep_event(session: &Session, region: &str) -> LambdaEvent<Value> {
    let event = json!({
        "version": "0",
        "id": "kms-guardrails-audit",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": session.account,
        "time": shared::pipeline::notices::utc(shared::pipeline::journal::now()),
        "region": region,
        "resources": [],
        "detail": {}
    });
    LambdaEvent::new(event, Context::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(result: PartResult) -> Part {
        Part {
            function: "policy-drift",
            region: "eu-west-1".into(),
            result,
        }
    }

    fn audited(keys: u64, not_finished: u64) -> PartResult {
        PartResult::Audited {
            counts: BTreeMap::from([("KeysAudited", keys), ("KeysNotFinished", not_finished)]),
        }
    }

    fn report(parts: Vec<Part>, found: Vec<Found>) -> AuditReport {
        AuditReport {
            account: "111122223333".into(),
            caller: "arn:aws:iam::111122223333:role/auditor".into(),
            regions: vec!["eu-west-1".into()],
            parts,
            found,
        }
    }

    fn found(severity: &str) -> Found {
        Found {
            function: "policy-drift",
            region: "eu-west-1".into(),
            severity: severity.into(),
            status: "reported".into(),
            key_id: Some("1234abcd-12ab-34cd-56ef-1234567890ab".into()),
            subject: "KMS key policy drift found".into(),
            message: "the key policy differs".into(),
        }
    }

    #[test]
    fn an_audit_is_clean_only_when_every_key_was_audited_to_the_end() {
        assert_eq!(
            report(vec![part(audited(3, 0))], vec![]).verdict(),
            Verdict::Clean
        );
        // A throttled key was not audited: nothing can be said of it, so not "nothing found".
        let throttled = report(vec![part(audited(3, 1))], vec![]);
        assert_eq!(throttled.verdict(), Verdict::Incomplete);
        assert_eq!(throttled.keys_not_finished(), 1);
        // What was found still decides the exit status, and information alone is not a finding.
        assert_eq!(
            report(vec![part(audited(3, 1))], vec![found("high")]).verdict(),
            Verdict::Found
        );
        assert_eq!(
            report(vec![part(audited(3, 0))], vec![found("info")]).verdict(),
            Verdict::Clean
        );
    }

    #[test]
    fn an_audit_that_could_not_run_a_guardrail_is_incomplete() {
        let failed = PartResult::Failed {
            error: "GetResources: AccessDenied".into(),
        };
        assert_eq!(
            report(vec![part(audited(3, 0)), part(failed)], vec![]).verdict(),
            Verdict::Incomplete
        );
        let not_configured = PartResult::NotConfigured {
            problems: "REPLICATION_REGIONS is required".into(),
        };
        assert_eq!(
            report(vec![part(not_configured)], vec![]).verdict(),
            Verdict::Incomplete
        );
    }
}

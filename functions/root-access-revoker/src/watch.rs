//! The path back in: the admin roles that keep control of keys without root. When one is
//! deleted, recreated (a different principal), loses its KMS permissions or gets a trust policy
//! nobody can assume, the keys it alone administers are announced at once.

use std::sync::Mutex;

use crate::handler::RevokerReport;
use serde_json::Value;
use shared::aws::kms;
use shared::base::arn::Arn;
use shared::notify::outcome::{KeyOutcome, Outcome, Severity};
use shared::notify::{change_block, deliver, Cause, Notification};
use shared::pipeline::retry_or_report;
use shared::pipeline::sweep::{self, Deadline, Swept};
use shared::pipeline::Response;
use shared::policy::evaluate::{access, Access};
use shared::policy::model::Policy;
use shared::triggers::events::CloudTrailDetail;
use shared::GuardrailError;

use crate::handler::{Deps, GATE, NAME};

/// IAM calls that can take an admin role's control of a key away (or bring a role back as a
/// different principal). IAM delivers them in us-east-1.
pub const ROLE_EVENTS: &[&str] = &[
    "CreateRole",
    "DeleteRole",
    "AttachRolePolicy",
    "DetachRolePolicy",
    "PutRolePolicy",
    "DeleteRolePolicy",
    "PutRolePermissionsBoundary",
    "UpdateAssumeRolePolicy",
];

/// What IAM says of a role now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleFacts {
    pub role_id: String,
    pub assumable: bool,
}

/// The role named by `arn`, or `None` when IAM has no such role.
pub async fn get_role(
    iam: &aws_sdk_iam::Client,
    arn: &str,
) -> Result<Option<RoleFacts>, GuardrailError> {
    let name = Arn::parse(arn)
        .ok()
        .and_then(|a| a.iam_role_name().map(str::to_string))
        .ok_or_else(|| {
            GuardrailError::InvalidEvent(format!(
                "{} is not a role ARN",
                shared::base::text::quoted(arn, 120)
            ))
        })?;
    match iam.get_role().role_name(&name).send().await {
        // GetRole takes a name and answers for the caller's account: a role of another
        // account read without its member role would be this account's namesake.
        Ok(out) if out.role().is_some_and(|role| role.arn() != arn) => {
            Err(GuardrailError::Configuration(shared::base::error::ConfigError {
                problems: vec![format!(
                    "KMS_ADMIN_ROLE_ARNS names {}, a role of another account, and IAM answered for {} instead; roles of other accounts are read through their member role: set MEMBER_ROLE_NAME and deploy spoke.yaml there",
                    shared::base::text::quoted(arn, 120),
                    shared::base::text::quoted(out.role().map(|r| r.arn()).unwrap_or_default(), 120)
                )],
            }))
        }
        Ok(out) => Ok(out.role().map(|role| RoleFacts {
            role_id: role.role_id().to_string(),
            assumable: role
                .assume_role_policy_document()
                .is_some_and(|doc| trust_allows_assume(&shared::base::text::percent_decode(doc))),
        })),
        Err(e) => {
            let e = GuardrailError::aws("GetRole", arn, e);
            if e.is_not_found() {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

/// Whether any principal may assume the role: an Allow of `sts:AssumeRole*` to some principal.
pub fn trust_allows_assume(document: &str) -> bool {
    let Ok(policy) = serde_json::from_str::<Value>(document) else {
        return false;
    };
    let statements = match &policy["Statement"] {
        Value::Array(items) => items.clone(),
        single @ Value::Object(_) => vec![single.clone()],
        _ => return false,
    };
    statements.iter().any(|s| {
        let actions: Vec<&str> = match &s["Action"] {
            Value::String(a) => vec![a.as_str()],
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        s["Effect"] == "Allow"
            && s.get("Principal").is_some_and(|p| !p.is_null())
            && actions
                .iter()
                .any(|a| shared::policy::model::action_matches(a, "sts:AssumeRole"))
    })
}

/// True when nobody but `role` (and this function) administers the key: no root, and every
/// principal the policy lets change it is the role. After a role is deleted KMS shows it by
/// unique id, so a key with no administrator left at all counts too.
pub fn only_administrator(policy: &Policy, role: &str, self_role: &str, account: &str) -> bool {
    let root = format!("arn:aws:iam::{account}:root");
    if matches!(
        access(policy, &root, "kms:PutKeyPolicy"),
        Access::Allowed | Access::ViaIam
    ) {
        return false;
    }
    policy
        .statements
        .iter()
        .filter_map(|s| s.body.principal.as_ref())
        .filter_map(|p| p.get("AWS"))
        .flatten()
        .filter(|p| p.as_str() != role && p.as_str() != self_role && p.as_str() != "*")
        .all(|p| access(policy, p, "kms:PutKeyPolicy") != Access::Allowed)
}

/// What happened to the role, if it now endangers the keys it administers.
async fn danger(
    detail: &CloudTrailDetail,
    deps: &Deps,
    role_arn: &str,
) -> Result<Option<String>, GuardrailError> {
    let facts = get_role(&crate::deps::iam_in(deps, role_account(role_arn)), role_arn).await?;
    Ok(match (detail.event_name.as_str(), facts) {
        ("DeleteRole", None) => Some("was deleted: no one can use it to change these key policies any more".into()),
        ("CreateRole", Some(_)) => Some("was created again under the same name: it is a different principal, and the key policies still name the deleted one (they now show its unique id)".into()),
        ("UpdateAssumeRolePolicy", Some(f)) if !f.assumable => Some("now has a trust policy nobody can assume".into()),
        (_, None) => Some("does not exist".into()),
        ("DeleteRole" | "UpdateAssumeRolePolicy", Some(_)) => None,
        (_, Some(_)) => lost_kms_permissions(deps, role_arn).await?,
    })
}

/// After a change to the role's own policies or boundary: does IAM still let it call
/// `kms:PutKeyPolicy`? The key policy grants it, so only an explicit Deny or a permissions
/// boundary can take it away; IAM's policy simulator says which.
async fn lost_kms_permissions(
    deps: &Deps,
    role_arn: &str,
) -> Result<Option<String>, GuardrailError> {
    let out = crate::deps::iam_in(deps, role_account(role_arn))
        .simulate_principal_policy()
        .policy_source_arn(role_arn)
        .action_names("kms:PutKeyPolicy")
        .action_names("kms:GetKeyPolicy")
        .send()
        .await;
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            let e = retry_or_report(GuardrailError::aws("SimulatePrincipalPolicy", role_arn, e))?;
            return Ok(Some(format!("had its permissions changed, and IAM's policy simulator could not confirm it may still call kms:PutKeyPolicy ({e}); check it by hand")));
        }
    };
    let lost: Vec<String> = out
        .evaluation_results()
        .iter()
        .filter(|r| {
            r.eval_decision().as_str() == "explicitDeny"
                || r.permissions_boundary_decision_detail()
                    .is_some_and(|d| !d.allowed_by_permissions_boundary())
        })
        .map(|r| r.eval_action_name().to_string())
        .collect();
    Ok((!lost.is_empty()).then(|| {
        format!(
            "lost {} through an explicit Deny or its permissions boundary",
            lost.join(" and ")
        )
    }))
}

/// An IAM event about one of the configured admin roles: announce the keys it alone
/// administers when it no longer can. Writes nothing.
pub async fn on_role_event(
    detail: &CloudTrailDetail,
    deps: &Deps,
    deadline: Deadline,
) -> Result<Response<RevokerReport>, GuardrailError> {
    let common = &deps.config.common;
    let skipped = |reason: String| {
        let outcome = Outcome::skipped(detail.event_id(), &detail.event_name, reason);
        Ok(Response::Outcome(outcome))
    };
    if let Err(reason) = GATE.admit(detail, &common.self_role_arn) {
        return skipped(reason);
    }
    let name = detail
        .request_parameters
        .as_ref()
        .and_then(|p| p.get("roleName"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    // The role is the one of the event's own account (a member account's, forwarded to the
    // hub's organization bus, or this one's).
    let account = detail
        .recipient_account_id
        .as_deref()
        .unwrap_or(&common.account_id);
    let Some(role_arn) = deps.config.admin_role_arns.iter().find(|a| {
        Arn::parse(a)
            .ok()
            .is_some_and(|a| a.account() == account && a.iam_role_name() == Some(name))
    }) else {
        return skipped(format!(
            "role {} is not a configured admin role",
            shared::base::text::quoted(name, 80)
        ));
    };
    let Some(danger) = danger(detail, deps, role_arn).await? else {
        return skipped(format!(
            "admin role {role_arn} keeps its access after {}",
            detail.event_name
        ));
    };
    let at_risk = keys_at_risk(deps, role_arn, deadline).await;
    if at_risk.is_empty() {
        return skipped(format!("admin role {role_arn} {danger}, but it is not the only administrator of any managed key without root"));
    }
    let notification = role_message(deps, detail, role_arn, &danger, &at_risk);
    let delivery = deliver(&deps.clients, common, &notification).await?;
    tracing::error!(role = %role_arn, keys = at_risk.len(), "admin role at risk announced");
    Ok(Response::Report(RevokerReport::AdminAtRisk {
        role: role_arn.clone(),
        danger,
        keys: at_risk,
        notification: delivery,
    }))
}

/// The account of a role ARN ("" when it is not one).
fn role_account(role_arn: &str) -> &str {
    role_arn.split(':').nth(4).unwrap_or_default()
}

/// Every managed key the role alone administers, found with the sweep's listing.
async fn keys_at_risk(deps: &Deps, role_arn: &str, deadline: Deadline) -> Vec<String> {
    let found = Mutex::new(Vec::new());
    let (common, self_role) = (
        &deps.config.common,
        deps.config.common.self_role_arn.as_str(),
    );
    // An IAM role administers keys of its own account only.
    let scopes: Vec<sweep::Scope> = sweep::scopes(common)
        .into_iter()
        .filter(|s| s.account == role_account(role_arn))
        .collect();
    sweep::run(
        &deps.clients,
        common,
        deadline,
        "admin-role",
        &scopes,
        |swept| {
            let found = &found;
            async move {
                let key = match swept {
                    Swept::Key(s) => s.key,
                    Swept::ShutOut { key, .. } => key,
                };
                let outcome = KeyOutcome::new(&key);
                let text = kms::key_policy(
                    &deps.clients.kms_in(&key.account, &key.region),
                    key.arn.as_str(),
                )
                .await?;
                if Policy::parse(&text)
                    .is_ok_and(|p| only_administrator(&p, role_arn, self_role, &key.account))
                {
                    found
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(key.arn.to_string());
                }
                Ok(outcome)
            }
        },
    )
    .await;
    let mut keys = found.into_inner().unwrap_or_else(|e| e.into_inner());
    keys.sort();
    keys
}

fn role_message(
    deps: &Deps,
    detail: &CloudTrailDetail,
    role_arn: &str,
    danger: &str,
    keys: &[String],
) -> Notification {
    let common = &deps.config.common;
    let label = shared::notify::Speaker::new(crate::handler::NAME, common).subject_label();
    let role = shared::base::text::value(role_arn);
    let subject = format!(
        "{label}KMS admin role at risk: {} key(s) have no other administrator",
        keys.len()
    );
    let mut body = format!(
        "kms-guardrails {}, mode {}\n\nAdmin role:  {role}\nWhat:        the role {}\n\n{}\nKeys whose policy has no root and no other administrator ({}):\n",
        NAME,
        common.mode,
        shared::base::text::value(danger),
        change_block(Cause::Event(detail)),
        keys.len()
    );
    for key in keys.iter().take(50) {
        body.push_str(&format!("- {}\n", shared::base::text::value(key)));
    }
    if keys.len() > 50 {
        body.push_str(&format!(
            "- ... and {} more (see the function's log)\n",
            keys.len() - 50
        ));
    }
    body.push_str("\nUntil this is fixed, no one can change these key policies: a key no principal can administer needs AWS Support. Fix now: restore the role's access (undo the change above) or, while the function's own role can still change the policies, add another administrator to them.\n");
    Notification::new(&subject, body)
        .attribute("function", NAME)
        .attribute("severity", Severity::Critical.to_string())
        .attribute("status", "reported")
        .attribute("mode", common.mode.to_string())
        .attribute(
            "event_name",
            shared::base::text::one_line(&detail.event_name, 64),
        )
        .attribute(
            "environment",
            common.environment.clone().unwrap_or_default(),
        )
}

#[cfg(test)]
#[path = "tests/watch.rs"]
mod tests;

//! Per-key desired state: what each managed key should be, as the pipeline that deploys it last
//! left it. An approved deployer's change becomes a new version once it passes the [`floor`];
//! anyone else's change is drift from the latest version. Every version is kept, so a key can be
//! rolled back to any of them. Grants live here too: they are not a CloudFormation resource, so
//! their desired state has nowhere else to live.

pub mod floor;
pub mod store;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::grants::ExistingGrant;
use crate::base::text;

/// The desired state of one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredState {
    /// The approved key policy in canonical form (object keys sorted, no whitespace).
    pub policy: String,
    /// `None` where rotation does not apply (replicas, asymmetric, HMAC, imported keys).
    pub rotation: Option<RotationWanted>,
    pub key_state: KeyStateWanted,
    /// The grants the key should have, matched by grant id.
    pub grants: Vec<ExistingGrant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationWanted {
    pub enabled: bool,
    /// `None` when KMS did not say (the local emulator never does).
    pub period_days: Option<i32>,
}

/// The key states a record can ask for. A deletion scheduled by an approved deployer (a
/// `terraform destroy`) is recorded as wanted, so it is not cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStateWanted {
    Enabled,
    Disabled,
    PendingDeletion,
}

impl KeyStateWanted {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStateWanted::Enabled => "enabled",
            KeyStateWanted::Disabled => "disabled",
            KeyStateWanted::PendingDeletion => "pending deletion",
        }
    }
}

/// The parts of a key's state one CloudTrail call changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aspect {
    Policy,
    Rotation,
    KeyState,
    Grants,
}

pub const ALL_ASPECTS: &[Aspect] = &[
    Aspect::Policy,
    Aspect::Rotation,
    Aspect::KeyState,
    Aspect::Grants,
];

/// What the CloudTrail call `event_name` changes; none for calls that change no desired state
/// (tags and aliases change membership only).
pub fn aspects_of(event_name: &str) -> &'static [Aspect] {
    match event_name {
        "CreateKey" | "ReplicateKey" => ALL_ASPECTS,
        "PutKeyPolicy" => &[Aspect::Policy],
        "EnableKeyRotation" | "DisableKeyRotation" => &[Aspect::Rotation],
        "EnableKey" | "DisableKey" | "ScheduleKeyDeletion" | "CancelKeyDeletion" => {
            &[Aspect::KeyState]
        }
        "CreateGrant" | "RevokeGrant" | "RetireGrant" => &[Aspect::Grants],
        _ => &[],
    }
}

/// Pure: `recorded` with the `aspects` an approved change made taken from `current`.
pub fn merge(recorded: &DesiredState, current: &DesiredState, aspects: &[Aspect]) -> DesiredState {
    let mut merged = recorded.clone();
    for aspect in aspects {
        match aspect {
            Aspect::Policy => merged.policy = current.policy.clone(),
            Aspect::Rotation => merged.rotation = current.rotation,
            Aspect::KeyState => merged.key_state = current.key_state,
            Aspect::Grants => merged.grants = current.grants.clone(),
        }
    }
    merged
}

/// Why a version was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Reason {
    /// The key had no record; its state then passed the floor.
    Enrolled,
    /// An approved deployer changed the key.
    Approved,
    /// An operator restored an earlier version.
    Rollback { from: u32 },
}

impl Reason {
    pub fn describe(&self) -> String {
        match self {
            Reason::Enrolled => "enrolled from the key's state".to_string(),
            Reason::Approved => "approved change".to_string(),
            Reason::Rollback { from } => format!("rollback to version {from}"),
        }
    }
}

/// One version of a key's desired state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// 1 for the first; each new one is the latest plus one.
    pub number: u32,
    pub state: DesiredState,
    /// Who approved it: the deployer's role, or the operator command.
    pub approved_by: String,
    /// When: the CloudTrail event's time, or the recording time.
    pub approved_at: String,
    /// The CloudTrail event, the sweep or the command that recorded it.
    pub event_id: String,
    pub reason: Reason,
}

/// A key policy in canonical form: parsed and written again with sorted keys and no spaces, so
/// two spellings of one document compare equal and the record holds what KMS would hold.
pub fn canonical_policy(document: &str) -> Result<String, String> {
    let value: Value = serde_json::from_str(document).map_err(|e| {
        format!(
            "the key policy is not JSON: {}",
            text::one_line(&e.to_string(), 120)
        )
    })?;
    Ok(sorted(value).to_string())
}

fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Whether `pattern` (an ARN, `*` matching any run of characters) names `arn`: how
/// `APPROVED_DEPLOYERS` entries match a session issuer.
pub fn arn_matches(pattern: &str, arn: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], s) || (!s.is_empty() && go(p, &s[1..])),
            (Some(a), Some(b)) if a == b => go(&p[1..], &s[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), arn.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(policy: &str) -> DesiredState {
        DesiredState {
            policy: policy.to_string(),
            rotation: Some(RotationWanted {
                enabled: true,
                period_days: Some(365),
            }),
            key_state: KeyStateWanted::Enabled,
            grants: Vec::new(),
        }
    }

    #[test]
    fn two_spellings_of_one_policy_have_one_canonical_form() {
        let a = canonical_policy(
            r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Sid": "A"}]}"#,
        );
        let b = canonical_policy(
            r#"{"Statement":[{"Sid":"A","Effect":"Allow"}],"Version":"2012-10-17"}"#,
        );
        assert_eq!(a, b);
        assert_eq!(
            a.unwrap(),
            r#"{"Statement":[{"Effect":"Allow","Sid":"A"}],"Version":"2012-10-17"}"#
        );
        assert!(canonical_policy("{not json")
            .unwrap_err()
            .contains("not JSON"));
    }

    #[test]
    fn an_approved_policy_change_takes_the_policy_and_nothing_else() {
        let recorded = state("old");
        let mut current = state("new");
        current.key_state = KeyStateWanted::Disabled;
        let merged = merge(&recorded, &current, aspects_of("PutKeyPolicy"));
        assert_eq!(merged.policy, "new");
        assert_eq!(
            merged.key_state,
            KeyStateWanted::Enabled,
            "a disable no one approved stays drift"
        );
        assert_eq!(
            merge(&recorded, &current, aspects_of("TagResource")),
            recorded
        );
        assert_eq!(merge(&recorded, &current, aspects_of("CreateKey")), current);
    }

    #[test]
    fn deployer_patterns_match_whole_arns() {
        let role = "arn:aws:iam::111122223333:role/terraform-ci";
        assert!(arn_matches(role, role));
        assert!(arn_matches(
            "arn:aws:iam::111122223333:role/terraform-*",
            role
        ));
        assert!(arn_matches("arn:aws:iam::*:role/terraform-ci", role));
        assert!(!arn_matches(
            "arn:aws:iam::111122223333:role/terraform",
            role
        ));
        assert!(!arn_matches(
            "arn:aws:iam::111122223333:role/terraform-ci-x",
            role
        ));
        assert!(!arn_matches("arn:aws:iam::444455556666:role/*", role));
    }
}

//! The event gate: the first step of every function on a CloudTrail event. It lets through
//! only the calls the function handles, that succeeded, and that the function did not make
//! itself; everything else is a skip with its reason.

use crate::base::arn::Arn;
use crate::triggers::events::CloudTrailDetail;

/// The CloudTrail events one service delivers that a function acts on. This list is the one
/// truth: the handler gates on it and a test checks the template's EventBridge pattern against it.
#[derive(Debug, Clone, Copy)]
pub struct HandledEvents {
    /// `eventSource`, e.g. `kms.amazonaws.com`.
    pub source: &'static str,
    pub names: &'static [&'static str],
}

#[derive(Debug, Clone, Copy)]
pub struct EventGate {
    pub function: &'static str,
    pub handled: &'static [HandledEvents],
}

impl EventGate {
    /// `Ok` when the function should act on `detail`, else the reason it skips.
    pub fn admit(&self, detail: &CloudTrailDetail, self_role: &Arn) -> Result<(), String> {
        let Some(handled) = self
            .handled
            .iter()
            .find(|h| h.source == detail.event_source)
        else {
            return Err(format!(
                "event source {} is not one {} acts on",
                crate::base::text::quoted(&detail.event_source, 80),
                self.function
            ));
        };
        if !handled.names.contains(&detail.event_name.as_str()) {
            return Err(format!(
                "{} does not act on {} events",
                self.function,
                crate::base::text::quoted(&detail.event_name, 80)
            ));
        }
        if let Some(code) = &detail.error_code {
            return Err(format!(
                "the {} call failed ({}), so nothing changed",
                detail.event_name,
                crate::base::text::one_line(code, 80)
            ));
        }
        if caused_by_role(detail, self_role) {
            return Err("caused by this function's own role (loop prevention)".to_string());
        }
        Ok(())
    }

    /// Every event name of `source`, for the template check.
    pub fn names(&self, source: &str) -> Vec<&'static str> {
        self.handled
            .iter()
            .filter(|h| h.source == source)
            .flat_map(|h| h.names.iter().copied())
            .collect()
    }
}

/// True when `role` made the call: answering our own writes would loop.
pub fn caused_by_role(detail: &CloudTrailDetail, role: &Arn) -> bool {
    if detail.session_issuer_arn() == Some(role.as_str()) {
        return true;
    }
    // Records without sessionContext still carry the assumed-role session ARN.
    let Some(role_name) = role.iam_role_name() else {
        return false;
    };
    detail
        .user_identity
        .arn
        .as_deref()
        .and_then(|arn| Arn::parse(arn).ok())
        .is_some_and(|session| {
            session.service() == "sts"
                && session.account() == role.account()
                && session
                    .resource()
                    .strip_prefix("assumed-role/")
                    .and_then(|rest| rest.split('/').next())
                    == Some(role_name)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::triggers::events::{parse_trigger, Trigger};

    const GATE: EventGate = EventGate {
        function: "policy-drift",
        handled: &[HandledEvents {
            source: "kms.amazonaws.com",
            names: &["PutKeyPolicy", "DisableKey"],
        }],
    };

    fn detail(sample: &str) -> CloudTrailDetail {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../events/policy-drift")
            .join(sample);
        let text = std::fs::read_to_string(&path).unwrap();
        match parse_trigger(&serde_json::from_str(&text).unwrap()).unwrap() {
            Trigger::CloudTrail(event) => event.detail,
            other => panic!("{sample}: {other:?}"),
        }
    }

    fn role(arn: &str) -> Arn {
        Arn::parse(arn).unwrap()
    }

    const SELF: &str =
        "arn:aws:iam::111122223333:role/kms-guardrails-PolicyDriftFunctionRole-1A2B3C4D5E6F";

    #[test]
    fn a_handled_successful_call_by_someone_else_is_admitted() {
        assert_eq!(
            GATE.admit(&detail("put-key-policy.json"), &role(SELF)),
            Ok(())
        );
    }

    #[test]
    fn each_reason_to_skip_is_given() {
        let cases = [
            (
                "rotate-key-service-event.json",
                "does not act on \"RotateKey\"",
            ),
            (
                "put-key-policy-failed.json",
                "call failed (AccessDeniedException)",
            ),
            ("put-key-policy-by-self.json", "loop prevention"),
        ];
        for (sample, reason) in cases {
            let err = GATE.admit(&detail(sample), &role(SELF)).unwrap_err();
            assert!(err.contains(reason), "{sample}: {err}");
        }
        let mut other_source = detail("put-key-policy.json");
        other_source.event_source = "iam.amazonaws.com".into();
        let err = GATE.admit(&other_source, &role(SELF)).unwrap_err();
        assert!(
            err.contains("\"iam.amazonaws.com\" is not one policy-drift acts on"),
            "{err}"
        );
    }

    #[test]
    fn own_role_is_recognised_with_or_without_session_context() {
        let mut by_self = detail("put-key-policy-by-self.json");
        assert!(caused_by_role(&by_self, &role(SELF)));
        by_self.user_identity.session_context = None;
        assert!(caused_by_role(&by_self, &role(SELF)));
        assert!(!caused_by_role(
            &by_self,
            &role("arn:aws:iam::111122223333:role/other")
        ));
        // Same role name in another account is someone else.
        assert!(!caused_by_role(
            &by_self,
            &role("arn:aws:iam::444455556666:role/kms-guardrails-PolicyDriftFunctionRole-1A2B3C4D5E6F")
        ));
    }
}

//! The EventBridge patterns in template.yaml against the code's one list of handled events.

use integration_tests::template::{event_names_at, rule_event_names};
use integration_tests::workspace_root;

#[test]
fn the_policy_drift_rule_matches_exactly_the_events_the_handler_acts_on() {
    let template = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    let in_template = rule_event_names(&template, "PolicyDriftFunction", "KeyChanged").unwrap();
    let in_code: Vec<String> = policy_drift::GATE
        .names("kms.amazonaws.com")
        .into_iter()
        .map(str::to_string)
        .collect();
    assert_eq!(in_template, in_code);
}

#[test]
fn the_root_access_revoker_rules_match_exactly_the_events_the_handler_acts_on() {
    let template = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    let gate = root_access_revoker::GATE;
    for (event, source) in [
        ("KeyChanged", "kms.amazonaws.com"),
        ("RoleChanged", "iam.amazonaws.com"),
    ] {
        let in_template = rule_event_names(&template, "RootAccessRevokerFunction", event).unwrap();
        let in_code: Vec<String> = gate.names(source).into_iter().map(str::to_string).collect();
        assert_eq!(in_template, in_code, "{event}");
    }
}

#[test]
fn the_replica_grant_validator_rules_match_exactly_the_events_the_handler_acts_on() {
    let template = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    let gate = replica_grant_validator::GATE;
    for (event, source) in [
        ("KeyChanged", "kms.amazonaws.com"),
        ("BucketReplicationChanged", "s3.amazonaws.com"),
    ] {
        let in_template =
            rule_event_names(&template, "ReplicaGrantValidatorFunction", event).unwrap();
        let in_code: Vec<String> = gate.names(source).into_iter().map(str::to_string).collect();
        assert_eq!(in_template, in_code, "{event}");
    }
}

#[test]
fn the_template_states_the_dedup_lifetime_the_code_writes() {
    // The table's TTL expires what the code writes; the template says how long that is.
    let template = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    let days = alarm_notifier::dedup::KEEP_SECONDS / 86_400;
    assert_eq!(alarm_notifier::dedup::KEEP_SECONDS % 86_400, 0);
    assert!(
        template.contains(&format!("expire by TTL after {days} days")),
        "template.yaml's AlarmDedupTable should say the markers live {days} days"
    );
}

#[test]
fn the_grant_operations_checked_at_cold_start_are_the_templates() {
    // The cold-start check refuses REQUIRED_GRANTS the deployed role could not create; it must
    // refuse exactly what template.yaml's kms:GrantOperations condition refuses.
    let template = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    let at = template
        .find("kms:GrantOperations:")
        .expect("the CreateGrant statement's kms:GrantOperations condition");
    let items: Vec<&str> = template[at..].lines().skip(1).collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let depth = indent(items[0]);
    let in_template: Vec<String> = items
        .iter()
        .take_while(|l| indent(l) == depth && l.trim_start().starts_with("- "))
        .map(|l| l.trim_start().trim_start_matches("- ").to_string())
        .collect();
    let in_code: Vec<String> = replica_grant_validator::config::GRANTABLE_OPERATIONS
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert!(!in_template.is_empty());
    assert_eq!(in_template, in_code);
}

#[test]
fn a_dedup_claim_outlives_any_invocation_of_the_function() {
    // A claim younger than the lease is another delivery still at work; the template's Timeout
    // bounds how long that can be.
    let template = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    let timeout: u64 = template
        .lines()
        .find_map(|l| l.trim().strip_prefix("Timeout: "))
        .and_then(|t| t.trim().parse().ok())
        .expect("Globals Timeout");
    assert!(
        alarm_notifier::dedup::LEASE_SECONDS > timeout,
        "LEASE_SECONDS {} must exceed the function Timeout {timeout}",
        alarm_notifier::dedup::LEASE_SECONDS
    );
    // Likewise a pending correction: another invocation takes it over only after the lease, by
    // when the one that recorded it has surely ended.
    let lease = shared::config::PENDING_LEASE.as_secs();
    assert!(
        lease > timeout,
        "PENDING_LEASE {lease} s must exceed the function Timeout {timeout}"
    );
}

#[test]
fn every_function_that_writes_keys_gets_the_state_table_and_may_use_it() {
    let template = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    assert_eq!(
        template.matches("STATE_TABLE: !Ref StateTable").count(),
        3,
        "policy-drift, root-access-revoker and replica-grant-validator"
    );
    // The three functions' statements, and policy-drift's sweep progress when it fans out.
    assert_eq!(
        template.matches("Resource: !GetAtt StateTable.Arn").count(),
        4
    );
    for action in ["dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query"] {
        assert!(template.matches(action).count() >= 3, "{action}");
    }
    assert!(template.contains("PointInTimeRecoveryEnabled: true"));
}

/// The KMS events a function's gate admits, as the code lists them.
fn kms_events(gate: &shared::triggers::gate::EventGate) -> Vec<String> {
    gate.names("kms.amazonaws.com")
        .into_iter()
        .map(str::to_string)
        .collect()
}

#[test]
fn member_accounts_forward_and_the_organization_bus_routes_exactly_the_events_the_functions_act_on()
{
    let drift = kms_events(&policy_drift::GATE);
    let revoker = kms_events(&root_access_revoker::handler::GATE);
    let spoke = std::fs::read_to_string(workspace_root().join("spoke.yaml")).unwrap();
    let mut forwarded = event_names_at(
        &spoke,
        &["ForwardKeyEvents", "Properties", "EventPattern", "detail"],
    )
    .unwrap();
    let mut wanted: Vec<String> = drift.iter().chain(&revoker).cloned().collect();
    for list in [&mut forwarded, &mut wanted] {
        list.sort();
        list.dedup();
    }
    assert_eq!(forwarded, wanted, "spoke.yaml forwards other events");
    let template = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    for (rule, in_code) in [
        ("PolicyDriftMemberKeyEvents", &drift),
        ("RootAccessRevokerMemberKeyEvents", &revoker),
    ] {
        let routed =
            event_names_at(&template, &[rule, "Properties", "EventPattern", "detail"]).unwrap();
        assert_eq!(&routed, in_code, "{rule} routes other events");
    }
    // The admin role watch: IAM events, forwarded from us-east-1 and routed to the revoker.
    let role_events: Vec<String> = root_access_revoker::watch::ROLE_EVENTS
        .iter()
        .map(|e| e.to_string())
        .collect();
    let forwarded = event_names_at(
        &spoke,
        &["ForwardRoleEvents", "Properties", "EventPattern", "detail"],
    )
    .unwrap();
    assert_eq!(
        forwarded, role_events,
        "spoke.yaml forwards other IAM events"
    );
    let routed = event_names_at(
        &template,
        &[
            "RootAccessRevokerMemberRoleEvents",
            "Properties",
            "EventPattern",
            "detail",
        ],
    )
    .unwrap();
    assert_eq!(
        routed, role_events,
        "the organization bus routes other IAM events"
    );
}

#[test]
fn spoke_yaml_deploys_with_service_managed_stack_sets() {
    // Service-managed StackSets cannot deploy a template with a transform through the default
    // execution role; the member role trusts the hub's function role with the external id.
    let spoke = std::fs::read_to_string(workspace_root().join("spoke.yaml")).unwrap();
    assert!(
        !spoke.lines().any(|l| l.starts_with("Transform")),
        "spoke.yaml has a transform"
    );
    let trust = spoke
        .split("AssumeRolePolicyDocument:")
        .nth(1)
        .and_then(|rest| rest.split("Policies:").next())
        .unwrap();
    // policy-drift always; root-access-revoker and alarm-notifier only when given.
    assert!(trust.contains("- !Ref HubPolicyDriftRoleArn"), "{trust}");
    assert!(
        trust.contains("!If [TrustRevoker, !Ref HubRootAccessRevokerRoleArn, !Ref AWS::NoValue]"),
        "{trust}"
    );
    assert!(
        trust.contains("!If [TrustNotifier, !Ref HubAlarmNotifierRoleArn, !Ref AWS::NoValue]"),
        "{trust}"
    );
    assert!(trust.contains("sts:ExternalId: !Ref ExternalId"), "{trust}");
}

/// The value after `key:` on the first line at or after `from` that holds it.
fn value_after<'a>(template: &'a str, from: &str, key: &str) -> &'a str {
    let start = template
        .find(from)
        .unwrap_or_else(|| panic!("{from} not in template.yaml"));
    template[start..]
        .lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .unwrap_or_else(|| panic!("{key} not after {from}"))
        .trim()
}

// AWS's guidance for an SQS event source: a visibility timeout of at least six times the
// function's timeout, partial batch responses turned on (the function answers with
// batchItemFailures), and a MaximumConcurrency of at least 2. The function counts a part's
// last delivery as not swept, so its SWEEP_MAX_RECEIVES must be the queue's maxReceiveCount.
#[test]
fn a_fanned_out_sweep_is_consumed_as_aws_documents_for_sqs_event_sources() {
    let template = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    let timeout: u64 = value_after(&template, "Globals:", "Timeout:")
        .parse()
        .unwrap();
    let visibility: u64 = value_after(&template, "  SweepQueue:", "VisibilityTimeout:")
        .parse()
        .unwrap();
    assert!(visibility >= 6 * timeout, "{visibility} < 6 x {timeout}");
    let max_receives = value_after(&template, "  SweepQueue:", "maxReceiveCount:");
    let env_receives = value_after(&template, "PolicyDriftFunction:", "SWEEP_MAX_RECEIVES:");
    assert_eq!(env_receives, format!("\"{max_receives}\""));
    assert_eq!(
        max_receives,
        shared::config::DEFAULT_SWEEP_MAX_RECEIVES.to_string()
    );
    assert_eq!(
        value_after(&template, "  SweepWork:", "FunctionResponseTypes:"),
        "[ReportBatchItemFailures]"
    );
    assert_eq!(
        value_after(&template, "  SweepWork:", "MaximumConcurrency:"),
        "!Ref SweepParallelism"
    );
    assert_eq!(
        value_after(&template, "  SweepParallelism:", "MinValue:"),
        "2"
    );
    assert_eq!(
        value_after(&template, "PolicyDriftFunction:", "SWEEP_QUEUE_URL:"),
        "!If [FanOutSweeps, !Ref SweepQueue, \"\"]"
    );
}

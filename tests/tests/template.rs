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

// The operations dashboard and the alarms on the functions' own metrics. The functions emit
// CloudWatch embedded-metric-format metrics under this contract; the dashboard and the alarms
// are built against it.

/// The namespace of the functions' metrics.
const METRICS_NAMESPACE: &str = "KmsGuardrails";
/// Their one dimension: which function.
const METRICS_DIMENSION: &str = "Function";
/// Every metric of the contract. All are counts summed over a period, except SweepDuration
/// (milliseconds, only on sweeps), whose maximum is what matters.
const CONTRACT_METRICS: [&str; 9] = integration_tests::METRICS_CONTRACT;

#[test]
fn the_dashboards_metrics_contract_is_the_one_the_code_emits() {
    // The metrics the functions emit are exactly the contract the dashboard and the alarms
    // are built against, in its namespace and with its dimension.
    use shared::notify::metrics::{Measures, DIMENSION, NAMESPACE, SWEEP_DURATION};
    assert_eq!(NAMESPACE, METRICS_NAMESPACE);
    assert_eq!(DIMENSION, METRICS_DIMENSION);
    let mut emitted: Vec<&str> = Measures::default()
        .counts()
        .iter()
        .map(|(n, _)| *n)
        .collect();
    emitted.push(SWEEP_DURATION);
    emitted.sort();
    let mut contract = CONTRACT_METRICS.to_vec();
    contract.sort();
    assert_eq!(emitted, contract);
}

/// The `Function` dimension's values: each function's name as its code states it.
fn function_names() -> [&'static str; 4] {
    use shared::pipeline::Guardrail;
    [
        <policy_drift::handler::PolicyDrift as Guardrail>::NAME,
        <root_access_revoker::handler::RootAccessRevoker as Guardrail>::NAME,
        <alarm_notifier::handler::AlarmNotifier as Guardrail>::NAME,
        <replica_grant_validator::handler::ReplicaGrantValidator as Guardrail>::NAME,
    ]
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The lines of the resource `name` (its `  name:` line excluded), up to the next line at the
/// resources' own indentation or less.
fn resource_lines<'a>(template: &'a str, name: &str) -> Vec<&'a str> {
    let header = format!("  {name}:");
    let mut lines = template.lines().skip_while(|l| *l != header);
    assert!(lines.next().is_some(), "{name} not in template.yaml");
    lines
        .take_while(|l| l.trim().is_empty() || indent_of(l) > 2)
        .collect()
}

/// Every resource of template.yaml: logical id, Type and Condition (if any).
fn resources(template: &str) -> Vec<(String, String, Option<String>)> {
    let section: Vec<&str> = template
        .lines()
        .skip_while(|l| *l != "Resources:")
        .skip(1)
        .take_while(|l| l.trim().is_empty() || l.starts_with(' ') || l.starts_with('#'))
        .collect();
    section
        .iter()
        .filter(|l| indent_of(l) == 2 && !l.trim_start().starts_with('#'))
        .filter_map(|l| l.trim().strip_suffix(':'))
        .map(|name| {
            let lines = resource_lines(template, name);
            let property = |key: &str| {
                lines
                    .iter()
                    .filter(|l| indent_of(l) == 4)
                    .find_map(|l| l.trim().strip_prefix(key))
                    .map(|v| v.trim().to_string())
            };
            let kind = property("Type:").unwrap_or_else(|| panic!("{name} has no Type"));
            (name.to_string(), kind, property("Condition:"))
        })
        .collect()
}

/// The value after `key` on the resource's lines at any depth, every occurrence.
fn values_in(lines: &[&str], key: &str) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l.trim().trim_start_matches("- ").strip_prefix(key))
        .map(|v| v.trim().to_string())
        .collect()
}

/// A `Name: !If [Condition, !Sub '<fragment>', ""]` variable of the dashboard body's Fn::Sub.
struct Fragment {
    name: String,
    condition: String,
    text: String,
}

/// The dashboard body: the Fn::Sub template text and its conditional fragments.
fn dashboard_body(template: &str) -> (String, Vec<Fragment>) {
    let lines = resource_lines(template, "GuardrailsDashboard");
    let start = lines
        .iter()
        .position(|l| l.trim() == "DashboardBody: !Sub")
        .expect("DashboardBody: !Sub with a list (the template text, then its variables)");
    assert_eq!(
        lines[start + 1].trim(),
        "- |",
        "the body is a literal block"
    );
    let dash = indent_of(lines[start + 1]);
    let body: Vec<&str> = lines[start + 2..]
        .iter()
        .take_while(|l| l.trim().is_empty() || indent_of(l) > dash)
        .copied()
        .collect();
    let margin = indent_of(body[0]);
    let text: String = body
        .iter()
        .map(|l| format!("{}\n", l.get(margin..).unwrap_or("")))
        .collect();
    let mut fragments = Vec::new();
    let rest = &lines[start + 2 + body.len()..];
    for (i, line) in rest.iter().enumerate() {
        let Some(name) = line.trim().trim_start_matches("- ").strip_suffix(": !If") else {
            continue;
        };
        let item = |n: usize| rest[i + n].trim().trim_start_matches("- ").to_string();
        let fragment = item(2);
        let fragment = fragment
            .strip_prefix("!Sub '")
            .and_then(|f| f.strip_suffix('\''))
            .unwrap_or_else(|| panic!("{name}: !Sub '<fragment>' expected, got {fragment}"));
        assert_eq!(item(3), "\"\"", "{name}: the other branch adds nothing");
        fragments.push(Fragment {
            name: name.to_string(),
            condition: item(1),
            text: fragment.to_string(),
        });
    }
    (text, fragments)
}

/// The `${...}` references of a Fn::Sub text.
fn references(text: &str) -> Vec<String> {
    text.split("${")
        .skip(1)
        .map(|rest| rest.split('}').next().unwrap().to_string())
        .collect()
}

/// The body as CloudFormation would render it with the conditions in `holds` true: each
/// fragment in or out, every other `${X}` replaced by `ref:X` (the resource's name or ARN,
/// a parameter's value).
fn render(text: &str, fragments: &[Fragment], holds: &[&str]) -> serde_json::Value {
    let mut text = text.to_string();
    for f in fragments {
        let value = if holds.contains(&f.condition.as_str()) {
            f.text.as_str()
        } else {
            ""
        };
        text = text.replace(&format!("${{{}}}", f.name), value);
    }
    for reference in references(&text) {
        text = text.replace(&format!("${{{reference}}}"), &format!("ref:{reference}"));
    }
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the dashboard body with {holds:?} is not JSON: {e}\n{text}"))
}

/// Every combination of the fragments' conditions.
fn condition_sets(fragments: &[Fragment]) -> Vec<Vec<&str>> {
    let mut conditions: Vec<&str> = fragments.iter().map(|f| f.condition.as_str()).collect();
    conditions.sort();
    conditions.dedup();
    (0..1usize << conditions.len())
        .map(|bits| {
            conditions
                .iter()
                .enumerate()
                .filter(|(i, _)| bits & (1 << i) != 0)
                .map(|(_, c)| *c)
                .collect()
        })
        .collect()
}

/// One metric a widget graphs.
struct Graphed {
    title: String,
    /// The statistic: the metric's own, else the widget's.
    stat: String,
    period: u64,
    /// Namespace, metric name, then dimension names and values.
    metric: Vec<String>,
}

/// Every metric the rendered body graphs, spelt out (no "..." shorthand), in the stack's Region.
fn graphed(body: &serde_json::Value) -> Vec<Graphed> {
    let mut out = Vec::new();
    for widget in body["widgets"].as_array().expect("widgets") {
        if widget["type"] != "metric" {
            continue;
        }
        let p = &widget["properties"];
        let title = p["title"].as_str().unwrap_or_default().to_string();
        assert_eq!(p["region"], "ref:AWS::Region", "{title}");
        for items in p["metrics"].as_array().expect("metrics") {
            let items = items.as_array().expect("a metric is an array");
            let metric: Vec<String> = items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            assert!(
                !metric.iter().any(|s| s == "..." || s == "."),
                "{title}: spell every metric out: {metric:?}"
            );
            let options = items.last().filter(|v| v.is_object());
            let stat = options
                .and_then(|o| o["stat"].as_str())
                .or(p["stat"].as_str())
                .unwrap_or_default();
            out.push(Graphed {
                title: title.clone(),
                stat: stat.to_string(),
                period: p["period"].as_u64().unwrap_or_default(),
                metric,
            });
        }
    }
    out
}

#[test]
fn the_dashboard_is_json_under_every_condition_and_names_no_resource_the_stack_may_lack() {
    let template = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    let all = resources(&template);
    let dashboard = all
        .iter()
        .find(|(name, _, _)| name == "GuardrailsDashboard")
        .unwrap();
    assert_eq!(dashboard.1, "AWS::CloudWatch::Dashboard");
    assert_eq!(dashboard.2, None, "the dashboard is always created");
    assert_eq!(
        values_in(
            &resource_lines(&template, "GuardrailsDashboard"),
            "DashboardName:"
        ),
        ["!Sub \"${AWS::StackName}-kms-guardrails\""]
    );
    let (text, fragments) = dashboard_body(&template);
    assert!(!fragments.is_empty());
    // A resource's condition, by the logical id a `${Id}` or `${Id.Attribute}` names.
    let condition_of = |reference: &str| {
        let id = reference.split('.').next().unwrap();
        all.iter()
            .find(|(name, _, _)| name == id)
            .map(|(_, _, condition)| condition.clone())
    };
    for reference in references(&text) {
        if reference.starts_with("AWS::") || fragments.iter().any(|f| f.name == reference) {
            continue;
        }
        match condition_of(&reference) {
            Some(None) => {}
            Some(Some(condition)) => {
                panic!("the body names ${{{reference}}}, created only when {condition}")
            }
            // Not a resource: it must be a parameter.
            None => assert!(
                template.contains(&format!("\n  {reference}:\n    Type: ")),
                "${{{reference}}} is neither a resource nor a parameter"
            ),
        }
    }
    for f in &fragments {
        for reference in references(&f.text) {
            let condition = condition_of(&reference)
                .unwrap_or_else(|| panic!("{}: ${{{reference}}} is not a resource", f.name));
            assert!(
                condition.is_none() || condition.as_deref() == Some(f.condition.as_str()),
                "{} is added when {} but names ${{{reference}}}, created when {condition:?}",
                f.name,
                f.condition
            );
        }
    }
    for holds in condition_sets(&fragments) {
        let body = render(&text, &fragments, &holds);
        assert!(!body["widgets"].as_array().unwrap().is_empty());
    }
}

#[test]
fn the_dashboard_graphs_every_contract_metric_for_every_function_and_nothing_else() {
    let template = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    let (text, fragments) = dashboard_body(&template);
    let functions = function_names();
    for holds in condition_sets(&fragments) {
        let metrics = graphed(&render(&text, &fragments, &holds));
        for Graphed {
            title,
            stat,
            period,
            metric,
        } in &metrics
        {
            match metric[0].as_str() {
                METRICS_NAMESPACE => {}
                "AWS/Lambda" | "AWS/SQS" => continue,
                other => panic!("{title}: namespace {other} is neither the contract's nor AWS's"),
            }
            let [_, name, dimension, function] = metric.as_slice() else {
                panic!("{title}: one dimension, {metric:?}");
            };
            assert!(
                CONTRACT_METRICS.contains(&name.as_str()),
                "{title}: {name} is not a metric of the contract"
            );
            assert_eq!(dimension, METRICS_DIMENSION, "{title}");
            assert!(
                functions.contains(&function.as_str()),
                "{title}: {function}"
            );
            let sum_or_max = if name == "SweepDuration" {
                "Maximum"
            } else {
                "Sum"
            };
            assert_eq!(stat, sum_or_max, "{title}: {name}");
            assert!([300, 3600].contains(period), "{title}: period {period}");
        }
        for name in CONTRACT_METRICS {
            for function in functions {
                let wanted = [METRICS_NAMESPACE, name, METRICS_DIMENSION, function];
                assert!(
                    metrics.iter().any(|g| g.metric == wanted),
                    "{name} of {function} is not graphed (conditions {holds:?})"
                );
            }
        }
    }
}

#[test]
fn every_function_of_the_template_appears_in_the_dashboards_lambda_widgets() {
    let template = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    let (text, fragments) = dashboard_body(&template);
    let functions: Vec<(String, Option<String>)> = resources(&template)
        .into_iter()
        .filter(|(_, kind, _)| kind == "AWS::Serverless::Function")
        .map(|(name, _, condition)| (name, condition))
        .collect();
    assert_eq!(functions.len(), 4, "{functions:?}");
    for holds in condition_sets(&fragments) {
        let metrics = graphed(&render(&text, &fragments, &holds));
        for lambda_metric in ["Errors", "Throttles", "Duration"] {
            let mut shown: Vec<String> = metrics
                .iter()
                .filter(|g| g.metric[..2] == ["AWS/Lambda", lambda_metric])
                .inspect(|g| assert_eq!(g.metric[2], "FunctionName", "{}", g.title))
                .map(|g| g.metric[3].clone())
                .collect();
            let mut deployed: Vec<String> = functions
                .iter()
                .filter(|(_, condition)| condition.as_deref().is_none_or(|c| holds.contains(&c)))
                .map(|(name, _)| format!("ref:{name}"))
                .collect();
            shown.sort();
            deployed.sort();
            assert_eq!(shown, deployed, "{lambda_metric} with {holds:?}");
        }
    }
    // The Duration graph's timeout line is the functions' Timeout.
    let timeout: u64 = value_after(&template, "Globals:", "Timeout:")
        .parse()
        .unwrap();
    let body = render(&text, &fragments, &[]);
    let duration = body["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["properties"]["metrics"][0][1] == "Duration")
        .expect("the Lambda Duration widget");
    assert_eq!(
        duration["properties"]["annotations"]["horizontal"][0]["value"],
        timeout * 1000
    );
}

/// The `SweepSchedule` parameter's default, `rate(N unit)`, in seconds.
fn default_sweep_interval_seconds(template: &str) -> u64 {
    let lines = resource_lines(template, "SweepSchedule");
    let default = values_in(&lines, "Default:");
    let rate = default[0]
        .strip_prefix("rate(")
        .and_then(|r| r.strip_suffix(')'))
        .expect("SweepSchedule's default is a rate expression");
    let (n, unit) = rate.split_once(' ').expect("rate(N unit)");
    let unit = match unit.trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3_600,
        "day" => 86_400,
        other => panic!("unit {other}"),
    };
    n.parse::<u64>().unwrap() * unit
}

#[test]
fn shut_out_and_regions_not_swept_alarm_to_the_topic_and_show_on_the_dashboard() {
    let template = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    let (text, fragments) = dashboard_body(&template);
    let body = render(&text, &fragments, &[]);
    let listed: Vec<&str> = body["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["type"] == "alarm")
        .flat_map(|w| w["properties"]["alarms"].as_array().unwrap())
        .filter_map(|a| a.as_str())
        .collect();
    let mut functions: Vec<String> = function_names().iter().map(|f| f.to_string()).collect();
    functions.sort();
    for (alarm, metric) in [
        ("RegionsNotSweptAlarm", "RegionsNotSwept"),
        ("ShutOutAlarm", "ShutOut"),
    ] {
        let lines = resource_lines(&template, alarm);
        let one = |key: &str| {
            let values = values_in(&lines, key);
            assert_eq!(values.len(), 1, "{alarm}: {key} {values:?}");
            values[0].clone()
        };
        assert_eq!(one("Type:"), "AWS::CloudWatch::Alarm", "{alarm}");
        assert!(
            values_in(&lines, "Condition:").is_empty(),
            "{alarm} is always created"
        );
        // One query per function, each the contract's metric summed over 5 minutes.
        let mut dimensions = values_in(&lines, "Value:");
        dimensions.sort();
        assert_eq!(dimensions, functions, "{alarm}: one query per function");
        let all = |key: &str, value: &str| {
            let values = values_in(&lines, key);
            values.len() == functions.len() && values.iter().all(|v| v == value)
        };
        assert!(all("Namespace:", METRICS_NAMESPACE), "{alarm}");
        assert!(all("MetricName:", metric), "{alarm}");
        assert!(all("Name:", METRICS_DIMENSION), "{alarm}");
        assert!(all("Stat:", "Sum"), "{alarm}");
        assert!(all("Period:", "300"), "{alarm}");
        // Their sum alarms; FILL: a function that emitted nothing in the period counts 0.
        let ids = values_in(&lines, "Id:");
        let (sum, queries) = ids.split_first().unwrap();
        assert_eq!(
            one("Expression:"),
            format!("SUM(FILL([{}], 0))", queries.join(", ")),
            "{alarm}: {sum} sums every function's query"
        );
        assert_eq!(values_in(&lines, "ReturnData: false").len(), queries.len());
        assert_eq!(
            values_in(&lines, "ReturnData: true").len(),
            1,
            "{alarm}: the sum"
        );
        assert_eq!(one("Threshold:"), "1", "{alarm}");
        assert_eq!(
            one("ComparisonOperator:"),
            "GreaterThanOrEqualToThreshold",
            "{alarm}"
        );
        // Any breaching 5 minutes of a window that spans more than one sweep at the default
        // schedule, so the alarm does not turn OK between two sweeps that both find the cause;
        // AWS allows at most a day of periods under an hour.
        let window = one("EvaluationPeriods:").parse::<u64>().unwrap() * 300;
        assert_eq!(one("DatapointsToAlarm:"), "1", "{alarm}");
        assert!(
            window <= 86_400,
            "{alarm}: {window} s is over AWS's one day"
        );
        assert!(
            window >= 2 * default_sweep_interval_seconds(&template),
            "{alarm}: a {window} s window turns OK between two sweeps"
        );
        assert_eq!(one("TreatMissingData:"), "notBreaching", "{alarm}");
        assert_eq!(one("AlarmActions:"), "[!Ref NotificationTopic]", "{alarm}");
        assert_eq!(one("OKActions:"), "[!Ref NotificationTopic]", "{alarm}");
        assert!(
            listed.contains(&format!("ref:{alarm}.Arn").as_str()),
            "the dashboard's alarm widget lists {alarm}"
        );
        // CloudWatch takes at most 1024 characters: with the longest stack name (128) and
        // log group names ("/aws/lambda/" and a function name of at most 64).
        let start = lines
            .iter()
            .position(|l| l.trim() == "AlarmDescription: !Sub >-")
            .expect("a folded AlarmDescription");
        let description: Vec<&str> = lines[start + 1..]
            .iter()
            .take_while(|l| indent_of(l) > indent_of(lines[start]))
            .map(|l| l.trim())
            .collect();
        let mut description = description.join(" ");
        for reference in references(&description) {
            let longest = if reference == "AWS::StackName" {
                128
            } else {
                76
            };
            assert!(
                reference == "AWS::StackName" || reference.ends_with("LogGroup"),
                "{alarm}: bound the length of ${{{reference}}} here"
            );
            description = description.replace(&format!("${{{reference}}}"), &"x".repeat(longest));
        }
        assert!(
            description.len() <= 1024,
            "{alarm}: AlarmDescription can reach {} characters",
            description.len()
        );
    }
}

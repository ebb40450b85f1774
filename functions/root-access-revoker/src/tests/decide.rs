use super::*;
use serde_json::{json, Value};

const ACCOUNT: &str = "111122223333";
const ROOT: &str = "arn:aws:iam::111122223333:root";
const ADMIN: &str = "arn:aws:iam::111122223333:role/kms-admin";
const SELF: &str = "arn:aws:iam::111122223333:role/root-access-revoker";

fn admin(arn: &str) -> AdminRole {
    AdminRole {
        arn: arn.into(),
        role_id: Some("AROANEWROLEID12345678".into()),
    }
}

fn text(statements: &[Value]) -> String {
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

fn root_statement() -> Value {
    json!({"Sid": "EnableRootAccess", "Effect": "Allow", "Principal": {"AWS": ROOT},
           "Action": "kms:*", "Resource": "*"})
}

fn admin_statement(principal: &str) -> Value {
    json!({"Sid": "AllowKmsAdminRole", "Effect": "Allow", "Principal": {"AWS": principal},
           "Action": ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*",
                      "kms:Update*", "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*",
                      "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"],
           "Resource": "*"})
}

fn self_statement() -> Value {
    json!({"Sid": "AllowGuardrails", "Effect": "Allow", "Principal": {"AWS": SELF},
           "Action": ["kms:PutKeyPolicy", "kms:GetKeyPolicy", "kms:DescribeKey"], "Resource": "*"})
}

fn decided(statements: &[Value], admins: &[AdminRole]) -> Decision {
    decide(&text(statements), ACCOUNT, admins, SELF, false).unwrap()
}

fn blocked(decision: Decision) -> (Check, String, String) {
    match decision {
        Decision::Blocked {
            check,
            problem,
            fix,
            ..
        } => (check, problem, fix),
        other => panic!("expected a block, got {other:?}"),
    }
}

#[test]
fn given_root_an_admin_and_the_function_when_decided_then_revoke_the_policy_minus_root() {
    let input = [root_statement(), admin_statement(ADMIN), self_statement()];
    let Decision::Revoke { revocation, policy } = decided(&input, &[admin(ADMIN)]) else {
        panic!("expected Revoke");
    };
    let expected = Policy::parse(&text(&[admin_statement(ADMIN), self_statement()])).unwrap();
    assert!(
        policy.policy().semantically_equal(&expected),
        "{}",
        policy.policy().diff_against(&expected)
    );
    assert_eq!(policy.document(), revocation.document);
    assert_eq!(revocation.removed.len(), 1);
}

#[test]
fn given_no_root_grant_when_decided_then_nothing_to_revoke_even_without_admins() {
    let input = [admin_statement(ADMIN), self_statement()];
    assert!(matches!(decided(&input, &[]), Decision::NothingToRevoke));
}

#[test]
fn given_no_admin_configured_when_decided_then_blocked_by_admin_role_exists() {
    let input = [root_statement(), admin_statement(ADMIN), self_statement()];
    let (check, problem, fix) = blocked(decided(&input, &[]));
    assert_eq!(check, Check::AdminRoleExists);
    assert!(
        problem.contains("no administrator role is configured"),
        "{problem}"
    );
    assert!(fix.contains("configure at least one administrator role"));
}

#[test]
fn given_a_missing_admin_role_when_decided_then_blocked_by_admin_role_exists() {
    let input = [root_statement(), admin_statement(ADMIN), self_statement()];
    let gone = AdminRole {
        arn: ADMIN.into(),
        role_id: None,
    };
    let (check, problem, fix) = blocked(decided(&input, &[gone]));
    assert_eq!(check, Check::AdminRoleExists);
    assert_eq!(
        problem,
        format!(
            "the administrator role {ADMIN} does not exist (IAM GetRole found no such role), \
             so once root is gone it could not change the key policy"
        )
    );
    assert!(
        fix.starts_with(&format!("create the role {ADMIN} again")),
        "{fix}"
    );
    assert!(fix.contains("add its new principal to the key policy"));
}

#[test]
fn given_a_recreated_admin_role_when_decided_then_blocked_by_same_role() {
    // The policy shows the deleted role's unique id; IAM has a new role of the same name.
    let input = [
        root_statement(),
        admin_statement("AROAOLDROLEID12345678"),
        self_statement(),
    ];
    let (check, problem, fix) = blocked(decided(&input, &[admin(ADMIN)]));
    assert_eq!(check, Check::SameRole);
    assert!(
        problem.contains("names the deleted principal AROAOLDROLEID12345678")
            && problem.contains("its id is now AROANEWROLEID12345678")
            && problem.contains("different principal"),
        "{problem}"
    );
    assert!(
        fix.contains(&format!("replace AROAOLDROLEID12345678 with {ADMIN}")),
        "{fix}"
    );
}

#[test]
fn given_a_policy_not_naming_the_admin_role_when_decided_then_blocked_by_same_role() {
    let input = [root_statement(), self_statement()];
    let (check, problem, fix) = blocked(decided(&input, &[admin(ADMIN)]));
    assert_eq!(check, Check::SameRole);
    assert!(problem.contains(&format!("does not name the administrator role {ADMIN}")));
    assert!(fix.starts_with(&format!("add {ADMIN} to an Allow statement")));
}

#[test]
fn given_an_admin_without_put_key_policy_when_decided_then_blocked_by_admin_keeps_control() {
    let user = json!({"Sid": "AdminUsesKey", "Effect": "Allow", "Principal": {"AWS": ADMIN},
                      "Action": ["kms:GetKeyPolicy", "kms:Decrypt"], "Resource": "*"});
    let input = [root_statement(), user, self_statement()];
    let (check, problem, fix) = blocked(decided(&input, &[admin(ADMIN)]));
    assert_eq!(check, Check::AdminKeepsControl);
    assert_eq!(
        problem,
        format!(
            "in the new key policy, {ADMIN} may not call kms:PutKeyPolicy: no Allow statement names \
             it or its account for this action"
        )
    );
    assert!(fix.starts_with(&format!("name {ADMIN} in an Allow statement")));
}

#[test]
fn given_an_explicit_deny_of_the_admin_when_decided_then_blocked_by_admin_keeps_control() {
    let deny = json!({"Sid": "NoPolicyChanges", "Effect": "Deny", "Principal": {"AWS": ADMIN},
                      "Action": "kms:PutKeyPolicy", "Resource": "*"});
    let input = [
        root_statement(),
        admin_statement(ADMIN),
        self_statement(),
        deny,
    ];
    let (check, problem, _) = blocked(decided(&input, &[admin(ADMIN)]));
    assert_eq!(check, Check::AdminKeepsControl);
    assert!(
        problem.contains("Deny statement \"NoPolicyChanges\" names it"),
        "{problem}"
    );
}

#[test]
fn given_admin_control_only_under_a_condition_or_through_a_wildcard_when_decided_then_blocked() {
    for grant in [
        json!({"Effect": "Allow", "Principal": {"AWS": ADMIN}, "Action": "kms:*", "Resource": "*",
               "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}),
        json!({"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}),
    ] {
        // The admin is named (so the SameRole check passes) but only for Decrypt.
        let named = json!({"Effect": "Allow", "Principal": {"AWS": ADMIN}, "Action": "kms:Decrypt", "Resource": "*"});
        let input = [root_statement(), named, grant.clone(), self_statement()];
        let (check, _, _) = blocked(decided(&input, &[admin(ADMIN)]));
        assert_eq!(check, Check::AdminKeepsControl, "{grant}");
    }
}

#[test]
fn given_a_second_admin_lacking_control_when_decided_then_only_it_is_named() {
    let other = "arn:aws:iam::111122223333:role/other-admin";
    let named = json!({"Effect": "Allow", "Principal": {"AWS": other}, "Action": "kms:Decrypt", "Resource": "*"});
    let input = [
        root_statement(),
        admin_statement(ADMIN),
        named,
        self_statement(),
    ];
    let (check, problem, fix) = blocked(decided(&input, &[admin(ADMIN), admin(other)]));
    assert_eq!(check, Check::AdminKeepsControl);
    assert!(
        problem.contains(other) && !problem.contains(ADMIN),
        "{problem}"
    );
    assert!(fix.starts_with(&format!("name {other} in")), "{fix}");
}

#[test]
fn given_a_function_role_without_describe_key_when_decided_then_blocked_by_function_keeps_control()
{
    let partial = json!({"Sid": "AllowGuardrails", "Effect": "Allow", "Principal": {"AWS": SELF},
                         "Action": ["kms:PutKeyPolicy", "kms:GetKeyPolicy"], "Resource": "*"});
    let input = [
        json!({"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:DescribeKey", "Resource": "*"}),
        admin_statement(ADMIN),
        partial,
    ];
    let (check, problem, fix) = blocked(decided(&input, &[admin(ADMIN)]));
    assert_eq!(check, Check::FunctionKeepsControl);
    assert!(
        problem.starts_with(&format!(
            "in the new key policy, {SELF} may not call kms:DescribeKey"
        )),
        "{problem}"
    );
    assert!(fix.contains("kms:PutKeyPolicy, kms:GetKeyPolicy, kms:DescribeKey"));
}

#[test]
fn given_a_policy_kms_would_reject_when_decided_then_blocked_by_kms_rules() {
    let mut duplicate = self_statement();
    duplicate["Sid"] = json!("AllowKmsAdminRole");
    let input = [root_statement(), admin_statement(ADMIN), duplicate];
    let (check, problem, fix) = blocked(decided(&input, &[admin(ADMIN)]));
    assert_eq!(check, Check::KmsRules);
    assert!(
        problem.contains("KMS would reject it") && problem.contains("[unique Sid]"),
        "{problem}"
    );
    assert!(fix.starts_with("correct the key policy so that KMS accepts it"));
}

#[test]
fn given_the_account_wide_statement_when_decided_then_removed_only_when_configured() {
    let enable_iam = json!({"Sid": "EnableIAMPermissions", "Effect": "Allow", "Principal": {"AWS": "*"},
           "Action": "kms:*", "Resource": "*", "Condition": {"StringEquals": {"kms:CallerAccount": ACCOUNT}}});
    let input = [admin_statement(ADMIN), enable_iam.clone(), self_statement()];
    assert!(matches!(
        decided(&input, &[admin(ADMIN)]),
        Decision::NothingToRevoke
    ));
    let Decision::Revoke { revocation, policy } =
        decide(&text(&input), ACCOUNT, &[admin(ADMIN)], SELF, true).unwrap()
    else {
        panic!("expected Revoke");
    };
    assert!(revocation.account_wide_removed);
    assert_eq!(policy.policy().statements.len(), 2);
}

#[test]
fn given_only_the_account_wide_statement_to_remove_when_blocked_then_the_fix_says_so() {
    let enable_iam = json!({"Sid": "EnableIAMPermissions", "Effect": "Allow", "Principal": "*",
           "Action": "kms:*", "Resource": "*", "Condition": {"StringEquals": {"kms:CallerAccount": ACCOUNT}}});
    let input = text(&[enable_iam, self_statement()]);
    let (check, _, fix) = blocked(decide(&input, ACCOUNT, &[admin(ADMIN)], SELF, true).unwrap());
    assert_eq!(check, Check::SameRole);
    assert!(
        fix.ends_with("the next run then removes that statement") && !fix.contains("root"),
        "{fix}"
    );
}

#[test]
fn given_an_unreadable_policy_when_decided_then_an_error() {
    assert!(decide("{", ACCOUNT, &[admin(ADMIN)], SELF, false).is_err());
}

#[test]
fn given_a_blocked_message_with_text_from_the_policy_when_decided_then_it_is_one_line() {
    let deny = json!({"Sid": "Evil\nFix: nothing", "Effect": "Deny", "Principal": "*",
                      "Action": "kms:PutKeyPolicy", "Resource": "*"});
    let input = [
        root_statement(),
        admin_statement(ADMIN),
        self_statement(),
        deny,
    ];
    let (_, problem, _) = blocked(decided(&input, &[admin(ADMIN)]));
    assert!(!problem.contains('\n'), "{problem}");
}

#[test]
fn every_check_has_a_distinct_name_for_people() {
    let all = [
        Check::AdminRoleExists,
        Check::SameRole,
        Check::AdminKeepsControl,
        Check::FunctionKeepsControl,
        Check::KmsRules,
    ];
    let names: std::collections::BTreeSet<String> = all.iter().map(Check::to_string).collect();
    assert_eq!(names.len(), all.len());
}

mod properties {
    use super::*;
    use crate::revoke::{is_account_wide, names_root};
    use proptest::prelude::*;
    use serde_json::Map;

    const OTHER_ROOT: &str = "arn:aws:iam::444455556666:root";
    const SECOND_ADMIN: &str = "arn:aws:iam::111122223333:role/ops/second-admin";
    const PRINCIPALS: &[&str] = &[ROOT, ACCOUNT, OTHER_ROOT, ADMIN, SECOND_ADMIN, SELF, "*"];
    const ACTIONS: &[&str] = &[
        "kms:*",
        "kms:Put*",
        "kms:PutKeyPolicy",
        "kms:GetKeyPolicy",
        "kms:DescribeKey",
        "kms:Decrypt",
    ];

    fn conditions() -> Vec<Value> {
        vec![
            json!({"StringEquals": {"kms:CallerAccount": ACCOUNT}}),
            json!({"StringEquals": {"KMS:CallerAccount": [ACCOUNT]}}),
            json!({"Bool": {"aws:SecureTransport": "true"}}),
            json!({"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}),
        ]
    }

    fn one_or_list(values: &[&str], list: bool) -> Value {
        if values.len() == 1 && !list {
            json!(values[0])
        } else {
            json!(values)
        }
    }

    /// A statement from the pools; `sid` numbered by the caller so most Sids are unique.
    fn statement() -> impl Strategy<Value = (Option<bool>, Value)> {
        (
            proptest::option::weighted(0.6, proptest::bool::weighted(0.05)),
            proptest::bool::weighted(0.15),
            prop_oneof![
                6 => proptest::sample::subsequence(PRINCIPALS, 1..=3).prop_map(Some),
                1 => Just(None),
            ],
            proptest::bool::ANY,
            proptest::bool::weighted(0.2),
            proptest::bool::weighted(0.2),
            proptest::sample::subsequence(ACTIONS, 1..=3),
            proptest::bool::ANY,
            proptest::option::weighted(0.35, 0..conditions().len()),
        )
            .prop_map(
                |(
                    sid,
                    deny,
                    principals,
                    list,
                    service,
                    not_action,
                    actions,
                    action_list,
                    condition,
                )| {
                    let mut s = Map::new();
                    s.insert("Effect".into(), json!(if deny { "Deny" } else { "Allow" }));
                    let principal = match principals {
                        // The bare wildcard form.
                        None => json!("*"),
                        Some(values) => {
                            let mut kinds = json!({"AWS": one_or_list(&values, list)});
                            if service {
                                kinds["Service"] = json!("logs.amazonaws.com");
                            }
                            kinds
                        }
                    };
                    s.insert("Principal".into(), principal);
                    let key = if not_action { "NotAction" } else { "Action" };
                    s.insert(key.into(), one_or_list(&actions, action_list));
                    s.insert("Resource".into(), json!("*"));
                    if let Some(i) = condition {
                        s.insert("Condition".into(), conditions()[i].clone());
                    }
                    (sid, Value::Object(s))
                },
            )
    }

    /// Mostly with a statement that keeps every admin and the function in control, so
    /// that many cases get past the checks to a write.
    fn policy_text() -> impl Strategy<Value = String> {
        (
            proptest::bool::weighted(0.75),
            proptest::collection::vec(statement(), 1..=5),
        )
            .prop_map(|(backbone, statements)| {
                let backbone = backbone.then(|| {
                    json!({"Effect": "Allow",
                "Principal": {"AWS": [ADMIN, SECOND_ADMIN, SELF]},
                "Action": ["kms:PutKeyPolicy", "kms:GetKeyPolicy", "kms:DescribeKey"],
                "Resource": "*"})
                });
                let statements: Vec<Value> = backbone
                    .into_iter()
                    .map(|s| (None, s))
                    .chain(statements)
                    .enumerate()
                    .map(|(i, (sid, mut s))| {
                        match sid {
                            Some(false) => s["Sid"] = json!(format!("S{i}")),
                            // Now and then a duplicate, which KMS refuses.
                            Some(true) => s["Sid"] = json!("Dup"),
                            None => {}
                        }
                        s
                    })
                    .collect();
                text(&statements)
            })
    }

    fn admins() -> impl Strategy<Value = Vec<AdminRole>> {
        prop_oneof![
            Just(vec![admin(ADMIN)]),
            Just(vec![admin(ADMIN), admin(SECOND_ADMIN)]),
        ]
    }

    fn statements_of(document: &str) -> Vec<Value> {
        let value: Value = serde_json::from_str(document).unwrap();
        match &value["Statement"] {
            Value::Array(items) => items.clone(),
            single => vec![single.clone()],
        }
    }

    fn grants_root(statement: &Value) -> bool {
        statement["Effect"] == "Allow"
            && match &statement["Principal"]["AWS"] {
                Value::Array(items) => items.iter().any(|v| names_root(v, ACCOUNT)),
                single => names_root(single, ACCOUNT),
            }
    }

    /// The statement as the revoker must leave it: root values out of `Principal.AWS`,
    /// `None` when no principal is left.
    fn expected_after(statement: &Value) -> Option<Value> {
        if !grants_root(statement) {
            return Some(statement.clone());
        }
        let mut s = statement.clone();
        let kinds = s["Principal"].as_object_mut().unwrap();
        match kinds["AWS"].clone() {
            Value::Array(items) => {
                let rest: Vec<Value> = items
                    .into_iter()
                    .filter(|v| !names_root(v, ACCOUNT))
                    .collect();
                if rest.is_empty() {
                    kinds.remove("AWS");
                } else {
                    kinds["AWS"] = Value::Array(rest);
                }
            }
            _ => {
                kinds.remove("AWS");
            }
        }
        (!kinds.is_empty()).then_some(s)
    }

    fn account_wide(statement: &Value) -> bool {
        let policy = Policy::parse(&text(std::slice::from_ref(statement))).unwrap();
        is_account_wide(&policy.statements[0].body, ACCOUNT)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn a_revoked_policy_keeps_every_admin_in_control_changes_nothing_else_and_is_final(
            input in policy_text(),
            admins in admins(),
            remove_account_wide in proptest::bool::ANY,
        ) {
            let decision = decide(&input, ACCOUNT, &admins, SELF, remove_account_wide).unwrap();
            let revocation = match &decision {
                Decision::NothingToRevoke => {
                    prop_assert!(revoke_root(&input, ACCOUNT, remove_account_wide).unwrap().is_none());
                    return Ok(());
                }
                Decision::Revoke { revocation, policy } => {
                    // (a) every admin and the function keep control, exactly.
                    let new = policy.policy();
                    for a in &admins {
                        for action in ADMIN_ACTIONS {
                            prop_assert_eq!(access(new, &a.arn, action), Access::Allowed, "{} {}", a.arn, action);
                        }
                    }
                    for action in SELF_ACTIONS {
                        prop_assert_eq!(access(new, SELF, action), Access::Allowed, "{}", action);
                    }
                    prop_assert_eq!(policy.document(), revocation.document.as_str());
                    revocation
                }
                Decision::Blocked { revocation, check, problem, fix } => {
                    prop_assert!(!problem.is_empty() && !fix.is_empty());
                    // Blocked only when the check really fails.
                    let new = Policy::parse(&revocation.document).unwrap();
                    let admins_keep = admins.iter().all(|a| {
                        ADMIN_ACTIONS.iter().all(|action| access(&new, &a.arn, action) == Access::Allowed)
                    });
                    let function_keeps = SELF_ACTIONS
                        .iter()
                        .all(|action| access(&new, SELF, action) == Access::Allowed);
                    match check {
                        Check::AdminRoleExists => prop_assert!(false, "every admin exists"),
                        Check::SameRole => prop_assert!(admins.iter().any(|a| !input.contains(&a.arn))),
                        Check::AdminKeepsControl => prop_assert!(!admins_keep),
                        Check::FunctionKeepsControl => prop_assert!(admins_keep && !function_keeps),
                        Check::KmsRules => prop_assert!(admins_keep && function_keeps),
                    }
                    revocation
                }
            };

            // (b) every statement that grants no root (and is not a removed account-wide
            // statement) is unchanged, in order; root statements lose only root.
            // Account-wide is judged on what is left once root is out.
            let expected: Vec<Value> = statements_of(&input)
                .iter()
                .filter_map(expected_after)
                .filter(|s| !(remove_account_wide && account_wide(s)))
                .collect();
            let output = statements_of(&revocation.document);
            prop_assert_eq!(&output, &expected);

            // (c) no Allow of the output names this account's root, in any spelling.
            let revoked = Policy::parse(&revocation.document).unwrap();
            for s in &revoked.statements {
                let names_account = s.body.principal.as_ref()
                    .and_then(|kinds| kinds.get("AWS"))
                    .is_some_and(|values| values.contains(ACCOUNT));
                prop_assert!(s.body.effect == shared::policy::model::Effect::Deny || !names_account, "{}", s);
            }

            // (d) the output is final.
            let again = decide(&revocation.document, ACCOUNT, &admins, SELF, remove_account_wide).unwrap();
            prop_assert!(matches!(again, Decision::NothingToRevoke), "{:?}", again);
        }
    }
}

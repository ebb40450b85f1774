//! Fuzzing on the stable toolchain: a seeded, structure-aware mutation fuzzer over what reads
//! untrusted input. Each target runs for a time budget on inputs mutated from a corpus (every
//! sample event in `events/`, the key policies of the tests and the reference docs); a panic is a
//! crash, saved to `target/fuzz-crashes/` and counted. Exits 1 on any crash.
//!
//! ```text
//! cargo run -p integration-tests --bin fuzz -- [--seconds-per-target N] [--seed S] [TARGET...]
//! ```
//!
//! Targets: `trigger` (EventBridge, SNS and Lambda-action payloads through `parse_trigger` and
//! the alarm parser), `policy` (policy parsing, KMS's rules, the semantic diff and the root
//! revocation), `evaluator` (access, in context and lockout checks for mutated principals and
//! actions). No coverage feedback (that needs a nightly toolchain): mutations are chosen to
//! reach the shapes AWS can send (missing fields, wrong types, empty and huge values, Unicode,
//! deep nesting) and bytes no parser expects.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use integration_tests::{workspace_root, DRIFTED_POLICY};
use serde_json::{Map, Value};
use shared::policy::evaluate::{access, access_in_context, lockout_problems, RequestContext};
use shared::policy::kms_rules::check_kms_rules;
use shared::policy::model::Policy;

/// xorshift64*: small, fast and the same sequence for the same seed everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const STRINGS: &[&str] = &[
    "",
    "*",
    "arn:aws:iam::111122223333:root",
    "arn:aws:iam::*:role/*",
    "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab",
    "arn:aws:kms:eu-west-1:111122223333:alias/x",
    "alias/aws/s3",
    "AROAEXAMPLEID123456",
    "kms:*",
    "kms:Put*",
    "kms:Decrypt",
    "PutKeyPolicy",
    "kms.amazonaws.com",
    "aws.kms",
    "AWS API Call via CloudTrail",
    "CloudWatch Alarm State Change",
    "ALARM",
    "OK",
    "${aws:username}",
    "\u{0}\u{1f}\u{7f}",
    "é漢字🙂\u{202e}",
    "arn:aws:kms:::key/",
    "arn:",
    "111122223333",
    "eu-west-1",
    "not-a-region",
];

fn random_value(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth > 3 { 5 } else { 8 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.below(2) == 1),
        2 => Value::from(rng.next() as i64),
        3 => Value::from(*rng.pick(STRINGS)),
        4 => Value::from("x".repeat(rng.below(70_000))),
        5 => Value::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        6 => {
            let mut map = Map::new();
            for _ in 0..rng.below(4) {
                map.insert(rng.pick(STRINGS).to_string(), random_value(rng, depth + 1));
            }
            Value::Object(map)
        }
        _ => {
            // Deep nesting, within what serde_json's recursion limit lets through.
            let mut v = Value::Null;
            for _ in 0..rng.below(120) {
                v = Value::Array(vec![v]);
            }
            v
        }
    }
}

/// A path to a random node of `value`.
fn node_mut<'a>(value: &'a mut Value, rng: &mut Rng) -> &'a mut Value {
    let descend = rng.below(4) != 0;
    let has_children = match &*value {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    };
    if !descend || !has_children {
        return value;
    }
    match value {
        Value::Object(map) => {
            let index = rng.below(map.len());
            let key = map.keys().nth(index).cloned().unwrap_or_default();
            node_mut(map.get_mut(&key).expect("key just read"), rng)
        }
        Value::Array(items) => {
            let index = rng.below(items.len());
            node_mut(&mut items[index], rng)
        }
        other => other,
    }
}

/// One structural mutation: replace, remove, add, retype or duplicate a node.
fn mutate_json(value: &mut Value, rng: &mut Rng) {
    let choice = rng.below(6);
    let node = node_mut(value, rng);
    match choice {
        0 => *node = random_value(rng, 0),
        1 => match node {
            Value::Object(map) if !map.is_empty() => {
                let key = map
                    .keys()
                    .nth(rng.below(map.len()))
                    .cloned()
                    .unwrap_or_default();
                map.remove(&key);
            }
            Value::Array(items) if !items.is_empty() => {
                let index = rng.below(items.len());
                items.remove(index);
            }
            other => *other = Value::Null,
        },
        2 => {
            if let Value::Object(map) = node {
                map.insert(rng.pick(STRINGS).to_string(), random_value(rng, 1));
            }
        }
        3 => {
            // A scalar where a list is expected and the other way round: both occur in IAM.
            let taken = node.take();
            *node = match taken {
                Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
                other => Value::Array(vec![other]),
            };
        }
        4 => {
            if let Value::String(s) = node {
                let text = rng.pick(STRINGS);
                let at = s.char_indices().map(|(i, _)| i).nth(rng.below(s.len() + 1));
                s.insert_str(at.unwrap_or(s.len()), text);
            }
        }
        _ => {
            let copy = node.clone();
            *node = Value::Array(vec![copy.clone(), copy]);
        }
    }
}

/// Byte mutations on the text: flips, cuts, inserted bytes.
fn mutate_bytes(text: &str, rng: &mut Rng) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        if bytes.is_empty() {
            bytes.push(b'{');
        }
        let at = rng.below(bytes.len());
        match rng.below(4) {
            0 => bytes[at] ^= 1 << rng.below(8),
            1 => bytes.truncate(at),
            2 => bytes.insert(at, *rng.pick(b"{}[]\",:\\\x00\xff")),
            _ => {
                let end = (at + rng.below(16)).min(bytes.len());
                bytes.drain(at..end);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn corpus_events() -> Vec<Value> {
    let mut events = Vec::new();
    let mut stack = vec![workspace_root().join("events")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                if let Ok(value) = std::fs::read_to_string(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
                {
                    events.push(value);
                }
            }
        }
    }
    events
}

fn corpus_policies() -> Vec<String> {
    let mut policies = vec![
        DRIFTED_POLICY.to_string(),
        integration_tests::expected_baseline(
            "eu-west-1",
            true,
            &[integration_tests::ADMIN_ROLE_ARN],
        ),
        integration_tests::expected_baseline(
            "eu-west-1",
            false,
            &[integration_tests::ADMIN_ROLE_ARN],
        ),
    ];
    // Key policies embedded in the events (PutKeyPolicy and CreateKey requests).
    for event in corpus_events() {
        if let Some(policy) = event["detail"]["requestParameters"]["policy"].as_str() {
            policies.push(policy.to_string());
        }
    }
    policies
}

/// One generated input: the text (an event or a policy) and, for the evaluator, a request.
#[derive(Debug, Default)]
struct Case {
    text: String,
    principal: String,
    action: String,
    context: Vec<(&'static str, String)>,
    flag: bool,
}

struct Target {
    name: &'static str,
    generate: fn(&mut Rng, &Corpus) -> Case,
    check: fn(&Case, &Corpus),
}

struct Corpus {
    events: Vec<Value>,
    policies: Vec<String>,
}

fn trigger_case(rng: &mut Rng, corpus: &Corpus) -> Case {
    let text = if rng.below(5) == 0 {
        let text = serde_json::to_string(rng.pick(&corpus.events)).unwrap_or_default();
        mutate_bytes(&text, rng)
    } else {
        let mut value = rng.pick(&corpus.events).clone();
        for _ in 0..1 + rng.below(4) {
            mutate_json(&mut value, rng);
        }
        value.to_string()
    };
    Case {
        text,
        ..Case::default()
    }
}

fn trigger_check(case: &Case, _: &Corpus) {
    // Lambda hands the function whatever JSON arrived; text that is not JSON never gets here.
    let Ok(input) = serde_json::from_str::<Value>(&case.text) else {
        return;
    };
    let _ = shared::triggers::events::parse_trigger(&input);
    let _ = shared::triggers::alarm::parse_alarm_payload(&input);
}

fn mutated_policy(rng: &mut Rng, corpus: &Corpus) -> String {
    let text = rng.pick(&corpus.policies);
    if rng.below(3) == 0 {
        return mutate_bytes(text, rng);
    }
    let mut value: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    for _ in 0..1 + rng.below(4) {
        mutate_json(&mut value, rng);
    }
    value.to_string()
}

fn policy_case(rng: &mut Rng, corpus: &Corpus) -> Case {
    Case {
        text: mutated_policy(rng, corpus),
        flag: rng.below(2) == 1,
        ..Case::default()
    }
}

fn policy_check(case: &Case, corpus: &Corpus) {
    if let Ok(policy) = Policy::parse(&case.text) {
        let baseline = Policy::parse(&corpus.policies[1]).expect("the baseline parses");
        let _ = policy.diff_against(&baseline).to_string();
        let _ = policy.semantically_equal(&baseline);
    }
    let _ = check_kms_rules(&case.text);
    let _ = root_access_revoker::revoke::revoke_root(&case.text, "111122223333", case.flag);
}

fn evaluator_case(rng: &mut Rng, corpus: &Corpus) -> Case {
    let text = mutated_policy(rng, corpus);
    let seed_principal = rng.pick(STRINGS).to_string();
    let principal = mutate_bytes(&seed_principal, rng);
    let action = if rng.below(2) == 0 {
        rng.pick(STRINGS).to_string()
    } else {
        mutate_bytes("kms:PutKeyPolicy", rng)
    };
    let context = vec![
        ("kms:CallerAccount", rng.pick(STRINGS).to_string()),
        ("aws:PrincipalOrgID", rng.pick(STRINGS).to_string()),
        ("kms:ViaService", rng.pick(STRINGS).to_string()),
    ];
    Case {
        text,
        principal,
        action,
        context,
        flag: rng.below(2) == 1,
    }
}

fn evaluator_check(case: &Case, _: &Corpus) {
    let Ok(policy) = Policy::parse(&case.text) else {
        return;
    };
    let _ = access(&policy, &case.principal, &case.action);
    let context = case
        .context
        .iter()
        .fold(RequestContext::new(), |c, (k, v)| c.with(k, v.clone()));
    let _ = access_in_context(&policy, &case.principal, &case.action, &context);
    let _ = lockout_problems(
        &policy,
        &[(case.principal.as_str(), case.action.as_str())],
        case.flag,
    );
}

const TARGETS: &[Target] = &[
    Target {
        name: "trigger",
        generate: trigger_case,
        check: trigger_check,
    },
    Target {
        name: "policy",
        generate: policy_case,
        check: policy_check,
    },
    Target {
        name: "evaluator",
        generate: evaluator_case,
        check: evaluator_check,
    },
];

fn save_crash(dir: &Path, target: &str, n: usize, input: &str, message: &str) -> PathBuf {
    let _ = std::fs::create_dir_all(dir);
    let path = dir.join(format!("{target}-{n}.txt"));
    let _ = std::fs::write(&path, format!("{message}\n---\n{input}"));
    path
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut seconds, mut seed, mut chosen) = (10u64, 20_261_203u64, Vec::new());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds-per-target" => {
                seconds = args.next().and_then(|v| v.parse().ok()).unwrap_or(seconds)
            }
            "--seed" => seed = args.next().and_then(|v| v.parse().ok()).unwrap_or(seed),
            "-h" | "--help" => {
                println!("fuzz [--seconds-per-target N] [--seed S] [trigger|policy|evaluator]...");
                return;
            }
            name => chosen.push(name.to_string()),
        }
    }
    let corpus = Corpus {
        events: corpus_events(),
        policies: corpus_policies(),
    };
    let crashes_dir = workspace_root().join("target/fuzz-crashes");
    // The panics are caught and counted; their default report would bury the summary.
    let last_panic = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let hook_panic = last_panic.clone();
    panic::set_hook(Box::new(move |info| {
        *hook_panic.lock().unwrap_or_else(|e| e.into_inner()) = info.to_string();
    }));
    println!(
        "fuzz: seed {seed}, {seconds} s per target, corpus {} events and {} policies",
        corpus.events.len(),
        corpus.policies.len()
    );
    let mut total_crashes = 0;
    for target in TARGETS
        .iter()
        .filter(|t| chosen.is_empty() || chosen.iter().any(|c| c == t.name))
    {
        let mut rng = Rng(seed ^ (target.name.len() as u64) << 32 | 1);
        let (mut executions, mut crashes) = (0u64, 0usize);
        let deadline = Instant::now() + Duration::from_secs(seconds);
        while Instant::now() < deadline {
            let case = (target.generate)(&mut rng, &corpus);
            let result = panic::catch_unwind(AssertUnwindSafe(|| (target.check)(&case, &corpus)));
            executions += 1;
            if result.is_err() {
                crashes += 1;
                let message = last_panic.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let input = format!("{case:#?}");
                let path = save_crash(&crashes_dir, target.name, crashes, &input, &message);
                println!(
                    "  crash in {}: {message} (input saved to {})",
                    target.name,
                    path.display()
                );
                // A new random state, so one crash does not repeat for the whole budget.
                rng = Rng(rng.next() | 1);
            }
        }
        println!(
            "fuzz {:<10} {executions:>9} executions, {crashes} crashes",
            target.name
        );
        total_crashes += crashes;
    }
    if total_crashes > 0 {
        std::process::exit(1);
    }
}

#!/usr/bin/env python3
"""Checks what the policy-drift and replica-grant-validator roles may do once template.yaml is deployed.

Real AWS IAM authorizes every call of the function; the local emulator (moto) does not, so the
integration tests cannot show a missing or too broad permission. This script deploys the template
on paper instead: it expands the SAM transform with samtranslator (as CloudFormation would), resolves
the intrinsic functions on the paths that make up the function's role for a given set of parameter
values, and evaluates the resulting identity policies for the requests the function makes: for
policy-drift in each key selection mode (tag, ManagedKeyArns, ManagedKeyAliases, both lists), for
replica-grant-validator with StrictGrants off and on (grants only on multi-Region keys, in the
replication Regions, to the replication roles; the configured buckets' replication only).

Run with the template virtualenv (cfn-lint and aws-sam-cli installed):

    .venv/template/bin/python scripts/check-template-iam.py [TEMPLATE]    # default: template.yaml

Prints one line per check and "template IAM checks: N passed"; exits 1 on any failure.

The resolver knows exactly the intrinsics this template uses (Ref, Fn::If, Fn::Equals, Fn::Not,
Fn::And, Fn::Or, Condition, Fn::Join, Fn::Split, Fn::Sub, Fn::GetAtt, AWS::NoValue) and fails with the
template path of anything else. Resources are placeholders ("<Ref:X>", "<GetAtt:X.Arn>"). The
evaluator knows Allow statements with Action, Resource and these conditions: StringEquals on
aws:ResourceTag/KEY, aws:RequestedRegion and kms:GranteePrincipal, ForAnyValue:StringEquals on
kms:ResourceAliases, ForAllValues:StringEquals on kms:GrantOperations; an unknown condition never
allows, and a statement element it cannot evaluate (Deny, NotAction, NotResource) is an error.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
PARTITION = "aws"
REGION = "eu-west-1"
STACK_NAME = "kms-guardrails"
FUNCTION = "PolicyDriftFunction"

PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Partition": PARTITION,
    "AWS::Region": REGION,
    "AWS::StackName": STACK_NAME,
    "AWS::StackId": f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK_NAME}/"
    "11111111-2222-3333-4444-555555555555",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NotificationARNs": [],
}

# What SAM attaches to every function role (logs, X-Ray); neither grants KMS or SQS actions. Any
# other managed policy is a failure: the evaluator cannot see inside it.
KNOWN_MANAGED_POLICIES = {
    f"arn:{PARTITION}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    f"arn:{PARTITION}:iam::aws:policy/AWSXrayWriteOnlyAccess",
}

FIND = ["tag:GetResources", "kms:ListAliases"]
READ = ["kms:DescribeKey", "kms:ListResourceTags"]
CORRECT = [
    "kms:PutKeyPolicy",
    "kms:GetKeyPolicy",
    "kms:EnableKey",
    "kms:CancelKeyDeletion",
    "kms:EnableKeyRotation",
    "kms:GetKeyRotationStatus",
    # Per-key desired state: a key's grants are read, and unexpected ones may be revoked.
    "kms:ListGrants",
    "kms:RevokeGrant",
]
FORBIDDEN = ["kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:CreateGrant", "kms:*"]


def key_arn(n: int, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:{PARTITION}:kms:{region}:{account}:key/{n:04d}abcd-12ab-34cd-56ef-1234567890ab"


class TemplateError(Exception):
    """The template cannot be resolved or evaluated by this checker."""


NOVALUE = object()


# ---------------------------------------------------------------------------------------------
# Loading and the SAM transform


def plain(node: Any) -> Any:
    """cfn-lint's node classes (dict/str/list subclasses with marks) as plain Python values."""
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


def load_template(path: Path) -> dict[str, Any]:
    from cfnlint.decode import decode

    template, matches = decode(str(path))
    if template is None or matches:
        raise TemplateError(f"{path}: cannot parse: " + "; ".join(m.message for m in matches))
    return plain(template)


def sam_translate(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    """The template after the AWS::Serverless-2016-10-31 transform, as CloudFormation runs it."""
    import boto3.session
    from samtranslator.metrics.metrics import DummyMetricsPublisher, Metrics
    from samtranslator.parser import parser
    from samtranslator.public.exceptions import InvalidDocumentException
    from samtranslator.translator.translator import Translator

    sam = copy.deepcopy(template)
    for resource in sam.get("Resources", {}).values():
        props = resource.get("Properties", {})
        # sam deploy uploads the code first; the transform only accepts an S3 location.
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            props["CodeUri"] = "s3://placeholder-bucket/policy-drift.zip"
    parameter_values: dict[str, Any] = dict(overrides)
    parameter_values.update({k: v for k, v in PSEUDO.items() if isinstance(v, str)})
    metrics = Metrics("ServerlessTransform", DummyMetricsPublisher())
    translator = Translator(
        managed_policy_map=None,
        sam_parser=parser.Parser(),
        plugins=[],
        boto_session=boto3.session.Session(region_name=REGION),
        metrics=metrics,
    )
    try:
        return translator.translate(
            sam_template=sam, parameter_values=parameter_values, get_managed_policy_map=lambda: {}
        )
    except InvalidDocumentException as err:
        raise TemplateError("SAM transform: " + " ".join(str(c) for c in err.causes)) from err
    finally:
        metrics.publish()  # to nowhere; unpublished metrics make samtranslator warn on exit


def parameter_values(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    """Parameter values as Ref returns them, validated as CloudFormation would before deploying."""
    declared = template.get("Parameters", {})
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise TemplateError(f"the template has no parameter {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, decl in declared.items():
        raw = overrides.get(name, decl.get("Default"))
        if raw is None:
            raise TemplateError(f"parameter {name} has no default and no value")
        raw = str(raw)
        kind = decl.get("Type")
        if kind == "CommaDelimitedList":
            value: Any = raw.split(",")
            items = value
        elif kind in ("String", "Number"):
            value = raw
            items = [raw]
        else:
            raise TemplateError(f"parameter {name}: type {kind} is not supported by this checker")
        for item in items:
            allowed = decl.get("AllowedValues")
            if allowed is not None and item not in [str(a) for a in allowed]:
                raise TemplateError(f"parameter {name}: {item!r} is not one of {allowed}")
            pattern = decl.get("AllowedPattern")
            if pattern is not None and not re.fullmatch(pattern, item):
                raise TemplateError(f"parameter {name}: {item!r} does not match {pattern}")
            if kind == "Number":
                number = float(item)
                if "MinValue" in decl and number < float(decl["MinValue"]):
                    raise TemplateError(f"parameter {name}: {item} < MinValue")
                if "MaxValue" in decl and number > float(decl["MaxValue"]):
                    raise TemplateError(f"parameter {name}: {item} > MaxValue")
        values[name] = value
    return values


# ---------------------------------------------------------------------------------------------
# Intrinsic functions


class Resolver:
    def __init__(self, template: dict[str, Any], params: dict[str, Any]):
        self.resources: dict[str, Any] = template.get("Resources", {})
        self.condition_decls: dict[str, Any] = template.get("Conditions", {})
        self.params = params
        self._conditions: dict[str, bool] = {}
        self._evaluating: list[str] = []

    def condition(self, name: Any, where: str = "") -> bool:
        if not isinstance(name, str) or name not in self.condition_decls:
            raise TemplateError(f"{where or 'Conditions'}: unknown condition {name!r}")
        if name not in self._conditions:
            if name in self._evaluating:
                raise TemplateError(f"condition {name} depends on itself")
            self._evaluating.append(name)
            value = self._eval(self.condition_decls[name], f"Conditions.{name}", True)
            self._evaluating.pop()
            if not isinstance(value, bool):
                raise TemplateError(f"Conditions.{name} is not a boolean: {value!r}")
            self._conditions[name] = value
        return self._conditions[name]

    def resolve(self, node: Any, where: str) -> Any:
        return self._eval(node, where, False)

    def _eval(self, node: Any, where: str, in_condition: bool) -> Any:
        if isinstance(node, list):
            out = []
            for i, item in enumerate(node):
                value = self._eval(item, f"{where}[{i}]", in_condition)
                if value is not NOVALUE:
                    out.append(value)
            return out
        if isinstance(node, dict):
            if len(node) == 1:
                ((name, arg),) = node.items()
                if name == "Ref":
                    return self._ref(arg, where)
                if name.startswith("Fn::"):
                    return self._function(name, arg, f"{where}.{name}", in_condition)
                if name == "Condition" and in_condition:
                    return self.condition(arg, where)
            out_map = {}
            for key, item in node.items():
                value = self._eval(item, f"{where}.{key}", in_condition)
                if value is not NOVALUE:
                    out_map[key] = value
            return out_map
        if node is None or isinstance(node, (str, bool, int, float)):
            return node
        raise TemplateError(f"{where}: unexpected value {node!r}")

    def _ref(self, name: Any, where: str) -> Any:
        if name == "AWS::NoValue":
            return NOVALUE
        if not isinstance(name, str):
            raise TemplateError(f"{where}: Ref takes a name, not {name!r}")
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.params:
            return self.params[name]
        if name in self.resources:
            return f"<Ref:{name}>"
        raise TemplateError(f"{where}: Ref to unknown name {name}")

    def _strings(self, value: Any, where: str) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise TemplateError(f"{where}: expected a list of strings, got {value!r}")
        return value

    def _function(self, name: str, arg: Any, where: str, in_condition: bool) -> Any:
        if name == "Fn::If":
            if not (isinstance(arg, list) and len(arg) == 3):
                raise TemplateError(f"{where}: takes [condition, then, else]")
            branch = 1 if self.condition(arg[0], where) else 2
            return self._eval(arg[branch], f"{where}[{branch}]", in_condition)
        if name == "Fn::Equals":
            if not (isinstance(arg, list) and len(arg) == 2):
                raise TemplateError(f"{where}: takes two values")
            left, right = (self._eval(a, f"{where}[{i}]", in_condition) for i, a in enumerate(arg))
            return left == right
        if name in ("Fn::Not", "Fn::And", "Fn::Or"):
            if not isinstance(arg, list) or not arg or (name == "Fn::Not" and len(arg) != 1):
                raise TemplateError(f"{where}: malformed")
            values = [self._eval(a, f"{where}[{i}]", True) for i, a in enumerate(arg)]
            if not all(isinstance(v, bool) for v in values):
                raise TemplateError(f"{where}: operands must be conditions, got {values!r}")
            if name == "Fn::Not":
                return not values[0]
            return all(values) if name == "Fn::And" else any(values)
        if name == "Fn::Join":
            if not (isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str)):
                raise TemplateError(f"{where}: takes [delimiter, list]")
            items = self._eval(arg[1], f"{where}[1]", in_condition)
            return arg[0].join(self._strings(items, f"{where}[1]"))
        if name == "Fn::Split":
            if not (isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str)):
                raise TemplateError(f"{where}: takes [delimiter, string]")
            text = self._eval(arg[1], f"{where}[1]", in_condition)
            if not isinstance(text, str):
                raise TemplateError(f"{where}[1]: expected a string, got {text!r}")
            return text.split(arg[0])
        if name == "Fn::Sub":
            return self._sub(arg, where)
        if name == "Fn::GetAtt":
            if isinstance(arg, str) and "." in arg:
                arg = arg.split(".", 1)
            if not (isinstance(arg, list) and len(arg) == 2 and all(isinstance(a, str) for a in arg)):
                raise TemplateError(f"{where}: takes [resource, attribute]")
            if arg[0] not in self.resources:
                raise TemplateError(f"{where}: no resource {arg[0]}")
            return f"<GetAtt:{arg[0]}.{arg[1]}>"
        raise TemplateError(f"{where}: {name} is not supported by this checker")

    def _sub(self, arg: Any, where: str) -> str:
        if isinstance(arg, str):
            text, variables = arg, {}
        elif (
            isinstance(arg, list)
            and len(arg) == 2
            and isinstance(arg[0], str)
            and isinstance(arg[1], dict)
        ):
            text = arg[0]
            variables = {k: self.resolve(v, f"{where}[1].{k}") for k, v in arg[1].items()}
        else:
            raise TemplateError(f"{where}: takes a string or [string, variables]")

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                value = variables[name]
            elif name in PSEUDO:
                value = PSEUDO[name]
            elif name in self.params:
                value = self.params[name]
            elif name in self.resources:
                value = f"<Ref:{name}>"
            elif "." in name and name.split(".", 1)[0] in self.resources:
                value = f"<GetAtt:{name}>"
            else:
                raise TemplateError(f"{where}: cannot resolve ${{{name}}}")
            if not isinstance(value, str):
                raise TemplateError(f"{where}: ${{{name}}} is {value!r}, Fn::Sub takes strings only")
            return value

        return re.sub(r"\$\{([^}]*)\}", substitute, text)


# ---------------------------------------------------------------------------------------------
# Identity policy evaluation


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def glob(pattern: str, value: str, ignore_case: bool) -> bool:
    regex = "".join(
        ".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern
    )
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def action_matches(pattern: str, action: str) -> bool:
    # IAM action names are case-insensitive. A request for the literal "kms:*" is matched only by
    # a pattern that covers every KMS action ("kms:*", "*", ...).
    return glob(pattern, action, ignore_case=True)


def resource_matches(pattern: str, resource: str) -> bool:
    if pattern == "*":
        return True
    if pattern.startswith("arn:") and resource.startswith("arn:"):
        # Wildcards match within an ARN segment (partition, service, Region, account, resource).
        p, r = pattern.split(":", 5), resource.split(":", 5)
        return len(p) == len(r) == 6 and all(glob(a, b, ignore_case=False) for a, b in zip(p, r))
    return glob(pattern, resource, ignore_case=False)


def lookup(context: dict[str, Any], key: str) -> Any:
    # Condition key names are case-insensitive in IAM.
    for name, value in context.items():
        if name.lower() == key.lower():
            return value
    return None


# Condition keys the evaluator compares (lower case, as IAM compares key names).
SINGLE_VALUED_KEYS = {"aws:requestedregion", "kms:granteeprincipal"}
MULTI_VALUED_KEYS = {"kms:grantoperations"}


def condition_holds(condition: Any, context: dict[str, Any]) -> tuple[bool, str]:
    if condition is None:
        return True, ""
    if not isinstance(condition, dict):
        return False, f"malformed Condition {condition!r}"
    for operator, block in condition.items():
        if not isinstance(block, dict):
            return False, f"malformed Condition block {operator}"
        for key, expected in block.items():
            wanted = as_list(expected)
            if not all(isinstance(w, str) for w in wanted):
                return False, f"{operator} {key}: non-string values {wanted!r}"
            actual = lookup(context, key)
            if operator == "StringEquals" and key.lower().startswith("aws:resourcetag/"):
                if not isinstance(actual, str) or actual not in wanted:
                    has = "absent" if actual is None else f"is {actual!r}"
                    return False, f"{key} {has}, the policy wants one of {wanted}"
            elif operator == "ForAnyValue:StringEquals" and key.lower() == "kms:resourcealiases":
                if not isinstance(actual, list) or not any(a in wanted for a in actual):
                    has = "absent" if actual is None else f"is {actual!r}"
                    return False, f"{key} {has}, the policy wants any of {wanted}"
            elif operator == "StringEquals" and key.lower() in SINGLE_VALUED_KEYS:
                if not isinstance(actual, str) or actual not in wanted:
                    has = "absent" if actual is None else f"is {actual!r}"
                    return False, f"{key} {has}, the policy wants one of {wanted}"
            elif operator == "ForAllValues:StringEquals" and key.lower() in MULTI_VALUED_KEYS:
                # As IAM does: true when the request has no values for the key.
                extra = [a for a in as_list(actual or []) if a not in wanted]
                if extra:
                    return False, f"{key} has {extra}, the policy allows only {wanted}"
            else:
                return False, f"condition {operator} on {key} is unknown to this checker"
    return True, ""


@dataclass
class Statement:
    name: str
    actions: list[str]
    resources: list[str]
    condition: Any


@dataclass
class Role:
    statements: list[Statement]
    documents: dict[str, Any]  # policy name -> resolved document
    managed_policy_arns: list[str]
    skipped: list[str]  # policies not created in this deployment

    def decide(self, action: str, resource: str, context: dict[str, Any]) -> tuple[bool, str]:
        granted, refused = [], []
        for st in self.statements:
            if not any(action_matches(p, action) for p in st.actions):
                continue
            if not any(resource_matches(p, resource) for p in st.resources):
                continue
            ok, why = condition_holds(st.condition, context)
            (granted if ok else refused).append(st.name if ok else f"{st.name}: {why}")
        if granted:
            return True, "by " + ", ".join(granted)
        return False, ("; ".join(refused) if refused else "no statement grants it")

    def granted_actions(self, resource: str, context: dict[str, Any]) -> set[str]:
        """Every action pattern some statement grants on this resource in this context."""
        out = set()
        for st in self.statements:
            if any(resource_matches(p, resource) for p in st.resources) and condition_holds(
                st.condition, context
            )[0]:
                out.update(st.actions)
        return out


def parse_statements(document: Any, policy: str) -> list[Statement]:
    if not isinstance(document, dict):
        raise TemplateError(f"policy {policy}: PolicyDocument is {document!r}")
    statements = []
    for i, st in enumerate(as_list(document.get("Statement", []))):
        name = f"{policy}/{st.get('Sid', i)}" if isinstance(st, dict) else f"{policy}/{i}"
        if not isinstance(st, dict):
            raise TemplateError(f"{name}: statement is {st!r}")
        extra = set(st) - {"Sid", "Effect", "Action", "Resource", "Condition"}
        if extra or st.get("Effect") != "Allow":
            raise TemplateError(
                f"{name}: Effect {st.get('Effect')!r} / elements {sorted(extra)} are not supported"
                " by this checker (only Allow with Action, Resource, Condition)"
            )
        actions, resources = as_list(st.get("Action")), as_list(st.get("Resource"))
        for value in actions + resources:
            if not isinstance(value, str):
                raise TemplateError(f"{name}: Action/Resource entry {value!r} is not a string")
        statements.append(Statement(name, actions, resources, st.get("Condition")))
    return statements


def function_role(template: dict[str, Any], r: Resolver, name: str = FUNCTION) -> Role:
    resources = template["Resources"]
    function = resources.get(name, {})
    if function.get("Type") != "AWS::Lambda::Function":
        raise TemplateError(f"no AWS::Lambda::Function {name} after the SAM transform")
    role_ref = function.get("Properties", {}).get("Role")
    getatt = role_ref.get("Fn::GetAtt") if isinstance(role_ref, dict) else None
    if isinstance(getatt, str):
        getatt = getatt.split(".", 1)
    if not (isinstance(getatt, list) and len(getatt) == 2 and getatt[1] == "Arn"):
        raise TemplateError(f"{name}.Role is {role_ref!r}, not a role of this template")
    role_id = getatt[0]
    role = resources.get(role_id, {})
    # A conditional role (a conditional function) counts when its condition holds.
    if role.get("Type") != "AWS::IAM::Role" or (
        "Condition" in role and not r.condition(role["Condition"], role_id)
    ):
        raise TemplateError(f"{role_id} is not an AWS::IAM::Role created in this deployment")
    props = role.get("Properties", {})
    if "PermissionsBoundary" in props:
        raise TemplateError(f"{role_id}: PermissionsBoundary is not supported by this checker")

    documents: dict[str, Any] = {}
    where = f"Resources.{role_id}.Properties"
    for i, policy in enumerate(r.resolve(props.get("Policies", []), f"{where}.Policies")):
        documents[f"{role_id}/{policy.get('PolicyName', i)}"] = policy.get("PolicyDocument")
    managed = r.resolve(props.get("ManagedPolicyArns", []), f"{where}.ManagedPolicyArns")

    skipped = []
    role_names = {f"<Ref:{role_id}>"}
    for logical_id, resource in resources.items():
        kind = resource.get("Type")
        if kind not in ("AWS::IAM::RolePolicy", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            continue
        rprops = resource.get("Properties", {})
        rwhere = f"Resources.{logical_id}.Properties"
        roles = (
            [r.resolve(rprops.get("RoleName"), f"{rwhere}.RoleName")]
            if kind == "AWS::IAM::RolePolicy"
            else r.resolve(rprops.get("Roles", []), f"{rwhere}.Roles")
        )
        if not role_names & set(as_list(roles)):
            continue
        if "Condition" in resource and not r.condition(resource["Condition"], logical_id):
            skipped.append(f"{logical_id} (Condition {resource['Condition']} is false)")
            continue
        documents[logical_id] = r.resolve(rprops.get("PolicyDocument"), f"{rwhere}.PolicyDocument")

    statements: list[Statement] = []
    for name, document in documents.items():
        if isinstance(document, str):
            try:
                documents[name] = document = json.loads(document)
            except json.JSONDecodeError as err:
                raise TemplateError(f"policy {name}: PolicyDocument is not JSON: {err}") from err
        statements.extend(parse_statements(document, name))
    return Role(statements, documents, managed, skipped)


def environment(template: dict[str, Any], r: Resolver, name: str, function: str = FUNCTION) -> Any:
    variables = template["Resources"][function].get("Properties", {}).get("Environment", {})
    node = variables.get("Variables", {})
    if name not in node:
        return None
    return r.resolve(node[name], f"Resources.{function}.Properties.Environment.Variables.{name}")


def strings_in(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in strings_in(k) + strings_in(v)]
    if isinstance(node, list):
        return [s for v in node for s in strings_in(v)]
    return [node] if isinstance(node, str) else []


# ---------------------------------------------------------------------------------------------
# The checks


@dataclass
class Key:
    label: str
    arn: str
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)

    def context(self) -> dict[str, Any]:
        ctx: dict[str, Any] = {f"aws:ResourceTag/{k}": v for k, v in self.tags.items()}
        if self.aliases:
            ctx["kms:ResourceAliases"] = list(self.aliases)
        return ctx


@dataclass
class Deployment:
    mode: str
    overrides: dict[str, str]
    managed: list[Key]  # keys the function must be able to audit and correct
    unmanaged: list[Key]  # keys of the account it must not correct
    managed_keys_env: str
    tag_condition: dict[str, str] | None  # the expected aws:ResourceTag condition, tag mode only


K1, K2, K3, K4 = key_arn(1), key_arn(2), key_arn(3), key_arn(4)
DEFAULT_TAG = {"guardrails:managed": "true"}

DEPLOYMENTS = [
    Deployment(
        "tag (defaults)",
        {},
        managed=[Key("key tagged guardrails:managed=true", K1, tags=DEFAULT_TAG)],
        unmanaged=[
            Key("untagged key", K3),
            Key("key tagged guardrails:managed=false", K2, tags={"guardrails:managed": "false"}),
            Key("untagged key with alias alias/app-data", K4, aliases=["alias/app-data"]),
        ],
        managed_keys_env="",
        tag_condition={"aws:ResourceTag/guardrails:managed": "true"},
    ),
    Deployment(
        "tag team=sec",
        {"ManagedTag": "team=sec", "ManagedTagKey": "team", "ManagedTagValue": "sec"},
        managed=[Key("key tagged team=sec", K1, tags={"team": "sec"})],
        unmanaged=[
            Key("key tagged guardrails:managed=true", K2, tags=DEFAULT_TAG),
            Key("key tagged team=other", K3, tags={"team": "other"}),
        ],
        managed_keys_env="",
        tag_condition={"aws:ResourceTag/team": "sec"},
    ),
    Deployment(
        "arn-list",
        {"ManagedKeyArns": f"{K1},{K2}"},
        managed=[Key("listed key 1, untagged", K1), Key("listed key 2, untagged", K2)],
        unmanaged=[
            Key("unlisted key tagged guardrails:managed=true", K3, tags=DEFAULT_TAG),
            Key("unlisted untagged key", K4),
            Key("listed key 1's id in us-east-1", key_arn(1, region="us-east-1"), tags=DEFAULT_TAG),
        ],
        managed_keys_env=f"{K1},{K2}",
        tag_condition=None,
    ),
    Deployment(
        "alias",
        {"ManagedKeyAliases": "alias/app-data"},
        managed=[
            Key("untagged key with alias/app-data", K1, aliases=["alias/app-data"]),
            Key("untagged key with alias/legacy and alias/app-data", K2,
                aliases=["alias/legacy", "alias/app-data"]),
        ],
        unmanaged=[
            Key("key with alias/other, tagged guardrails:managed=true", K3,
                aliases=["alias/other"], tags=DEFAULT_TAG),
            Key("key with alias/app-data-old", K4, aliases=["alias/app-data-old"]),
            Key("key without aliases", key_arn(5)),
        ],
        managed_keys_env="alias/app-data",
        tag_condition=None,
    ),
    Deployment(
        "arn-list+alias",
        {"ManagedKeyArns": f"{K1},{K2}", "ManagedKeyAliases": "alias/app-data,alias/billing"},
        managed=[
            Key("listed key 1, untagged", K1),
            Key("listed key 2, untagged", K2),
            Key("unlisted untagged key with alias/billing", K3, aliases=["alias/billing"]),
        ],
        unmanaged=[
            Key("unlisted key with alias/other, tagged guardrails:managed=true", K4,
                aliases=["alias/other"], tags=DEFAULT_TAG),
        ],
        managed_keys_env=f"{K1},{K2},alias/app-data,alias/billing",
        tag_condition=None,
    ),
]


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []

    def check(self, mode: str, what: str, ok: bool, detail: str = "") -> None:
        line = f"[{mode}] {what}"
        if ok:
            self.passed += 1
            print(f"ok   {line}")
        else:
            self.failed.append(line)
            print(f"FAIL {line}" + (f": {detail}" if detail else ""))

    def decisions(
        self, mode: str, role: Role, actions: list[str], resource: str, context: dict[str, Any],
        label: str, allowed: bool,
    ) -> None:
        wrong: dict[str, list[str]] = {}  # the wrong decision and its reason -> actions
        for action in actions:
            got, why = role.decide(action, resource, context)
            if got != allowed:
                wrong.setdefault(f"{'allowed' if got else 'denied'} ({why})", []).append(action)
        names = ", ".join(
            a.split(":", 1)[1] if len(actions) > 1 and a.startswith("kms:") and a != "kms:*" else a
            for a in actions
        )
        self.check(mode, f"{names} on {label}: {'allowed' if allowed else 'denied'}",
                   not wrong, "; ".join(f"{', '.join(a)} {w}" for w, a in wrong.items()))


def check_deployment(template: dict[str, Any], d: Deployment, report: Report) -> None:
    mode = d.mode
    try:
        translated = sam_translate(template, d.overrides)
        resolver = Resolver(translated, parameter_values(translated, d.overrides))
        role = function_role(translated, resolver)
        managed_keys = environment(translated, resolver, "MANAGED_KEYS")
        managed_tag = environment(translated, resolver, "MANAGED_TAG")
        dlq_arn = resolver.resolve({"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}, "DeadLetterQueue")
    except TemplateError as err:
        report.check(mode, "resolve the function's role and environment", False, str(err))
        return

    # The resolved policies: nothing left unsubstituted, only managed policies known to hold no
    # KMS or SQS permissions.
    leftovers = sorted({s for s in strings_in(role.documents) if "${" in s or "Fn::" in s})
    report.check(mode, "role policies fully resolved (no ${...} left)", not leftovers,
                 f"unresolved: {leftovers}")
    unknown_managed = sorted(set(role.managed_policy_arns) - KNOWN_MANAGED_POLICIES)
    report.check(mode, "managed policies only AWSLambdaBasicExecutionRole/AWSXrayWriteOnlyAccess",
                 not unknown_managed, f"also {unknown_managed}")

    # The tag statement: present with the resolved condition key in tag mode, absent otherwise.
    tag_conditions: dict[str, list[str]] = {}
    for st in role.statements:
        if isinstance(st.condition, dict):
            for operator, block in st.condition.items():
                for key, value in (block.items() if isinstance(block, dict) else []):
                    if "resourcetag" in key.lower():
                        tag_conditions[f"{st.name}: {operator} {key}"] = as_list(value)
    if d.tag_condition is not None:
        expected = {
            f"PolicyDriftTaggedKeysPolicy/AuditAndCorrectTaggedKeys: StringEquals {k}": [v]
            for k, v in d.tag_condition.items()
        }
        report.check(mode, f"tag condition is {d.tag_condition}", tag_conditions == expected,
                     f"tag conditions in the role: {tag_conditions or 'none'}")
    else:
        report.check(mode, "no tag-scoped statement in the role", not tag_conditions,
                     f"found {tag_conditions} (skipped policies: {role.skipped})")

    report.check(mode, f"MANAGED_KEYS == {d.managed_keys_env!r}",
                 managed_keys == d.managed_keys_env, f"it is {managed_keys!r}")
    if d.managed_keys_env:
        entries = managed_keys.split(",") if isinstance(managed_keys, str) else []
        report.check(mode, "MANAGED_KEYS has no empty entries", all(entries),
                     f"entries {entries}")
    expected_tag = d.overrides.get("ManagedTag", "guardrails:managed=true")
    report.check(mode, f"MANAGED_TAG == {expected_tag!r}", managed_tag == expected_tag,
                 f"it is {managed_tag!r}")

    # Finding and reading keys, on any key of the account and nothing else.
    for action in FIND:
        report.decisions(mode, role, [action], "*", {}, '"*"', True)
    any_key = Key("an untagged key of the account", key_arn(9))
    us_key = Key("a key of the account in us-east-1", key_arn(8, region="us-east-1"))
    foreign = Key("a key of another account", key_arn(7, account=OTHER_ACCOUNT), tags=DEFAULT_TAG)
    for key in (any_key, us_key):
        report.decisions(mode, role, READ, key.arn, key.context(), key.label, True)
    report.decisions(mode, role, READ + CORRECT, foreign.arn, foreign.context(), foreign.label,
                     False)

    # Audit and correction: on the managed keys only.
    for key in d.managed:
        report.decisions(mode, role, CORRECT, key.arn, key.context(), key.label, True)
    for key in d.unmanaged:
        report.decisions(mode, role, CORRECT, key.arn, key.context(), key.label, False)

    # Least privilege: never the destructive or delegating actions, nor all of KMS.
    for key in d.managed + [any_key]:
        report.decisions(mode, role, FORBIDDEN, key.arn, key.context(), key.label, False)
    report.decisions(mode, role, FORBIDDEN, "*", {}, '"*"', False)
    expected = {a.lower() for a in FIND + READ + CORRECT}
    for key in d.managed:
        got = {a.lower() for a in role.granted_actions(key.arn, key.context())}
        report.check(mode, f"exactly find, read and correct granted on {key.label}",
                     got == expected, f"extra {sorted(got - expected)}, missing {sorted(expected - got)}")
    expected = {a.lower() for a in FIND + READ}
    for key in [any_key] + d.unmanaged:
        got = {a.lower() for a in role.granted_actions(key.arn, key.context())}
        report.check(mode, f"exactly find and read granted on {key.label}",
                     got == expected, f"extra {sorted(got - expected)}, missing {sorted(expected - got)}")

    # The dead-letter queue, for notifications SNS did not take.
    report.decisions(mode, role, ["sqs:SendMessage"], dlq_arn, {}, "the dead-letter queue", True)
    other_queue = f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:another-queue"
    report.decisions(mode, role, ["sqs:SendMessage"], other_queue, {}, "another queue", False)


# ---------------------------------------------------------------------------------------------
# replica-grant-validator

RGV_FUNCTION = "ReplicaGrantValidatorFunction"
REPLICATION_ROLE = f"arn:{PARTITION}:iam::{ACCOUNT}:role/s3-replication"
BUCKETS = ["app-data-eu-west-1", "app-logs-eu-west-1"]
RGV_READ = ["kms:GetKeyPolicy", "kms:ListGrants"]
RGV_FORBIDDEN = [
    "kms:PutKeyPolicy",
    "kms:RetireGrant",
    "kms:ScheduleKeyDeletion",
    "kms:DisableKey",
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:*",
]
# What S3 replication needs on a destination replica.
REPLICATION_OPERATIONS = ["Encrypt", "GenerateDataKey"]


def mrk_arn(region: str, account: str = ACCOUNT) -> str:
    return f"arn:{PARTITION}:kms:{region}:{account}:key/mrk-1234abcd12ab34cd56ef1234567890ab"


def grant_request(key: str, grantee: str = REPLICATION_ROLE,
                  operations: list[str] | None = None) -> dict[str, Any]:
    """The request context of CreateGrant: a KMS call is made in the key's Region."""
    return {
        "aws:RequestedRegion": key.split(":")[3],
        "kms:GranteePrincipal": grantee,
        "kms:GrantOperations": list(operations or REPLICATION_OPERATIONS),
    }


@dataclass
class ReplicaDeployment:
    mode: str
    overrides: dict[str, str]
    revokes: bool  # StrictGrants: RevokeGrant in the replication Regions


RGV_BASE = {
    "ReplicationRegions": "us-west-2,eu-central-1",
    "ReplicationRoleArns": REPLICATION_ROLE,
    "ReplicationBuckets": ",".join(BUCKETS),
}
RGV_DEPLOYMENTS = [
    ReplicaDeployment("replicas", dict(RGV_BASE), revokes=False),
    ReplicaDeployment("replicas strict", dict(RGV_BASE, StrictGrants="true", Mode="enforce"),
                      revokes=True),
]


def check_replica_grant_validator_absent(template: dict[str, Any], report: Report) -> None:
    mode = "replicas off (defaults)"
    try:
        translated = sam_translate(template, {})
        resolver = Resolver(translated, parameter_values(translated, {}))
        resources = translated["Resources"]
        created = [
            logical_id for logical_id, resource in resources.items()
            if logical_id.startswith("ReplicaGrantValidator")
            and not ("Condition" in resource and not resolver.condition(resource["Condition"]))
        ]
    except TemplateError as err:
        report.check(mode, "resolve the template", False, str(err))
        return
    report.check(mode, "no replica-grant-validator resource without ReplicationRegions",
                 not created, f"created: {created}")


def check_replica_deployment(template: dict[str, Any], d: ReplicaDeployment, report: Report) -> None:
    mode = d.mode
    try:
        translated = sam_translate(template, d.overrides)
        resolver = Resolver(translated, parameter_values(translated, d.overrides))
        role = function_role(translated, resolver, RGV_FUNCTION)
        env = {
            name: environment(translated, resolver, name, RGV_FUNCTION)
            for name in ("REPLICATION_REGIONS", "REPLICATION_ROLE_ARNS", "REPLICATION_BUCKETS",
                         "STRICT_GRANTS", "SELF_ROLE_ARN", "MANAGED_TAG")
        }
        dlq_arn = resolver.resolve({"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}, "DeadLetterQueue")
        rule = translated["Resources"].get(f"{RGV_FUNCTION}BucketReplicationChanged", {})
        pattern = resolver.resolve(rule.get("Properties", {}).get("EventPattern"),
                                   f"{RGV_FUNCTION}BucketReplicationChanged.EventPattern")
    except TemplateError as err:
        report.check(mode, "resolve the function's role and environment", False, str(err))
        return

    leftovers = sorted({s for s in strings_in(role.documents) if "${" in s or "Fn::" in s})
    report.check(mode, "role policies fully resolved (no ${...} left)", not leftovers,
                 f"unresolved: {leftovers}")
    unknown_managed = sorted(set(role.managed_policy_arns) - KNOWN_MANAGED_POLICIES)
    report.check(mode, "managed policies only AWSLambdaBasicExecutionRole/AWSXrayWriteOnlyAccess",
                 not unknown_managed, f"also {unknown_managed}")

    expected_env = {
        "REPLICATION_REGIONS": d.overrides["ReplicationRegions"],
        "REPLICATION_ROLE_ARNS": d.overrides["ReplicationRoleArns"],
        "REPLICATION_BUCKETS": d.overrides["ReplicationBuckets"],
        "STRICT_GRANTS": "true" if d.revokes else "false",
        # Its own role (loop prevention), not the function: no circular dependency.
        "SELF_ROLE_ARN": f"<GetAtt:{RGV_FUNCTION}Role.Arn>",
        "MANAGED_TAG": "guardrails:managed=true",
    }
    for name, value in expected_env.items():
        report.check(mode, f"{name} == {value!r}", env[name] == value, f"it is {env[name]!r}")
    bucket_names = (((pattern or {}).get("detail") or {}).get("requestParameters") or {}).get(
        "bucketName")
    report.check(mode, f"BucketReplicationChanged matches exactly the buckets {BUCKETS}",
                 bucket_names == BUCKETS, f"it matches {bucket_names!r}")

    # Finding keys, deciding if they are managed, and reading multi-Region keys anywhere.
    for action in FIND:
        report.decisions(mode, role, [action], "*", {}, '"*"', True)
    single = key_arn(1, region="us-west-2")
    foreign = mrk_arn("us-west-2", account=OTHER_ACCOUNT)
    for region in ("eu-west-1", "us-west-2", "eu-central-1", "ap-southeast-2"):
        key = mrk_arn(region)
        ctx = {"aws:RequestedRegion": region}
        report.decisions(mode, role, READ + RGV_READ, key, ctx,
                         f"a multi-Region key in {region}", True)
    report.decisions(mode, role, READ, single, {"aws:RequestedRegion": "us-west-2"},
                     "a single-Region key", True)
    report.decisions(mode, role, RGV_READ, single, {"aws:RequestedRegion": "us-west-2"},
                     "a single-Region key", False)
    report.decisions(mode, role, READ + RGV_READ, foreign, {"aws:RequestedRegion": "us-west-2"},
                     "a multi-Region key of another account", False)

    # CreateGrant: multi-Region keys, replication Regions, the replication role, no delegation.
    for region in ("us-west-2", "eu-central-1"):
        key = mrk_arn(region)
        report.decisions(mode, role, ["kms:CreateGrant"], key, grant_request(key),
                         f"a replica in replication Region {region}, to the replication role", True)
    for region in ("eu-west-1", "ap-southeast-2"):
        key = mrk_arn(region)
        report.decisions(mode, role, ["kms:CreateGrant"], key, grant_request(key),
                         f"a multi-Region key in {region} (not a replication Region)", False)
    report.decisions(mode, role, ["kms:CreateGrant"], single, grant_request(single),
                     "a single-Region key in us-west-2", False)
    replica = mrk_arn("us-west-2")
    for grantee, label in (
        (f"arn:{PARTITION}:iam::{ACCOUNT}:role/Developer", "another role"),
        (f"<GetAtt:{RGV_FUNCTION}Role.Arn>", "the function's own role"),
        ("s3.amazonaws.com", "the S3 service principal"),
    ):
        report.decisions(mode, role, ["kms:CreateGrant"], replica, grant_request(replica, grantee),
                         f"the us-west-2 replica, to {label}", False)
    report.decisions(mode, role, ["kms:CreateGrant"], replica,
                     grant_request(replica, operations=["Decrypt", "CreateGrant"]),
                     "the us-west-2 replica, a grant that may create grants", False)
    report.decisions(mode, role, ["kms:CreateGrant"], foreign, grant_request(foreign),
                     "a multi-Region key of another account", False)

    # RevokeGrant: StrictGrants only, and then as narrow as CreateGrant's key and Region.
    report.decisions(mode, role, ["kms:RevokeGrant"], replica, {"aws:RequestedRegion": "us-west-2"},
                     "the us-west-2 replica", d.revokes)
    report.decisions(mode, role, ["kms:RevokeGrant"], mrk_arn("ap-southeast-2"),
                     {"aws:RequestedRegion": "ap-southeast-2"},
                     "a multi-Region key in ap-southeast-2", False)
    report.decisions(mode, role, ["kms:RevokeGrant"], single, {"aws:RequestedRegion": "us-west-2"},
                     "a single-Region key in us-west-2", False)

    # Never a policy write or the destructive or cryptographic actions.
    for key in (replica, mrk_arn("eu-west-1"), single):
        report.decisions(mode, role, RGV_FORBIDDEN, key, grant_request(key), key, False)
    report.decisions(mode, role, RGV_FORBIDDEN, "*", {}, '"*"', False)
    expected = {a.lower() for a in FIND + READ + RGV_READ + ["kms:CreateGrant"]}
    if d.revokes:
        expected.add("kms:revokegrant")
    got = {a.lower() for a in role.granted_actions(replica, grant_request(replica))
           if a.lower().startswith("kms:") or a.lower().startswith("tag:")}
    report.check(mode, "exactly find, read, CreateGrant"
                 + (" and RevokeGrant" if d.revokes else "") + " granted on the us-west-2 replica",
                 got == expected, f"extra {sorted(got - expected)}, missing {sorted(expected - got)}")

    # The configured buckets' replication rules, no other bucket's, and no S3 write.
    for bucket in BUCKETS:
        report.decisions(mode, role, ["s3:GetReplicationConfiguration"],
                         f"arn:{PARTITION}:s3:::{bucket}", {}, f"bucket {bucket}", True)
    for bucket in ["app-data-us-west-2"] + [f"{b}-copy" for b in BUCKETS]:
        report.decisions(mode, role, ["s3:GetReplicationConfiguration"],
                         f"arn:{PARTITION}:s3:::{bucket}", {}, f"bucket {bucket}", False)
    report.decisions(mode, role, ["s3:PutReplicationConfiguration", "s3:GetObject"],
                     f"arn:{PARTITION}:s3:::{BUCKETS[0]}", {}, f"bucket {BUCKETS[0]}", False)

    # Notifications: the topic, its key, the dead-letter queue.
    topic = f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:<GetAtt:NotificationTopic.TopicName>"
    report.decisions(mode, role, ["sns:Publish"], topic, {}, "the notification topic", True)
    report.decisions(mode, role, ["kms:GenerateDataKey", "kms:Decrypt"],
                     "<GetAtt:NotificationKey.Arn>", {}, "the notification key", True)
    report.decisions(mode, role, ["sqs:SendMessage"], dlq_arn, {}, "the dead-letter queue", True)
    other_queue = f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:another-queue"
    report.decisions(mode, role, ["sqs:SendMessage"], other_queue, {}, "another queue", False)


SWEEP_QUEUE = "<GetAtt:SweepQueue.Arn>"
STATE_TABLE = "<GetAtt:StateTable.Arn>"
QUEUE_ACTIONS = ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage",
                 "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
MEMBER = "444455556666"


def check_organization(template: dict[str, Any], report: Report) -> None:
    """policy-drift's fanned-out sweeps and the member role, on and off: the queue and the
    progress writes only with FanOutSweeps=true, sts:AssumeRole on exactly the member role only
    with MemberRoleName, and the environment that tells the code so."""
    member_role = f"arn:{PARTITION}:iam::{MEMBER}:role/kms-guardrails-member"
    for mode, overrides, fans_out, members in [
        ("organization off", {}, False, False),
        ("fan-out", {"FanOutSweeps": "true"}, True, False),
        ("fan-out + members", {"FanOutSweeps": "true", "MemberRoleName": "kms-guardrails-member",
                               "MemberExternalId": "hub-7f3a",
                               "SweepAccounts": f"{MEMBER},777788889999"}, True, True),
    ]:
        try:
            translated = sam_translate(template, overrides)
            resolver = Resolver(translated, parameter_values(translated, overrides))
            role = function_role(translated, resolver)
            queue_url = environment(translated, resolver, "SWEEP_QUEUE_URL")
            accounts = environment(translated, resolver, "SWEEP_ACCOUNTS")
        except TemplateError as err:
            report.check(mode, "resolve the function's role and environment", False, str(err))
            continue
        report.decisions(mode, role, QUEUE_ACTIONS, SWEEP_QUEUE, {}, "the sweep queue", fans_out)
        report.decisions(mode, role, ["dynamodb:UpdateItem", "dynamodb:GetItem"], STATE_TABLE, {},
                         "the state table", fans_out)
        other_queue = f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:another-queue"
        report.decisions(mode, role, QUEUE_ACTIONS, other_queue, {}, "another queue", False)
        report.check(mode, "SWEEP_QUEUE_URL names the sweep queue only when fanning out",
                     queue_url == ("<Ref:SweepQueue>" if fans_out else ""), f"it is {queue_url!r}")
        report.decisions(mode, role, ["sts:AssumeRole"], member_role, {}, "the member role",
                         members)
        other_role = f"arn:{PARTITION}:iam::{MEMBER}:role/Admin"
        report.decisions(mode, role, ["sts:AssumeRole"], other_role, {}, "another role", False)
        expected_accounts = f"{MEMBER},777788889999" if members else ""
        report.check(mode, f"SWEEP_ACCOUNTS == {expected_accounts!r}",
                     accounts == expected_accounts, f"it is {accounts!r}")


def main(argv: list[str]) -> int:
    if len(argv) > 2:
        print(f"usage: {argv[0]} [TEMPLATE]", file=sys.stderr)
        return 2
    path = Path(argv[1]) if len(argv) == 2 else Path(__file__).resolve().parent.parent / "template.yaml"
    report = Report()
    try:
        template = load_template(path)
    except TemplateError as err:
        report.check("all modes", f"load {path}", False, str(err))
        template = None
    if template is not None:
        for deployment in DEPLOYMENTS:
            check_deployment(template, deployment, report)
        check_organization(template, report)
        check_replica_grant_validator_absent(template, report)
        for replica_deployment in RGV_DEPLOYMENTS:
            check_replica_deployment(template, replica_deployment, report)
    if report.failed:
        print(f"template IAM checks: {report.passed} passed, {len(report.failed)} failed"
              f" ({path}):", file=sys.stderr)
        for failure in report.failed:
            print(f"  failed {failure}", file=sys.stderr)
        return 1
    print(f"template IAM checks: {report.passed} passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

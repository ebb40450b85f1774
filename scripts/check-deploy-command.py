#!/usr/bin/env python3
"""Offline check of the command that deploys policy-drift alone with cargo lambda.

`cargo lambda deploy --dry` locates and packages the binary and prints what it would deploy,
without AWS credentials and without any AWS call. This script runs it with the flags the
README gives, with every AWS credential source switched off, and checks what it
prints against template.yaml: an arm64 package, provided.al2023, the Globals' memory and
timeout, X-Ray active, the given role, and exactly the environment variables the template sets
on PolicyDriftFunction (and in Globals). It catches the two ways the deploy goes wrong quietly:
a stale or x86_64 binary, and an environment cargo lambda could not parse (the dry run then
prints `env_options: {}`: an unquoted JSON value in the env file, or a comma in an --env-var).

Run from the repository root with the template virtualenv (for its YAML loader that reads
CloudFormation's short-form tags) and cargo-lambda on the PATH:

    PATH=$PWD/.venv/lambda/bin:$PATH .venv/template/bin/python scripts/check-deploy-command.py [--build]

--build first runs `cargo lambda build --release --arm64 -j 1 -p policy-drift`. Prints one
line per check and "deploy dry-run checks: N passed"; exits 1 on any failure.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from cfnlint.decode import cfn_yaml

FUNCTION = "PolicyDriftFunction"
BINARY = "policy-drift"
# The name the standalone copy would get; the dry run does not look it up.
DEPLOY_NAME = "kms-guardrails-policy-drift-dev"
REGION = "eu-west-1"
ROLE = "arn:aws:iam::111122223333:role/kms-guardrails-PolicyDriftFunctionRole-EXAMPLE"

# Every source the AWS SDK would take credentials or a Region from, switched off.
OFFLINE = {
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_EC2_METADATA_DISABLED": "true",
}
UNSET = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
]


def sample_value(node, parameters) -> str:
    """A value of the template's shape for a dry run: a parameter's default, else a marker."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and list(node) == ["Ref"] and node["Ref"] in parameters:
        return str(parameters[node["Ref"]].get("Default", ""))
    if isinstance(node, dict) and list(node) == ["Fn::Join"]:
        sep, items = node["Fn::Join"]
        if isinstance(items, dict) and list(items) == ["Ref"] and items["Ref"] in parameters:
            return str(parameters[items["Ref"]].get("Default", ""))
    return "from-the-stack"


def main(argv: list[str]) -> int:
    root = Path.cwd()
    template = cfn_yaml.load(str(root / "template.yaml"))
    parameters = template["Parameters"]
    globals_ = template["Globals"]["Function"]
    variables = dict(globals_.get("Environment", {}).get("Variables", {}))
    variables.update(template["Resources"][FUNCTION]["Properties"]["Environment"]["Variables"])

    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env.update(OFFLINE)

    if "--build" in argv:
        subprocess.run(
            ["cargo", "lambda", "build", "--release", "--arm64", "-j", "1", "-p", BINARY],
            check=True,
            env=env,
        )

    with tempfile.TemporaryDirectory() as tmp:
        env_file = Path(tmp) / f"{BINARY}.env"
        # Single quotes: dotenv takes the value literally (JSON, commas); none holds a quote here.
        lines = [f"{name}='{sample_value(value, parameters)}'" for name, value in variables.items()]
        env_file.write_text("\n".join(lines) + "\n")
        command = [
            "cargo", "lambda", "deploy", "--dry",
            "--region", REGION,
            "--iam-role", ROLE,
            "--memory", str(globals_["MemorySize"]),
            "--timeout", str(globals_["Timeout"]),
            "--tracing", "active",
            "--env-file", str(env_file),
            "--binary-name", BINARY,
            DEPLOY_NAME,
        ]
        print("$ " + " ".join(command))
        run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    out = run.stdout + run.stderr
    print(out.strip())

    passed = 0
    failed = 0

    def check(what: str, ok: bool) -> None:
        nonlocal passed, failed
        print(f"{'ok  ' if ok else 'FAIL'} {what}")
        if ok:
            passed += 1
        else:
            failed += 1

    check("the dry run succeeds without credentials", run.returncode == 0)
    check(f"the package is target/lambda/{BINARY}/bootstrap.zip",
          f"target/lambda/{BINARY}/bootstrap.zip" in out)
    check("architecture arm64 (read from the binary, as template.yaml's Architectures)",
          re.search(r"architecture arm64\b", out) is not None)
    check("runtime provided.al2023", '- runtime: "provided.al2023"' in out)
    check(f"memory {globals_['MemorySize']} as Globals",
          f"memory: Some(Memory({globals_['MemorySize']}))" in out)
    check(f"timeout {globals_['Timeout']} as Globals",
          f"timeout: Some(Timeout({globals_['Timeout']}))" in out)
    check("tracing active as Globals", "tracing: Some(Active)" in out)
    check("the given role, none created", f'role: Some("{ROLE}")' in out)
    check(f"Region {REGION} (without --region the dry run assumes us-east-1)",
          f"- region: {REGION}" in out)
    shown = re.search(r"env_options: \{(.*)\}", out)
    keys = set(re.findall(r'"([A-Z0-9_]+)": ', shown.group(1))) if shown else set()
    check(f"the environment is exactly template.yaml's {len(variables)} variables",
          keys == set(variables))
    if keys != set(variables):
        print(f"     missing {sorted(set(variables) - keys)}, extra {sorted(keys - set(variables))}")

    print(f"deploy dry-run checks: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

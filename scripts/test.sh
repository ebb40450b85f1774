#!/usr/bin/env bash
# Every check CI runs: formatting, lints, unit and integration tests (against moto server,
# which the tests start themselves), and the SAM template.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings
echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --locked --workspace 2>&1 | tee "$log"
echo "== fuzzing: trigger parsing, policy parsing, the evaluator (20 s each, seeded)"
cargo run --locked -q -p integration-tests --bin fuzz -- --seconds-per-target 20 | tee -a "$log"
echo "== template.yaml: cfn-lint, sam validate --lint, checkov"
.venv/template/bin/cfn-lint template.yaml spoke.yaml
SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=eu-west-1 .venv/template/bin/sam validate --lint --template template.yaml
.venv/template/bin/checkov --skip-download --quiet --compact --framework cloudformation -f template.yaml -f spoke.yaml
echo "template.yaml and spoke.yaml: cfn-lint, sam validate and checkov passed"
echo "== template.yaml: the function role's IAM in every key-selection mode"
.venv/template/bin/python scripts/check-template-iam.py | tee -a "$log"

# One closing line for the whole run: the sum over every test binary.
awk '/^test result:/ { passed += $4; failed += $6; ignored += $8 }
     /^template IAM checks:/ { passed += $4 }
     /^fuzz [a-z]+ +[0-9]+ executions/ { fuzz_runs += $3; fuzz_crashes += $5 }
     END { printf "%d passed, %d failed, %d skipped; fuzzing: %d executions, %d crashes\n", passed, failed, ignored, fuzz_runs, fuzz_crashes }' "$log"

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
cargo test --locked --workspace
echo "== cfn-lint template.yaml"
.venv/lint/bin/cfn-lint template.yaml
echo "template.yaml: cfn-lint passed"

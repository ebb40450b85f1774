#!/usr/bin/env bash
# The main job locally: a function on one of its sample events against moto server, showing
# the key before and after and the notification sent. Needs no AWS account.
#   bash scripts/demo.sh [policy-drift] [put-key-policy|disable-key-rotation|schedule-key-deletion|
#                         disable-key|untag-resource|tag-resource|scheduled-sweep|sweep-part|
#                         per-key]
#   bash scripts/demo.sh root-access-revoker [put-key-policy|create-key|delete-role|
#                         update-assume-role-policy|scheduled-sweep]
#   bash scripts/demo.sh alarm-notifier [any sample name in events/alarm-notifier/ | scheduled-sweep]
#   bash scripts/demo.sh audit   # the kms-guardrails command line (audit, explain) against the emulator
#   MODE=report bash scripts/demo.sh        # dry run: nothing written, notification still sent
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec cargo run --quiet --locked -p integration-tests --bin local-demo -- "$@"

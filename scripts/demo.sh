#!/usr/bin/env bash
# The main job locally: policy-drift on a sample event against moto server, showing the key
# before and after and the notification sent. Needs no AWS account.
#   bash scripts/demo.sh [put-key-policy|disable-key-rotation|schedule-key-deletion|disable-key|
#                         untag-resource|tag-resource|scheduled-sweep]
#   MODE=report bash scripts/demo.sh        # dry run: nothing written, notification still sent
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec cargo run --quiet --locked -p integration-tests --bin local-demo -- "$@"

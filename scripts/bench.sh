#!/usr/bin/env bash
# Every benchmark in one command; prints numbers, asserts nothing:
#   1. per function: cold start (median, p95 over 30 starts against a fake Lambda Runtime API,
#      on an event it skips without any AWS call) and peak memory per sample event (3 runs each
#      against moto server; the samples' keys do not exist there, so each run resolves the key
#      and reports or skips, which the last response shows);
#   2. the arm64 Lambda packages (cargo lambda build);
#   3. policy-drift's sweep of 100, 1,000 and 10,000 keys in one account against moto: wall and
#      CPU time, requests per key next to the fewest possible, peak memory;
#   4. the fan-out model at 1,000 accounts x 10 Regions (bench-fanout).
#   bash scripts/bench.sh [--quick] [--only N]
#     --quick: 10 starts, sweeps of 100 and 1,000 keys; --only N: section N alone
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh lambda >/dev/null
runs=30
sizes=(100 1000 10000)
only=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) runs=10; sizes=(100 1000); shift ;;
        --only) only="$2"; shift 2 ;;
        *) echo "unknown argument $1: bash scripts/bench.sh [--quick] [--only N]" >&2; exit 2 ;;
    esac
done
section() { [[ -z "$only" || "$only" == "$1" ]]; }
functions=(policy-drift root-access-revoker alarm-notifier replica-grant-validator)
declare -A skip_event=(
    [policy-drift]=events/policy-drift/put-key-policy-by-self.json
    [root-access-revoker]=events/root-access-revoker/put-key-policy.json
    [alarm-notifier]=events/alarm-notifier/eventbridge-insufficient-data.json
    [replica-grant-validator]=events/replica-grant-validator/put-bucket-replication.json
)
cargo build --quiet --locked --release -p policy-drift -p root-access-revoker -p alarm-notifier \
    -p replica-grant-validator -p integration-tests --bins

if section 1; then
echo "== 1. cold start ($runs starts each) and peak memory per sample event"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
.venv/moto/bin/moto_server -p "$port" >/dev/null 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    curl -s "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1 && break
    sleep 0.2
done
for f in "${functions[@]}"; do
    echo "-- $f"
    python3 scripts/bench-cold-start.py "target/release/$f" --runs "$runs" --event "${skip_event[$f]}" \
        | grep -E "^(binary|cold_start_ms|rss_mb)"
    for sample in events/"$f"/*.json; do
        out=$(python3 scripts/bench-cold-start.py "target/release/$f" --runs 3 --event "$sample" \
            --endpoint "http://127.0.0.1:$port")
        # The largest of the three runs, and what the last one answered.
        rss=$(awk '/^rss_mb/ {print $12}' <<<"$out")
        answer=$(sed -n 's/^event: .*last response [a-z]*: //p' <<<"$out" | cut -c1-70)
        printf '   peak %5s MB  %-44s %s\n' "$rss" "$(basename "$sample")" "$answer"
    done
done

fi

if section 2; then
echo "== 2. arm64 packages (cargo lambda build --release --arm64 --output-format zip)"
packages=()
for f in "${functions[@]}"; do packages+=(-p "$f"); done
PATH="$PWD/.venv/lambda/bin:$PATH" cargo lambda build --quiet --release --arm64 --output-format zip "${packages[@]}"
for f in "${functions[@]}"; do
    printf '   %-26s %s bytes\n' "$f" "$(stat -c %s "target/lambda/$f/bootstrap.zip")"
done

fi

if section 3; then
echo "== 3. policy-drift sweeps in one account (moto on loopback, 1 key in 10 drifted)"
target/release/bench-sweep "${sizes[@]}"
fi

if section 4; then
echo "== 4. fan-out model: 1,000 accounts x 10 Regions"
target/release/bench-fanout
fi

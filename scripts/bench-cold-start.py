#!/usr/bin/env python3
"""Cold start and memory of a function binary, measured against a fake Lambda Runtime API.

For each run: start the binary with AWS_LAMBDA_RUNTIME_API pointing at a loopback server,
time process start -> first GET /runtime/invocation/next (the cold start), hand it one event,
wait for its response and read the process's peak RSS (VmHWM) before stopping it.

  python3 scripts/bench-cold-start.py target/release/policy-drift [--runs 30]
      [--event events/policy-drift/put-key-policy.json] [--endpoint http://127.0.0.1:5000]

With --endpoint (a moto server) the event's KMS calls go there; without it the default event is
one the function skips without any AWS call. Prints numbers; asserts nothing.
"""

import argparse
import http.server
import json
import os
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        state = self.server.state
        if state["first_next"] is None:
            state["first_next"] = time.perf_counter()
        if state["served"]:
            # Second poll: the invocation is finished; hold the connection until stopped.
            state["done"].wait(10)
            return
        state["served"] = True
        body = state["event"]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Lambda-Runtime-Aws-Request-Id", "bench-request-1")
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60_000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-west-1:111122223333:function:bench")
        self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        state = self.server.state
        length = int(self.headers.get("Content-Length", "0"))
        state["response"] = (self.path, self.rfile.read(length).decode())
        state["responded"] = time.perf_counter()
        with open(f"/proc/{state['pid']}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    state["rss_kb"] = int(line.split()[1])
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        state["done"].set()


def one_run(binary, event, endpoint):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    state = {"first_next": None, "served": False, "event": event, "done": threading.Event(), "rss_kb": None}
    server.state = state
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "ACCOUNT_ID": "111122223333",
        "NOTIFY_TOPIC_ARN": "arn:aws:sns:eu-west-1:111122223333:bench",
        "SELF_ROLE_ARN": "arn:aws:iam::111122223333:role/kms-guardrails-PolicyDriftFunctionRole-1A2B3C4D5E6F",
        "MODE": "report",
        # replica-grant-validator requires it; the other functions ignore it.
        "REPLICATION_REGIONS": "us-west-2",
    }
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    start = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state["pid"] = proc.pid
    finished = state["done"].wait(60)
    proc.kill()
    proc.wait()
    server.shutdown()
    if not finished or state["first_next"] is None:
        raise SystemExit("the function never answered; run it by hand to see why")
    return {
        "cold_start_ms": (state["first_next"] - start) * 1000,
        "first_invoke_ms": (state["responded"] - state["first_next"]) * 1000,
        "rss_mb": (state["rss_kb"] or 0) / 1024,
        "response": state["response"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binary")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--event", default=os.path.join(ROOT, "events/policy-drift/put-key-policy-by-self.json"))
    parser.add_argument("--endpoint")
    args = parser.parse_args()
    with open(args.event, "rb") as f:
        event = f.read()
    results = [one_run(args.binary, event, args.endpoint) for _ in range(args.runs)]
    path, body = results[-1]["response"]
    print(f"binary: {args.binary} ({os.path.getsize(args.binary) / 1e6:.2f} MB)")
    print(f"event:  {os.path.relpath(args.event, ROOT)}; last response {path.rsplit('/', 1)[-1]}: {body[:160]}")
    for name, unit in [("cold_start_ms", "ms"), ("first_invoke_ms", "ms"), ("rss_mb", "MB")]:
        values = sorted(r[name] for r in results)
        p90 = values[min(len(values) - 1, int(len(values) * 0.9))]
        p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
        print(f"{name:16} median {statistics.median(values):7.2f} {unit}  p90 {p90:7.2f} {unit}  p95 {p95:7.2f} {unit}  max {values[-1]:7.2f} {unit}  ({len(values)} runs)")


if __name__ == "__main__":
    sys.exit(main())

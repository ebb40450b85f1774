"""A fault-injecting HTTP proxy in front of moto server, for the tests that prove nothing is
lost or half-written when AWS misbehaves.

Each request, at the set rate and from a seeded generator (the same seed, the same faults in
the same order of arrival), gets one of:

  throttle        400 ThrottlingException (KMS, DynamoDB, SQS: JSON; SNS: Query XML)
  server_error    500 InternalFailure
  unavailable     503 ServiceUnavailable
  reset_before    the connection is reset before the request reaches moto
  reset_after     the request reaches moto, then the connection is reset: the call was made
                  and its answer is lost (the case that tests idempotency)
  slow            the request waits --slow seconds (longer than the client's attempt timeout),
                  then reaches moto: the client gave up on a call that still lands

With --deny-assume-role ROLE_ARN (repeatable), STS AssumeRole on that role is answered 403
AccessDenied, as AWS answers for a member role that is missing or does not trust the caller
(moto assumes any role). moto's own API (/moto-api/...) is never faulted. Every request forwarded to moto is logged, one
JSON line per request to --log: the operation, the fault, how long the answer took, and for
PutKeyPolicy the key and the policy sent, so a test can check every policy a key ever held.

    python tests/fault_proxy.py --port P --upstream http://127.0.0.1:M --rate 0.3 --seed 7 \
        --slow 2.5 --log faults.jsonl
"""

import argparse
import http.client
import http.server
import json
import random
import socket
import struct
import sys
import threading
import time
import urllib.parse

FAULTS = ["throttle", "server_error", "unavailable", "reset_before", "reset_after", "slow"]
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"}


class Faults:
    def __init__(self, rate, seed, slow, log_path, upstream, denied_roles=()):
        self.denied_roles = set(denied_roles)
        self.rate = rate
        self.slow = slow
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.log = open(log_path, "a", buffering=1) if log_path else None
        parsed = urllib.parse.urlparse(upstream)
        self.upstream = (parsed.hostname, parsed.port)

    def draw(self):
        with self.lock:
            if self.random.random() < self.rate:
                return self.random.choice(FAULTS)
            return None

    def record(self, entry):
        if self.log:
            with self.lock:
                self.log.write(json.dumps(entry) + "\n")


def operation(headers, body):
    target = headers.get("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1], "json"
    form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    return (form.get("Action") or ["unknown"])[0], "query"


def error_body(protocol, code, message):
    if protocol == "json":
        return json.dumps({"__type": code, "message": message}).encode(), "application/x-amz-json-1.1"
    xml = (
        "<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>"
        "<RequestId>fault-proxy</RequestId></ErrorResponse>" % (code, message)
    )
    return xml.encode(), "text/xml"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    faults = None

    def log_message(self, *args):
        pass

    def reset(self):
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.connection.close()

    def answer(self, status, body, content_type, extra=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def forward(self, body):
        connection = http.client.HTTPConnection(*self.faults.upstream, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Content-Length"] = str(len(body))
        connection.request(self.command, self.path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        result = (response.status, response.getheaders(), payload)
        connection.close()
        return result

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        op, protocol = operation(self.headers, body)
        if op == "AssumeRole" and protocol == "query":
            role = (urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("RoleArn") or [""])[0]
            if role in self.faults.denied_roles:
                self.faults.record({"operation": op, "fault": "denied", "role": role, "forwarded": False})
                payload, kind = error_body(protocol, "AccessDenied", "User: arn:aws:sts::111122223333:assumed-role/hub/fault-proxy is not authorized to perform: sts:AssumeRole on resource: " + role)
                return self.answer(403, payload, kind)
        fault = None if self.path.startswith("/moto-api") else self.faults.draw()
        entry = {"operation": op, "fault": fault}
        if op == "PutKeyPolicy" and protocol == "json":
            try:
                request = json.loads(body)
                entry["key"] = request.get("KeyId")
                entry["policy"] = request.get("Policy")
            except ValueError:
                entry["policy"] = None
        forwarded = fault in (None, "reset_after", "slow")
        entry["forwarded"] = forwarded
        if not forwarded:
            self.faults.record(entry)

        if fault == "throttle":
            payload, kind = error_body(protocol, "ThrottlingException" if protocol == "json" else "Throttling", "Rate exceeded")
            return self.answer(400, payload, kind)
        if fault == "server_error":
            payload, kind = error_body(protocol, "InternalFailure", "injected 500")
            return self.answer(500, payload, kind)
        if fault == "unavailable":
            payload, kind = error_body(protocol, "ServiceUnavailable", "injected 503")
            return self.answer(503, payload, kind)
        if fault == "reset_before":
            return self.reset()
        started = time.monotonic()
        if fault == "slow":
            time.sleep(self.faults.slow)
        status, headers, payload = self.forward(body)
        # How long the client waited: past its attempt timeout, it gave up on a call that landed.
        entry["seconds"] = round(time.monotonic() - started, 3)
        self.faults.record(entry)
        if fault == "reset_after":
            return self.reset()
        extra = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP and k.lower() != "content-type"]
        content_type = next((v for k, v in headers if k.lower() == "content-type"), "application/octet-stream")
        try:
            self.answer(status, payload, content_type, extra)
        except OSError:
            # The client gave up (a slow answer past its timeout).
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # Resets and abandoned slow answers end connections on purpose.
        pass


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--rate", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--slow", type=float, default=2.5)
    parser.add_argument("--log")
    parser.add_argument("--deny-assume-role", action="append", default=[])
    args = parser.parse_args(argv)
    Handler.faults = Faults(args.rate, args.seed, args.slow, args.log, args.upstream,
                            args.deny_assume_role)
    server = Server(("127.0.0.1", args.port), Handler)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])

#!/usr/bin/env python3
"""Fills an etcd member with keys through its v3 JSON gateway: transactions of at most 128
puts (etcd's default --max-txn-ops) and about 1 MiB (its request limit is 1.5 MiB). Used by the backup benchmark and the snapshot crash test.

usage: etcd-fill.py [--cacert CA --cert CERT --key KEY] URL COUNT [VALUE_BYTES] [PREFIX]
  e.g. etcd-fill.py --cacert ca.crt --cert client.crt --key client.key https://127.0.0.1:2379 100000 100 /bench/
An https URL is dialled with the client certificate given (the lab's etcd demands one).
Prints the store's revision when done."""
import base64
import http.client
import json
import ssl
import sys
import urllib.parse


def take_tls(args):
    """Removes --cacert/--cert/--key and their values from args; returns them."""
    tls = {}
    for flag in ("--cacert", "--cert", "--key"):
        if flag in args:
            i = args.index(flag)
            tls[flag] = args[i + 1]
            del args[i : i + 2]
    return tls


def main():
    args = sys.argv[1:]
    tls = take_tls(args)
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    url = urllib.parse.urlparse(args[0])
    count = int(args[1])
    size = int(args[2]) if len(args) > 2 else 100
    prefix = args[3] if len(args) > 3 else "/fill/"
    if url.scheme == "https":
        ctx = ssl.create_default_context(cafile=tls.get("--cacert"))
        if "--cert" in tls:
            ctx.load_cert_chain(tls["--cert"], tls.get("--key"))
        conn = http.client.HTTPSConnection(url.hostname, url.port or 2379, timeout=60, context=ctx)
    else:
        conn = http.client.HTTPConnection(url.hostname, url.port or 2379, timeout=60)
    b64 = lambda b: base64.b64encode(b).decode()
    per_txn = max(1, min(128, (1 << 20) // max(size, 1)))
    revision = 0
    for start in range(0, count, per_txn):
        ops = []
        for i in range(start, min(start + per_txn, count)):
            value = (b"%010d" % i) * (size // 10 + 1)
            ops.append({"request_put": {"key": b64(f"{prefix}{i:09d}".encode()), "value": b64(value[:size])}})
        conn.request("POST", "/v3/kv/txn", json.dumps({"success": ops}), {"Content-Type": "application/json"})
        answer = json.loads(conn.getresponse().read())
        if "header" not in answer:
            print(f"etcd refused the transaction at key {start}: {answer.get('message', answer)}", file=sys.stderr)
            return 1
        revision = int(answer["header"].get("revision", 0))
    print(revision)
    return 0


if __name__ == "__main__":
    sys.exit(main())

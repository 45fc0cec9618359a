#!/usr/bin/env python3
"""Fills an etcd member with keys through its v3 JSON gateway: transactions of at most 128
puts (etcd's default --max-txn-ops) and about 1 MiB (its request limit is 1.5 MiB). Used by the backup benchmark and the snapshot crash test.

usage: etcd-fill.py URL COUNT [VALUE_BYTES] [PREFIX]
  e.g. etcd-fill.py http://127.0.0.1:2379 100000 100 /bench/
Prints the store's revision when done."""
import base64
import http.client
import json
import sys
import urllib.parse


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    url = urllib.parse.urlparse(sys.argv[1])
    count = int(sys.argv[2])
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    prefix = sys.argv[4] if len(sys.argv) > 4 else "/fill/"
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

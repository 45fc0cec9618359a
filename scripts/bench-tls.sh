#!/usr/bin/env bash
# What mutual TLS costs the lab's etcd: the current lab (every member, probe and status
# call over mutual TLS) against the previous version (plain HTTP), measured in the same
# run and interleaved (old, new, old, new) so a noisy machine hits both alike. Each run is
# `n3x lab run --scenario formation` on a generated 5-host cluster (3 servers, no link
# impairment, so the network adds nothing). Prints a markdown table of medians: time to
# quorum, the whole bring-up, the probes' write latency (p50, p99) and acknowledged writes
# per second, with the ratio new/old.
#
# Usage (root): scripts/bench-tls.sh [RUNS]   (default 5)
# BASELINE_REF: the revision to compare against (default b33b7e5, the last plain-HTTP lab);
# it is built once in target/bench-baseline-tls.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
base_ref=${BASELINE_REF:-b33b7e5}
if [[ $(id -u) -ne 0 ]]; then
  echo "bench-tls: needs root (the lab creates network namespaces)" >&2
  exit 2
fi

cargo build -q --release -p n3x -p n3x-gen
new=$PWD/target/release/n3x
base_dir=$PWD/target/bench-baseline-tls
if [[ ! -x $base_dir/target/release/n3x || "$(cat "$base_dir/.bench-ref" 2>/dev/null)" != "$base_ref" ]]; then
  echo "bench-tls: building the baseline ($base_ref) in $base_dir" >&2
  git worktree remove --force "$base_dir" 2>/dev/null || rm -rf "$base_dir"
  git worktree prune
  git worktree add --detach "$base_dir" "$base_ref" >/dev/null
  (cd "$base_dir" && cargo build -q --release -p n3x)
  echo "$base_ref" >"$base_dir/.bench-ref"
fi
old=$base_dir/target/release/n3x

tmp=$(mktemp -d)
cleanup() {
  "$new" lab down --cluster tlsbench >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
./target/release/n3x-gen --hosts 5 --servers 3 --name tlsbench >"$tmp/inv.toml"

# One formation run with binary $1; appends "quorum_ms bringup_ms p50 p99 acked_per_s" to $2.
once() {
  local bin=$1 out=$2 dir
  dir=$(mktemp -d -p "$tmp")
  timeout 300 "$bin" lab run -f "$tmp/inv.toml" --scenario formation --report "$dir" >/dev/null 2>&1 || true
  python3 - "$dir/report.json" >>"$out" <<'EOF'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception:
    print("- - - - -")
    sys.exit(0)
lab = r["lab"]
s = r["scenarios"][0].get("series") or {}
lat = sorted(w["latency_ms"] for w in s.get("writes", []) if w.get("latency_ms") is not None)
span = max((s.get("to_ms", 0) - s.get("from_ms", 0)) / 1000.0, 1e-9)
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")
print(f'{lab["quorum_ms"]:.0f} {lab["bringup_ms"]:.0f} {q(0.5):.2f} {q(0.99):.2f} {len(lat) / span:.1f}')
EOF
}

for i in $(seq 1 "$runs"); do
  echo "bench-tls: run $i/$runs" >&2
  once "$old" "$tmp/old.txt"
  once "$new" "$tmp/new.txt"
done

python3 - "$tmp/old.txt" "$tmp/new.txt" "$runs" "$base_ref" <<'EOF'
import statistics, sys
def cols(path):
    rows = [l.split() for l in open(path) if "-" not in l.split()[0]]
    return [[float(r[i]) for r in rows] for i in range(5)] if rows else [[] for _ in range(5)]
old, new = cols(sys.argv[1]), cols(sys.argv[2])
names = ["time to quorum (ms)", "bring-up (ms)", "write latency p50 (ms)", "write latency p99 (ms)", "acknowledged writes/s"]
print(f"{sys.argv[3]} runs each, interleaved; baseline {sys.argv[4]} (plain HTTP) vs this tree (mutual TLS); medians\n")
print("| measure | plain HTTP | mutual TLS | ratio |")
print("|---|---:|---:|---:|")
for n, a, b in zip(names, old, new):
    if not a or not b:
        print(f"| {n} | - | - | - |")
        continue
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"| {n} | {ma:.2f} | {mb:.2f} | {mb / ma:.2f} |")
EOF

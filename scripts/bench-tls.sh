#!/usr/bin/env bash
# What mutual TLS costs the lab's etcd, two ways, each against a baseline measured in the
# same run and interleaved so a noisy machine hits both alike:
#  1. per request: `cargo bench -p n3x-lab --bench etcd_tls` (a plain and a mutual-TLS etcd
#     member on loopback, asked alike: puts over a kept-alive connection, puts and status
#     calls on a new connection each);
#  2. the lab's bring-up: this tree (mutual TLS) against the previous version (plain
#     HTTP), `n3x lab run --scenario formation` on a generated 5-host cluster (3 servers, no
#     link impairment), old, new, old, new: time to quorum and the whole bring-up.
# Prints markdown tables (medians, ratios new/old).
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

echo "bench-tls: per request (cargo bench)" >&2
cargo bench -q -p n3x-lab --bench etcd_tls 2>/dev/null
echo

# One formation run with binary $1; appends "quorum_ms bringup_ms" (or "- -") to $2.
once() {
  local bin=$1 out=$2 dir
  dir=$(mktemp -d -p "$tmp")
  timeout 300 "$bin" lab run -f "$tmp/inv.toml" --scenario formation --report "$dir" >/dev/null 2>&1 || true
  python3 - "$dir/report.json" >>"$out" <<'PY'
import json, sys
try:
    lab = json.load(open(sys.argv[1]))["lab"]
    print(f'{lab["quorum_ms"]:.0f} {lab["bringup_ms"]:.0f}')
except Exception:
    print("- -")
PY
}

for i in $(seq 1 "$runs"); do
  echo "bench-tls: lab bring-up, run $i/$runs" >&2
  once "$old" "$tmp/old.txt"
  once "$new" "$tmp/new.txt"
done

python3 - "$tmp/old.txt" "$tmp/new.txt" "$runs" "$base_ref" <<'PY'
import statistics, sys
def cols(path):
    rows = [l.split() for l in open(path) if l.split()[0] != "-"]
    return [[float(r[i]) for r in rows] for i in range(2)] if rows else [[], []]
old, new = cols(sys.argv[1]), cols(sys.argv[2])
print(f"lab bring-up, {sys.argv[3]} runs each, interleaved; previous version {sys.argv[4]} (plain HTTP) vs this tree (mutual TLS); medians\n")
print("| measure | plain HTTP | mutual TLS | ratio |")
print("|---|---:|---:|---:|")
for n, a, b in zip(["time to quorum (ms)", "bring-up (ms)"], old, new):
    if not a or not b:
        print(f"| {n} | - | - | - |")
        continue
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"| {n} | {ma:.0f} | {mb:.0f} | {mb / ma:.2f} |")
PY

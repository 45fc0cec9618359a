#!/usr/bin/env bash
# Benchmark what a rollout costs the cluster's writers: the longest time any agent went
# without an acknowledged write while the deploy ran. Three ways of rolling the same change
# out, measured in the same lab run, in turn (so a noisy machine hits them alike):
#   rolling-deploy       n3x: one server at a time, leadership moved off the leader first
#   rolling-no-transfer  the same rollout, the leader restarted without moving leadership
#   all-at-once          every server at once (what a parallel deploy tool does)
# Prints a markdown table per run and the medians, with the ratio the design asks for
# (rolling / no-transfer < 0.5) and rolling's gap against half an election timeout.
#
# Usage (root): scripts/bench-deploy.sh [RUNS] [INVENTORY]   (default 5 runs, n3x.toml)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
inventory=${2:-n3x.toml}
if [[ $(id -u) -ne 0 ]]; then
  echo "bench-deploy: needs root (the lab creates network namespaces)" >&2
  exit 2
fi
cargo build -q --release -p n3x
n3x=$PWD/target/release/n3x
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

for i in $(seq 1 "$runs"); do
  echo "bench-deploy: run $i of $runs" >&2
  "$n3x" lab run -f "$inventory" --scenario rolling-deploy --scenario rolling-no-transfer --scenario all-at-once \
    --report "$out/run$i" >/dev/null 2>"$out/run$i.log" || {
    echo "bench-deploy: run $i failed; its log:" >&2
    tail -20 "$out/run$i.log" >&2
    exit 1
  }
done

python3 - "$out" "$runs" <<'EOF'
import json, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
rows = []
for i in range(1, runs + 1):
    r = json.load(open(f"{out}/run{i}/report.json"))
    m = {s["name"]: s["metrics"] for s in r["scenarios"]}
    rows.append((
        m["rolling-deploy"]["longest_write_gap_ms"],
        m["rolling-no-transfer"]["longest_write_gap_ms"],
        m["all-at-once"]["longest_write_gap_ms"],
        m["rolling-deploy"]["election_timeout_ms"],
        m["rolling-deploy"].get("transfers", ""),
    ))
print("| run | rolling (ms) | no transfer (ms) | rolling / no transfer | all at once (ms) | leadership moved |")
print("|---|---|---|---|---|---|")
for i, (r, n, a, _, t) in enumerate(rows, 1):
    print(f"| {i} | {r:.0f} | {n:.0f} | {r / n:.2f} | {a:.0f} | {t} |")
med = lambda k: statistics.median(row[k] for row in rows)
r, n, a, election = med(0), med(1), med(2), rows[0][3]
print(f"| median | {r:.0f} | {n:.0f} | {r / n:.2f} | {a:.0f} | |")
print()
print(f"election timeout {election} ms: rolling's median gap {r:.0f} ms is "
      f"{'within' if r <= election / 2 else 'ABOVE'} half of it ({election / 2:.0f} ms); "
      f"rolling / no-transfer = {r / n:.2f} ({'below' if r / n < 0.5 else 'NOT below'} 0.5)")
EOF

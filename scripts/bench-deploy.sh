#!/usr/bin/env bash
# Benchmark what a rollout costs the cluster's writers: the write outage (the longest time
# no agent got a write acknowledged while the deploy ran) and the worst single agent's gap.
# Three ways of rolling the same change out, measured in the same lab run, in turn (so a
# noisy machine hits them alike):
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
    roll, nt, aao = m["rolling-deploy"], m["rolling-no-transfer"], m["all-at-once"]
    rows.append((
        roll["longest_write_gap_ms"], nt["longest_write_gap_ms"], aao["longest_write_gap_ms"],
        roll["longest_agent_gap_ms"], nt["longest_agent_gap_ms"], nt.get("idle_agent_gap_ms", float("nan")),
        roll["election_timeout_ms"], roll.get("transfers", ""),
    ))
print("Write outage: the longest time no agent got a write acknowledged while the deploy ran.")
print("Worst agent: the longest time one agent went without an ack (this includes its own link's")
print("retransmissions); idle: the same over the 10 s before the second deploy, with nothing deployed.")
print()
print("| run | rolling (ms) | no transfer (ms) | rolling / no transfer | all at once (ms) | worst agent, rolling (ms) | worst agent, no transfer (ms) | worst agent, idle (ms) | leadership moved |")
print("|---|---|---|---|---|---|---|---|---|")
for i, (r, n, a, ra, na, idle, _, t) in enumerate(rows, 1):
    print(f"| {i} | {r:.0f} | {n:.0f} | {r / n:.2f} | {a:.0f} | {ra:.0f} | {na:.0f} | {idle:.0f} | {t} |")
med = lambda k: statistics.median(row[k] for row in rows)
r, n, a, ra, na, idle, election = med(0), med(1), med(2), med(3), med(4), med(5), rows[0][6]
print(f"| median | {r:.0f} | {n:.0f} | {r / n:.2f} | {a:.0f} | {ra:.0f} | {na:.0f} | {idle:.0f} | |")
print()
worst = max(row[0] for row in rows)
print(f"election timeout {election} ms: rolling's write outage, median {r:.0f} ms, worst {worst:.0f} ms "
      f"({'within' if worst <= election / 2 else 'ABOVE'} half the election timeout, {election / 2:.0f} ms); "
      f"rolling / no-transfer = {r / n:.2f} ({'below' if r / n < 0.5 else 'NOT below'} 0.5)")
EOF

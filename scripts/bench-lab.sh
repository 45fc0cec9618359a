#!/usr/bin/env bash
# Benchmark the lab (root, etcd): bring-up to quorum and teardown of the reference lab,
# and a generated 100-host lab with its peak memory; each next to a baseline measured
# in the same run. Usage: sudo scripts/bench-lab.sh [RUNS] (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
cargo build -q --release -p n3x -p n3x-gen
n3x=$PWD/target/release/n3x
tmp=$(mktemp -d)
cleanup() {
  for c in n3x bench100; do "$n3x" lab down --cluster "$c" >/dev/null 2>&1 || true; done
  [[ -n "${etcd_pid:-}" ]] && kill "$etcd_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
./target/release/n3x-gen --hosts 100 --servers 3 --name bench100 > "$tmp/gen100.toml"

now_ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Baseline: one etcd member alone on loopback, from exec to answering, with the same
# timings. No lab can form quorum faster than its members start.
baseline_ms() {
  local d="$tmp/etcd-base" t0 t1
  rm -rf "$d"
  t0=$(now_ms)
  etcd --name base --data-dir "$d" --listen-client-urls http://127.0.0.1:23790 \
    --advertise-client-urls http://127.0.0.1:23790 --listen-peer-urls http://127.0.0.1:23800 \
    --initial-advertise-peer-urls http://127.0.0.1:23800 --initial-cluster base=http://127.0.0.1:23800 \
    --heartbeat-interval 100 --election-timeout 1000 --logger zap --log-outputs stderr >/dev/null 2>&1 &
  etcd_pid=$!
  until ETCDCTL_API=3 etcdctl --endpoints http://127.0.0.1:23790 endpoint health >/dev/null 2>&1; do sleep 0.01; done
  t1=$(now_ms)
  kill "$etcd_pid"; wait "$etcd_pid" 2>/dev/null || true; etcd_pid=
  echo $((t1 - t0))
}

# One lab up + down: prints "quorum_ms ready_ms wall_up_ms down_ms".
lab_once() {
  local inv=$1 cluster=$2; shift 2
  local out t0 t1 t2
  t0=$(now_ms)
  out=$("$n3x" lab up -f "$inv" "$@" 2>&1)
  t1=$(now_ms)
  local q r
  q=$(sed -n 's/.*quorum in \([0-9]*\) ms.*/\1/p' <<<"$out")
  r=$(sed -n 's/.*ready in \([0-9]*\) ms.*/\1/p' <<<"$out")
  if [[ -n "${MEASURE_MEM:-}" ]]; then
    # Peak resident memory of every lab process (supervisor + etcd), summed.
    local kib=0 p
    for p in $(python3 -c "import json;s=json.load(open('/run/n3x/$cluster/state.json'));print(' '.join(str(x['pid']) for x in [s['supervisor']]+s['processes']))"); do
      kib=$((kib + $(awk '/VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
    done
    echo "$kib" > "$tmp/mem"
  fi
  t2=$(now_ms)
  "$n3x" lab down --cluster "$cluster" >/dev/null 2>&1
  echo "$q $r $((t1 - t0)) $(( $(now_ms) - t2 ))"
}

echo "| measurement | median ms ($runs runs) | baseline, same run | target |"
echo "|---|---|---|---|"
base=$(for _ in $(seq "$runs"); do baseline_ms; done | median)
for fabric in kernel userspace; do
  args=(--fabric "$fabric")
  [[ $fabric == kernel ]] && args+=(--profile default)
  rows=$(for _ in $(seq "$runs"); do lab_once n3x.toml n3x "${args[@]}"; done)
  q=$(awk '{print $1}' <<<"$rows" | median); r=$(awk '{print $2}' <<<"$rows" | median)
  w=$(awk '{print $3}' <<<"$rows" | median); d=$(awk '{print $4}' <<<"$rows" | median)
  echo "| reference lab ($fabric fabric${args[2]:+, profile ${args[3]}}): up to quorum | $q | one etcd alone: $base | <= 2000 |"
  echo "| reference lab ($fabric): ready (agents' first writes acked) / whole \`up\` command | $r / $w | | |"
  echo "| reference lab ($fabric): teardown (\`lab down\`) | $d | | <= 500 |"
done
row=$(MEASURE_MEM=1 lab_once "$tmp/gen100.toml" bench100 --probe-interval-ms 1000)
echo "| 100 hosts (3 servers, 97 agents), kernel fabric: up to quorum / ready / whole \`up\` | $(awk '{print $1" / "$2" / "$3}' <<<"$row") | | <= 15000 |"
echo "| 100 hosts: teardown | $(awk '{print $4}' <<<"$row") | | |"
echo "| 100 hosts: peak memory, supervisor + 3 etcd (sum of VmHWM) | $(( $(cat "$tmp/mem") / 1024 )) MiB | | < 4096 MiB |"

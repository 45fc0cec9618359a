#!/usr/bin/env bash
# Benchmark the lab at scale next to the previous implementation, measured in the same run
# and interleaved (old, new, old, new) so a noisy machine hits both alike. Prints a
# markdown table: time to quorum, time until every agent's first write is acknowledged,
# the whole `up`, teardown, and peak memory (supervisor + etcd), for the reference lab and
# generated labs of 100, 300 and 1000 hosts (3 servers each).
#
# Usage (root): scripts/bench-scale.sh [RUNS]   (default 3; the baseline's 1000-host row runs once)
# BASELINE_REF: the git revision to compare against (default be4b34b, the last lab that
# ran one `ip`/`tc` process per object); it is built once in target/bench-baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
base_ref=${BASELINE_REF:-be4b34b}
if [[ $(id -u) -ne 0 ]]; then
  echo "bench-scale: needs root (the lab creates network namespaces)" >&2
  exit 2
fi

cargo build -q --release -p n3x -p n3x-gen
new=$PWD/target/release/n3x
base_dir=$PWD/target/bench-baseline
if [[ ! -x $base_dir/target/release/n3x || "$(cat "$base_dir/.bench-ref" 2>/dev/null)" != "$base_ref" ]]; then
  echo "bench-scale: building the baseline ($base_ref) in $base_dir" >&2
  git worktree remove --force "$base_dir" 2>/dev/null || rm -rf "$base_dir"
  git worktree prune
  git worktree add --detach "$base_dir" "$base_ref" >/dev/null
  (cd "$base_dir" && cargo build -q --release -p n3x)
  echo "$base_ref" >"$base_dir/.bench-ref"
fi
old=$base_dir/target/release/n3x

tmp=$(mktemp -d)
clusters=(n3x scale100 scale300 scale1000)
cleanup() {
  for c in "${clusters[@]}"; do "$new" lab down --cluster "$c" >/dev/null 2>&1 || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
for n in 100 300 1000; do
  ./target/release/n3x-gen --hosts "$n" --servers 3 --name "scale$n" >"$tmp/gen$n.toml"
done

now_ms() { date +%s%3N; }

# One `lab up` + `lab down` with binary $1 on inventory $2 (cluster $3), extra args after.
# Prints "quorum_ms ready_ms up_wall_ms down_ms peak_mib built_ms", with "-" for what
# failed; built_ms is when the network was built (the first "starting etcd" step).
lab_once() {
  local bin=$1 inv=$2 cluster=$3
  shift 3
  local t0 t1 t2 out q r mem=0 p
  t0=$(now_ms)
  out=$(timeout 300 "$bin" lab up -f "$inv" "$@" 2>&1) || true
  t1=$(now_ms)
  q=$(sed -n 's/.*quorum in \([0-9]*\) ms.*/\1/p' <<<"$out")
  r=$(sed -n 's/.*ready in \([0-9]*\) ms.*/\1/p' <<<"$out")
  local b
  b=$(awk '/starting etcd on/ && match($0, /[0-9]+\.[0-9]+s\]/) { printf "%d", substr($0, RSTART, RLENGTH - 2) * 1000; exit }' <<<"$out")
  if [[ -f /run/n3x/$cluster/state.json ]]; then
    for p in $(python3 -c "import json;s=json.load(open('/run/n3x/$cluster/state.json'));print(' '.join(str(x['pid']) for x in ([s['supervisor']] if s.get('supervisor') else [])+s['processes']))"); do
      mem=$((mem + $(awk '/VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
    done
  fi
  t2=$(now_ms)
  "$bin" lab down --cluster "$cluster" >/dev/null 2>&1 || "$new" lab down --cluster "$cluster" >/dev/null 2>&1 || true
  local d=$(($(now_ms) - t2))
  if [[ -z $q ]]; then
    echo "- - $((t1 - t0)) $d $((mem / 1024)) ${b:--}"
    grep -m1 '^error' <<<"$out" | cut -c1-160 >"$tmp/why.$cluster.$(basename "$bin")" || true
  else
    echo "$q $r $((t1 - t0)) $d $((mem / 1024)) ${b:--}"
  fi
}

median() { awk '$1 != "-"' | sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "-"}'; }
col() { awk -v c="$1" '{print $c}'; }

# rows[impl/size] accumulate one line per run.
declare -A rows
run_size() {
  local label=$1 inv=$2 cluster=$3 n=$4
  shift 4
  for _ in $(seq "$n"); do
    rows[old/$label]+="$(lab_once "$old" "$inv" "$cluster" "$@")"$'\n'
    rows[new/$label]+="$(lab_once "$new" "$inv" "$cluster" "$@")"$'\n'
  done
}

echo "bench-scale: $(nproc) cores, $(uname -r), $runs run(s) per row, baseline $base_ref" >&2
# The reference lab is quick and noisy (etcd's election dominates): five times the runs.
run_size reference n3x.toml n3x "$((runs * 5))" --fabric kernel --profile default
run_size 100 "$tmp/gen100.toml" scale100 "$runs"
run_size 300 "$tmp/gen300.toml" scale300 "$runs"
# The baseline at 1000 hosts takes over a minute to fail: once is enough.
rows[old/1000]+="$(lab_once "$old" "$tmp/gen1000.toml" scale1000)"$'\n'
for _ in $(seq "$runs"); do
  rows[new/1000]+="$(lab_once "$new" "$tmp/gen1000.toml" scale1000)"$'\n'
done
# The new lab with the old default probe rate (every agent every 100 ms: 10 000 writes/s).
for _ in $(seq "$runs"); do
  rows[new/1000-100ms]+="$(lab_once "$new" "$tmp/gen1000.toml" scale1000 --probe-interval-ms 100)"$'\n'
done

echo "| lab | implementation | network built ms | up to quorum ms | every agent's first write acked ms | whole \`up\` ms | teardown ms | peak memory MiB |"
echo "|---|---|---|---|---|---|---|---|"
for label in reference 100 300 1000 1000-100ms; do
  for impl in old new; do
    data=${rows[$impl/$label]:-}
    [[ -z $data ]] && continue
    data=$(sed '/^$/d' <<<"$data")
    name=$([[ $impl == old ]] && echo "baseline ($base_ref)" || echo "this version")
    q=$(col 1 <<<"$data" | median)
    r=$(col 2 <<<"$data" | median)
    w=$(col 3 <<<"$data" | median)
    d=$(col 4 <<<"$data" | median)
    m=$(col 5 <<<"$data" | median)
    b=$(col 6 <<<"$data" | median)
    what=$([[ $label == reference ]] && echo "reference (5 hosts, kernel fabric)" || echo "$label hosts")
    [[ $label == 1000-100ms ]] && what="1000 hosts, --probe-interval-ms 100"
    fails=$(awk '$1 == "-"' <<<"$data" | wc -l)
    if ((fails > 0)); then
      why=$(cat "$tmp"/why.* 2>/dev/null | head -1 | cut -c1-90)
      q="failed ($fails of $(wc -l <<<"$data")): ${why:-see stderr}"
      r=-
    fi
    echo "| $what | $name | $b | $q | $r | $w | $d | $m |"
  done
done

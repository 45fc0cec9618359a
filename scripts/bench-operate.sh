#!/usr/bin/env bash
# Benchmark `n3x status` and `n3x backup`, each next to a baseline measured in the same run,
# alternating A B A B so a noisy machine hits both alike:
#   status           `n3x status --lab` on the reference lab
#                    vs one `ssh HOST true` to every host (in parallel, as status asks them)
#   backup snapshot  `n3x backup snapshot --lab` of a store with KEYS keys (100-byte values)
#                    vs `etcdctl snapshot save` of the same member (inside its namespace)
#   backup verify    `n3x backup verify` of that backup (decrypt, check, restore, start etcd,
#                    read every key) vs `etcdctl snapshot restore` of the same snapshot
#   recovery         the disaster-recovery scenario's restore and recovery times
# Prints markdown tables with medians and ratios.
#
# Usage (root): scripts/bench-operate.sh [RUNS] [KEYS] [DR_RUNS]   (default 10, 100000, 5)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
keys=${2:-100000}
dr_runs=${3:-5}
if [[ $(id -u) -ne 0 ]]; then
  echo "bench-operate: needs root (the lab creates network namespaces)" >&2
  exit 2
fi
source scripts/setup.sh >/dev/null
cargo build -q --release -p n3x
n3x=$PWD/target/release/n3x
out=$(mktemp -d)
cluster=benchop
lab=/run/n3x/$cluster
cleanup() { "$n3x" lab down --cluster "$cluster" >/dev/null 2>&1 || true; rm -rf "$out" /dev/shm/n3x-bench-*; }
trap cleanup EXIT
sed 's/^name = "n3x"/name = "'$cluster'"/' n3x.toml >"$out/inv.toml"
"$n3x" lab down --cluster "$cluster" >/dev/null 2>&1 || true
"$n3x" lab up -f "$out/inv.toml" --ssh on >/dev/null 2>"$out/up.log" || { cat "$out/up.log" >&2; exit 1; }

# Milliseconds a command takes (wall clock), its output discarded.
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1 || { echo "bench-operate: failed: $*" >&2; exit 1; }; e=$(date +%s%N); echo $(((e - s) / 1000000)); }

ips=$(python3 -c "
import json; o = json.load(open('$lab/options.json'))
print(' '.join(h['cluster_ip'] for h in o['plan']['hosts'] if h['role'] != 'operator'))")
ssh_all() {
  for ip in $ips; do
    ip netns exec "n3x-$cluster-operator" ssh -F /dev/null -i "$lab/ssh/id_ed25519" \
      -o UserKnownHostsFile="$lab/ssh/known_hosts" -o BatchMode=yes -o StrictHostKeyChecking=yes "root@$ip" true &
  done
  wait
}

echo "bench-operate: status vs ssh true ($runs pairs)" >&2
: >"$out/status.tsv"
for i in $(seq 1 "$runs"); do
  a=$(ms "$n3x" status --lab -f "$out/inv.toml")
  b=$(ms ssh_all)
  echo -e "$a\t$b" >>"$out/status.tsv"
done

echo "bench-operate: filling n100-1's member with $keys keys" >&2
# The lab's etcd runs mutual TLS: the lab's own client certificate.
tlsdir=/run/n3x/$cluster/tls
tls=(--cacert "$tlsdir/ca.crt" --cert "$tlsdir/client.crt" --key "$tlsdir/client.key")
"$n3x" lab exec --cluster "$cluster" n100-1 -- python3 scripts/etcd-fill.py "${tls[@]}" https://127.0.0.1:2379 "$keys" 100 /bench/ >/dev/null

snapdir=$out/backups
# The lab's probes write on; the member the snapshot comes from is the leader.
echo "bench-operate: snapshot and verify vs etcdctl ($runs pairs)" >&2
: >"$out/backup.tsv"
for i in $(seq 1 "$runs"); do
  rm -rf "$snapdir"
  a=$(ms "$n3x" backup snapshot --lab -f "$out/inv.toml" --dir "$snapdir")
  leader=$("$n3x" lab status --cluster "$cluster" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader"])')
  b=$(ms ip netns exec "n3x-$cluster-$leader" env ETCDCTL_API=3 etcdctl "${tls[@]}" --endpoints https://127.0.0.1:2379 snapshot save "/dev/shm/n3x-bench-$i.db")
  file=$(ls "$snapdir"/*.snap.age)
  c=$(ms "$n3x" backup verify --lab --cluster "$cluster" "$file")
  rm -rf "/dev/shm/n3x-bench-restore"
  d=$(ms env ETCDCTL_API=3 etcdctl snapshot restore "/dev/shm/n3x-bench-$i.db" --data-dir /dev/shm/n3x-bench-restore)
  size=$(stat -c %s "/dev/shm/n3x-bench-$i.db")
  rm -rf "/dev/shm/n3x-bench-$i.db" /dev/shm/n3x-bench-restore
  echo -e "$a\t$b\t$c\t$d\t$size" >>"$out/backup.tsv"
done
"$n3x" backup verify --lab --cluster "$cluster" "$file" --json >"$out/verify.json" 2>/dev/null
"$n3x" lab down --cluster "$cluster" >/dev/null

echo "bench-operate: disaster-recovery ($dr_runs runs)" >&2
for i in $(seq 1 "$dr_runs"); do
  "$n3x" lab run -f "$out/inv.toml" --scenario disaster-recovery --report "$out/dr$i" >/dev/null 2>"$out/dr$i.log" || {
    tail -20 "$out/dr$i.log" >&2
    exit 1
  }
done

python3 - "$out" "$runs" "$dr_runs" "$keys" <<'EOF'
import json, statistics, sys
out, runs, dr_runs, keys = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
med = statistics.median
st = [tuple(map(int, l.split())) for l in open(f"{out}/status.tsv")]
print("### status on the reference lab (5 hosts)")
print()
print("| run | n3x status --lab (ms) | ssh HOST true to every host, in parallel (ms) | ratio |")
print("|---|---|---|---|")
for i, (a, b) in enumerate(st, 1):
    print(f"| {i} | {a} | {b} | {a / b:.2f} |")
print(f"| median | {med(a for a, _ in st)} | {med(b for _, b in st)} | {med(a / b for a, b in st):.2f} |")
print()
bk = [tuple(map(int, l.split())) for l in open(f"{out}/backup.tsv")]
v = json.load(open(f"{out}/verify.json"))
print(f"### backup of a store with {keys} keys ({v['readback']['keys']} keys, snapshot {bk[0][4] / 2**20:.1f} MiB)")
print()
print("| run | backup snapshot (ms) | etcdctl snapshot save (ms) | ratio | backup verify (ms) | etcdctl snapshot restore (ms) | ratio |")
print("|---|---|---|---|---|---|---|")
for i, (a, b, c, d, _) in enumerate(bk, 1):
    print(f"| {i} | {a} | {b} | {a / b:.1f} | {c} | {d} | {c / d:.1f} |")
print(f"| median | {med(r[0] for r in bk)} | {med(r[1] for r in bk)} | {med(r[0] / r[1] for r in bk):.1f} | {med(r[2] for r in bk)} | {med(r[3] for r in bk)} | {med(r[2] / r[3] for r in bk):.1f} |")
rb = v["readback"]
print()
print(f"verify's own split (last run): restore {rb['restore_ms']} ms, etcd up {rb['start_ms']} ms, read {rb['read_ms']} ms, {v['took_ms']} ms in all")
print()
print("### disaster-recovery on the reference lab")
print()
print("| run | snapshot (ms) | acked after the snapshot, lost by design | recovery point (ms) | restore (ms) | recovery time (ms) |")
print("|---|---|---|---|---|---|")
rows = []
for i in range(1, dr_runs + 1):
    m = next(s for s in json.load(open(f"{out}/dr{i}/report.json"))["scenarios"] if s["name"] == "disaster-recovery")["metrics"]
    rows.append(m)
    print(f"| {i} | {m['snapshot_ms']:.0f} | {m['lost_by_design']} | {m['recovery_point_ms']:.0f} | {m['restore_ms']:.0f} | {m['recovery_ms']:.0f} |")
print(f"| median | {med(m['snapshot_ms'] for m in rows):.0f} | {med(m['lost_by_design'] for m in rows)} | {med(m['recovery_point_ms'] for m in rows):.0f} | {med(m['restore_ms'] for m in rows):.0f} | {med(m['recovery_ms'] for m in rows):.0f} |")
EOF

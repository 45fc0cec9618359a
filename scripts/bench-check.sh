#!/usr/bin/env bash
# Benchmark `n3x check` on generated inventories: the in-process table from
# `cargo bench -p n3x-model`, then the whole command as a user runs it, next to
# `n3x --version` (process start-up alone) measured in the same run.
# Usage: scripts/bench-check.sh [RUNS]   (default 30 runs per row)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
cargo build -q --release -p n3x -p n3x-gen
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
./target/release/n3x-gen --hosts 1000 --servers 3 > "$tmp/gen1000.toml"
./target/release/n3x-gen --hosts 100 --servers 3 > "$tmp/gen100.toml"

echo "## in process (cargo bench -p n3x-model)"
cargo bench -q -p n3x-model --bench check 2>/dev/null | grep '^|'

# Median wall time in ms of RUNS runs of a command.
median_ms() {
  local t=()
  for _ in $(seq "$runs"); do
    local s e
    s=$(date +%s%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s%N)
    t+=($(( (e - s) / 1000 )))
  done
  printf '%s\n' "${t[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]/1000}'
}

echo
echo "## whole command, $runs runs each"
echo "| command | median ms |"
echo "|---|---|"
base=$(median_ms ./target/release/n3x --version)
echo "| \`n3x --version\` (start-up baseline) | $base |"
for f in n3x.toml "$tmp/gen100.toml" "$tmp/gen1000.toml"; do
  m=$(median_ms ./target/release/n3x check -f "$f")
  echo "| \`n3x check\` $(basename "$f") | $m |"
done
m=$(median_ms ./target/release/n3x show --json -f "$tmp/gen1000.toml")
echo "| \`n3x show --json\` gen1000.toml | $m |"

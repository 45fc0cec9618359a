#!/usr/bin/env bash
# Benchmark the n3x userspace switch (crates/n3x-switch) between two network
# namespaces, next to the kernel bridge (the baseline) and VDE measured in the same
# run, then the accuracy of its impairments. Prints markdown tables.
# Usage (root): scripts/bench-switch.sh [SECONDS]   (iperf3 duration, default 5)
# Needs: ip, iperf3, ping; installs vde2 with apt-get when missing (skips VDE if that fails).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
if [[ $(id -u) -ne 0 ]]; then
  echo "bench-switch: needs root (network namespaces, TAP devices)" >&2
  exit 2
fi
for c in ip iperf3 ping awk; do
  command -v "$c" >/dev/null || { echo "bench-switch: missing $c (Debian: iproute2 iperf3 iputils-ping)" >&2; exit 2; }
done
if ! command -v vde_switch >/dev/null || ! command -v vde_plug2tap >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq vde2 >/dev/null 2>&1 || true
fi

cargo build -q --release -p n3x-switch --example bench_pair
bin=target/release/examples/bench_pair

tag="n3xb$$"
A="${tag}-a" B="${tag}-b" C="${tag}-c" # C holds the kernel bridge
IP_A=10.99.0.1 IP_B=10.99.0.2
tmp=$(mktemp -d)
pids=()
cleanup() {
  exec 3>&- 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for f in "$tmp"/*.pid; do [[ -e $f ]] && kill "$(cat "$f")" 2>/dev/null || true; done
  sleep 0.2
  for ns in "$A" "$B" "$C"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
for ns in "$A" "$B" "$C"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done

# Addresses on interface $1 in both namespaces, link up.
addr() {
  ip -n "$A" addr add "$IP_A/24" dev "$1"; ip -n "$A" link set "$1" up
  ip -n "$B" addr add "$IP_B/24" dev "$1"; ip -n "$B" link set "$1" up
}

# iperf3 TCP from A to B; prints Gbit/s received.
tcp_gbit() {
  ip netns exec "$B" iperf3 -s -1 -B "$IP_B" >/dev/null 2>&1 &
  local srv=$!
  sleep 0.3
  ip netns exec "$A" iperf3 -c "$IP_B" -t "$secs" -f m "$@" |
    awk '/receiver/ { for (i = 1; i <= NF; i++) if ($i == "Mbits/sec") printf "%.6f", $(i-1) / 1000 }'
  wait "$srv" 2>/dev/null || true
}

# iperf3 UDP from A to B at $1 with 1000-byte datagrams; prints "Mbit/s lost total".
udp() {
  ip netns exec "$B" iperf3 -s -1 -B "$IP_B" >/dev/null 2>&1 &
  local srv=$!
  sleep 0.3
  ip netns exec "$A" iperf3 -c "$IP_B" -u -b "$1" -l 1000 -t "$secs" -f m |
    awk '/receiver/ { for (i = 1; i <= NF; i++) { if ($i == "Mbits/sec") r = $(i-1); if ($i ~ /^[0-9]+\/[0-9]+$/) { split($i, x, "/"); l = x[1]; t = x[2] } }
                      printf "%s %s %s", r, l, t }'
  wait "$srv" 2>/dev/null || true
}

# ping A -> B, $1 pings every $2 s; prints "p50 avg stddev n" in ms.
rtt() {
  ip netns exec "$A" ping -n -c "$1" -i "$2" -W 2 "$IP_B" |
    awk -F'time=' '/time=/ { split($2, t, " "); print t[1] }' | sort -g |
    awk '{ v[NR] = $1; s += $1; q += $1 * $1 } END {
      m = s / NR; sd = sqrt((q - NR * m * m) / (NR - 1));
      printf "%.3f %.3f %.3f %d", v[int((NR + 1) / 2)], m, sd, NR }'
}

# Starts bench_pair with the given impairment flags (a -> b) and waits for "ready".
n3x_up() {
  mkfifo "$tmp/ctl"
  "$bin" "$A" "$B" --ifname n3x0 "$@" <"$tmp/ctl" >"$tmp/n3x.out" &
  pids+=($!)
  exec 3>"$tmp/ctl"
  for _ in $(seq 100); do grep -q ready "$tmp/n3x.out" 2>/dev/null && break; sleep 0.05; done
  grep -q ready "$tmp/n3x.out" || { echo "bench_pair did not start" >&2; exit 1; }
  addr n3x0
  ip netns exec "$A" ping -c 1 -W 2 "$IP_B" >/dev/null || true # neighbours, MAC learning
}
# Stops it (closing its stdin); its a->b counters are then in $tmp/n3x.out.
n3x_down() {
  exec 3>&-
  wait "${pids[-1]}"
  unset 'pids[-1]'
  rm -f "$tmp/ctl"
}

echo "bench-switch: $(nproc) cores, $(uname -r), iperf3 ${secs}s per throughput row" >&2

# 1. Kernel bridge + veth.
ip -n "$C" link add br0 type bridge
ip -n "$C" link set br0 up
for ns in "$A" "$B"; do
  ip -n "$C" link add "v$ns" type veth peer name bnk0 netns "$ns"
  ip -n "$C" link set "v$ns" master br0 up
done
addr bnk0
ip netns exec "$A" ping -c 1 -W 2 "$IP_B" >/dev/null
k_tcp=$(tcp_gbit)
read -r k_p50 k_avg _ _ <<<"$(rtt 200 0.01)"
ip -n "$A" link del bnk0; ip -n "$B" link del bnk0

# 2. n3x switch, no impairment.
n3x_up
n_tcp=$(tcp_gbit)
read -r n_p50 n_avg _ _ <<<"$(rtt 200 0.01)"
n3x_down

# 3. VDE.
v_tcp=- v_p50=- v_avg=-
if command -v vde_switch >/dev/null && command -v vde_plug2tap >/dev/null; then
  vde_switch -d -s "$tmp/vde.sock" -p "$tmp/vde_switch.pid"
  for ns in "$A" "$B"; do
    ip netns exec "$ns" vde_plug2tap -d -P "$tmp/plug-$ns.pid" -s "$tmp/vde.sock" vde0
  done
  sleep 0.3
  addr vde0
  ip netns exec "$A" ping -c 1 -W 2 "$IP_B" >/dev/null || true
  v_tcp=$(tcp_gbit)
  read -r v_p50 v_avg _ _ <<<"$(rtt 200 0.01)"
  for f in "$tmp"/plug-*.pid "$tmp/vde_switch.pid"; do kill "$(cat "$f")"; rm -f "$f"; done
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == 0) print "-"; else printf "%.1f%%", 100 * a / b }'; }
added() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-") print "-"; else printf "%+.3f", a - b }'; }

echo "## No impairment: TCP throughput (iperf3 -t $secs) and ping RTT (200 pings, -i 0.01)"
echo
echo "| path | TCP Gbit/s | vs kernel | RTT p50 ms | RTT avg ms | added p50 ms |"
echo "|---|---|---|---|---|---|"
g() { awk -v x="$1" 'BEGIN { if (x == "-") print "-"; else printf "%.2f", x }'; }
echo "| kernel bridge + veth (baseline) | $(g "$k_tcp") | 100% | $k_p50 | $k_avg | 0 |"
echo "| n3x-switch | $(g "$n_tcp") | $(ratio "$n_tcp" "$k_tcp") | $n_p50 | $n_avg | $(added "$n_p50" "$k_p50") |"
echo "| VDE vde_switch + vde_plug2tap | $(g "$v_tcp") | $(ratio "$v_tcp" "$k_tcp") | $v_p50 | $v_avg | $(added "$v_p50" "$k_p50") |"
echo

# 4. Impairment accuracy on the n3x switch (a -> b only; b -> a is clean, so RTT - base = the a -> b delay).
n3x_up --delay-ms 50 --jitter-ms 10 --reorder
read -r d_p50 _ d_sd d_n <<<"$(rtt 2000 0.005)"
n3x_down
n3x_up --delay-ms 50 --jitter-ms 10
read -r o_p50 _ o_sd o_n <<<"$(rtt 400 0.05)"
n3x_down

n3x_up --loss-pct 5 --seed 42
read -r _ l_lost l_total <<<"$(udp 40M)"
n3x_down
l_counters=$(grep '^a->b' "$tmp/n3x.out")

n3x_up --rate-mbit 10
r_tcp=$(tcp_gbit -O 2) # steady state: the first 2 s (slow start overshooting the queue) are omitted
n3x_down
n3x_up --rate-mbit 10
read -r r_udp _ _ <<<"$(udp 20M)"
n3x_down

echo "## Impairments on the n3x switch (a -> b), measured"
echo
echo "| impairment | measured | target |"
echo "|---|---|---|"
awk -v p="$d_p50" -v b="$n_p50" -v sd="$d_sd" -v n="$d_n" 'BEGIN {
  printf "| delay 50 ms +- 10 ms (normal, reorder allowed), %d pings at 5 ms | p50 %.2f ms (minus base RTT: %.2f, std error of a p50: %.2f), std dev %.2f ms | p50 50 +- 0.5, std dev 10 +- 1 |\n", n, p, p - b, 1.2533 * 10 / sqrt(n), sd }'
awk -v p="$o_p50" -v b="$n_p50" -v sd="$o_sd" -v n="$o_n" 'BEGIN {
  printf "| same, default reorder = false, %d pings at 50 ms | p50 %.2f ms (minus base RTT: %.2f, std error of a p50: %.2f), std dev %.2f ms | same |\n", n, p, p - b, 1.2533 * 10 / sqrt(n), sd }'
awk -v l="$l_lost" -v t="$l_total" 'BEGIN {
  p = 0.05; m = t * p; s = sqrt(t * p * (1 - p));
  printf "| loss 5%% (Bernoulli), iperf3 UDP 40 Mbit/s | %d of %d lost = %.2f%% (99%% interval %.0f..%.0f) | in the interval |\n", l, t, 100 * l / t, m - 2.576 * s, m + 2.576 * s }'
echo "| (switch counters for that run) | ${l_counters#a->b } | |"
awk -v r="$r_tcp" 'BEGIN { e = 10 * 1448 / 1514;
  printf "| rate 10 Mbit/s, iperf3 TCP (first 2 s omitted) | %.2f Mbit/s goodput (%.1f%% of the %.2f a 10 Mbit/s wire carries) | within 5%% |\n", r * 1000, 100 * r * 1000 / e, e }'
awk -v r="$r_udp" 'BEGIN { e = 10 * 1000 / 1042;
  printf "| rate 10 Mbit/s, iperf3 UDP 20 Mbit/s offered | %.2f Mbit/s goodput (%.1f%% of the %.2f a 10 Mbit/s wire carries) | within 5%% |\n", r, 100 * r / e, e }'

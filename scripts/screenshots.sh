#!/usr/bin/env bash
# Makes the README's pictures from this repo's reference cluster, with the tools the tests
# use (headless Chromium through playwright-core): the topology (`n3x graph`) and a
# `report.html` of a lab run (server-loss, partition, rolling-deploy, disaster-recovery).
# Writes docs/img/{topology.svg,topology.png,report.png}. Needs root (the lab).
#
# Usage: scripts/screenshots.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
  echo "screenshots: needs root (the lab creates network namespaces)" >&2
  exit 2
fi
source scripts/setup.sh >/dev/null
cargo build -q --release -p n3x
n3x=$PWD/target/release/n3x
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mkdir -p docs/img
"$n3x" graph -o docs/img/topology.svg
"$n3x" lab run --scenario server-loss --scenario partition --scenario rolling-deploy --scenario disaster-recovery \
  --report "$out/report" >/dev/null 2>"$out/run.log" || { tail -20 "$out/run.log" >&2; exit 1; }
(cd tests/browser && node screenshot.mjs "$OLDPWD/docs/img/topology.svg" "$OLDPWD/docs/img/topology.png" 2000)
(cd tests/browser && node screenshot.mjs "$out/report/report.html" "$OLDPWD/docs/img/report.png" 1280 2300)
echo "screenshots: docs/img/topology.svg, docs/img/topology.png, docs/img/report.png"

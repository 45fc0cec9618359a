#!/usr/bin/env bash
# The main job on the embedded default: build n3x, check the reference cluster
# (n3x.toml), then emulate it on this machine with `n3x lab run` (needs root: the lab
# creates network namespaces) and print the scenario report.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release -q -p n3x
./target/release/n3x check
./target/release/n3x lab run --report n3x-lab-report

#!/usr/bin/env bash
# The main job on the embedded default: build n3x, check the reference inventory
# (n3x.toml), and print the resolved cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release -q -p n3x
./target/release/n3x check
./target/release/n3x show

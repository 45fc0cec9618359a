#!/usr/bin/env bash
# The whole test suite, as CI runs it: warning-free build, clippy, every test.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
export CARGO_TERM_COLOR=never
echo "== build (warnings are errors)"
RUSTFLAGS="${RUSTFLAGS:-} -D warnings" cargo build --workspace --all-targets
echo "== format"
cargo fmt --check
echo "== clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== tests"
# Snapshots never update themselves here: a changed output fails.
INSTA_UPDATE=no cargo test --workspace

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
# Snapshots never update themselves here: a changed output fails. The lab and switch
# tests need root and etcd; without them they print SKIPPED, and fail when CI is set.
INSTA_UPDATE=no cargo test --workspace
echo "== lab scenarios (root)"
if [[ $(id -u) -eq 0 ]]; then
  cargo build -q --release -p n3x
  report=${N3X_REPORT_DIR:-target/lab-reports}
  # The reference cluster (n3x.toml, Jetsons on the `edge` profile): the default scenarios,
  # then the profiles scenario.
  timeout 600 ./target/release/n3x lab run --report "$report/reference"
  timeout 600 ./target/release/n3x lab run --scenario profiles --report "$report/profiles"
  # A second cluster: five servers, kernel fabric chosen automatically.
  timeout 600 ./target/release/n3x lab run -f examples/five-servers.toml --report "$report/five-servers"
  # Deploys rehearsed in the lab (real sshd on every host), on both clusters, with the
  # all-at-once baseline and the rollout without a leadership transfer measured beside.
  deploys=(--scenario rolling-deploy --scenario bad-deploy --scenario deploy-cut --scenario all-at-once --scenario rolling-no-transfer)
  timeout 900 ./target/release/n3x lab run "${deploys[@]}" --report "$report/deploy-reference"
  timeout 900 ./target/release/n3x lab run -f examples/five-servers.toml "${deploys[@]}" --report "$report/deploy-five-servers"
  # A backup taken over SSH, every server destroyed, the cluster restored from it (k3s's
  # cluster-reset procedure), on both clusters.
  timeout 600 ./target/release/n3x lab run --scenario disaster-recovery --report "$report/recovery-reference"
  timeout 600 ./target/release/n3x lab run -f examples/five-servers.toml --scenario disaster-recovery --report "$report/recovery-five-servers"
  # The runbooks' scenarios that no run above covers, on both clusters.
  runbooks=(--scenario cert-rotation --scenario agent-replace --scenario token-rotation)
  timeout 900 ./target/release/n3x lab run "${runbooks[@]}" --report "$report/runbooks-reference"
  timeout 900 ./target/release/n3x lab run -f examples/five-servers.toml "${runbooks[@]}" --report "$report/runbooks-five-servers"
  # Every report.html of this run, in headless Chromium from disk: no console error, no
  # network request, figures drawn, a screenshot that is not blank.
  echo "== report.html in headless Chromium"
  node tests/browser/check-page.mjs --out "$report/screenshots" "$report"/*/report.html
elif [[ -n "${CI:-}" && "${CI}" != 0 && "${CI}" != false ]]; then
  echo "lab scenarios need root, and CI is set: a skip is a failure here (run as root)" >&2
  exit 1
else
  echo "SKIPPED: lab scenarios need root"
fi

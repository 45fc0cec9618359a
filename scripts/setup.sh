#!/usr/bin/env bash
# Installs what n3x's build and tests need on Debian/Ubuntu, idempotently.
# Sourced by quickstart.sh and test.sh; safe to run on its own.
set -euo pipefail

# Debian packages n3x and its tests use. Kept in one place so CI and people agree:
# etcd-server (the lab's datastore), etcd-client (etcdctl: `backup verify`, the lab's restore double, benchmarks), iproute2 and nftables
# (the lab's fabric), util-linux (setpriv, for the non-root test), iperf3 (switch bench),
# nix-bin (parses and evaluates the flake's Nix), age (cross-checks secrets).
# iputils-ping (the switch's ping test), openssh-client, strace and python3-cryptography
# (the secrets tests: ssh-keygen, no secret in any argv, an independent SOPS encoder),
# openssh-server (every lab host's sshd, which `n3x deploy --lab` and `install --lab` reach),
# graphviz (renders `n3x graph --format dot` in the tests), chromium and fonts-dejavu-core
# (the headless browser tests of report.html and the mermaid output), prometheus (its
# promtool checks the monitoring add-on's alert rules and fires each on test series).
APT_PACKAGES=(ca-certificates git etcd-server etcd-client iproute2 nftables util-linux iperf3 procps nix-bin age iputils-ping openssh-client openssh-server strace python3-cryptography graphviz chromium fonts-dejavu-core prometheus)
# Node.js and npm drive the browser tests; a machine that has them (from anywhere) keeps them.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  APT_PACKAGES+=(nodejs npm)
fi

need_apt=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$p")
done
if ((${#need_apt[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "n3x setup: missing Debian packages: ${need_apt[*]}" >&2
    echo "  fix: sudo apt-get install -y ${need_apt[*]}   (or run this script as root)" >&2
    exit 2
  fi
  echo "n3x setup: installing ${need_apt[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# pyflakes (PyPI): the tests lint every generated NixOS VM test script as the NixOS test
# driver does before running one.
if ! python3 -m pyflakes --version >/dev/null 2>&1; then
  echo "n3x setup: installing pyflakes (pip)" >&2
  python3 -m pip install -q pyflakes 2>/dev/null \
    || python3 -m pip install -q --break-system-packages pyflakes \
    || { echo "n3x setup: cannot install pyflakes; fix: python3 -m pip install pyflakes" >&2; exit 2; }
fi

# The browser tests' npm packages (playwright-core drives Debian's chromium; mermaid
# renders `n3x graph --format mermaid`), pinned by tests/browser/package-lock.json.
browser_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/browser"
if [[ ! -f "$browser_dir/node_modules/.package-lock.json" ]] \
  || ! cmp -s "$browser_dir/package-lock.json" "$browser_dir/node_modules/.n3x-lock"; then
  echo "n3x setup: installing the browser tests' npm packages (npm ci)" >&2
  (cd "$browser_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) \
    || { echo "n3x setup: npm ci failed in $browser_dir; fix: check that the npm registry is reachable" >&2; exit 2; }
  cp "$browser_dir/package-lock.json" "$browser_dir/node_modules/.n3x-lock"
fi

if ! command -v cargo >/dev/null 2>&1; then
  for d in "$HOME/.cargo/bin" /root/.cargo/bin /usr/local/cargo/bin; do
    [[ -x "$d/cargo" ]] && export PATH="$d:$PATH" && break
  done
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "n3x setup: cargo not found. n3x needs Rust 1.85 or newer (edition 2024)." >&2
  echo "  fix: install it with rustup (https://rustup.rs), then run this again." >&2
  exit 2
fi
rust_minor=$(rustc --version | awk '{split($2, v, "."); print v[2]}')
if (( rust_minor < 85 )); then
  echo "n3x setup: $(rustc --version) is too old; n3x needs Rust 1.85 or newer." >&2
  echo "  fix: rustup update stable" >&2
  exit 2
fi

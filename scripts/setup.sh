#!/usr/bin/env bash
# Installs what the build, the demo and the tests need on a fresh Debian machine (idempotent).
# The Rust toolchain is assumed present (rustup); everything else comes from Debian's packages.
set -euo pipefail

need=()
command -v cc >/dev/null || need+=(gcc)
command -v ip >/dev/null || need+=(iproute2)
command -v python3 >/dev/null || need+=(python3)
command -v curl >/dev/null || need+=(curl)
command -v nft >/dev/null || need+=(nftables)   # packet loss in the fault-injection test
command -v chromium >/dev/null || need+=(chromium)            # the dashboard's browser test
command -v chromedriver >/dev/null || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing ${need[*]}; run as root or install them" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust with rustup first" >&2; exit 1; }
echo "setup: ok"

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
# The mDNS interoperability test's second implementation (Python zeroconf): from PyPI for the
# python3 on PATH, else Debian's package.
if ! python3 -c 'import zeroconf' 2>/dev/null; then
  python3 -m pip install -q zeroconf 2>/dev/null \
    || { [ "$(id -u)" -eq 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-zeroconf; } \
    || { echo "setup: python3 module zeroconf missing; pip install zeroconf" >&2; exit 1; }
fi
command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust with rustup first" >&2; exit 1; }
echo "setup: ok"

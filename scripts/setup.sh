#!/usr/bin/env bash
# Installs what is missing on a fresh Debian machine (idempotent). The Rust toolchain is assumed
# present (rustup).
#
#   scripts/setup.sh           what the build and the demo need: a C compiler, python3, curl
#                              (nothing to install, and so no root, when they are there)
#   scripts/setup.sh --tests   also what the tests need: iproute2 and nftables (network
#                              namespaces, packet loss), Chromium and chromedriver (the dashboard's
#                              browser test), promtool and Python's prometheus_client (the metrics
#                              formats), Python's zeroconf (mDNS interoperability) and
#                              openapi-spec-validator (the OpenAPI document), Node.js with the
#                              TypeScript compiler (the TypeScript client) and js-libp2p (the
#                              interoperability test)
set -euo pipefail
cd "$(dirname "$0")/.."

tests=false
case "${1:-}" in
  --tests) tests=true ;;
  "") ;;
  *) echo "usage: scripts/setup.sh [--tests]" >&2; exit 2 ;;
esac

command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust with rustup first" >&2; exit 1; }

root() { [ "$(id -u)" -eq 0 ]; }
need=()
command -v cc >/dev/null || need+=(gcc)
command -v python3 >/dev/null || need+=(python3)
command -v curl >/dev/null || need+=(curl)
if $tests; then
  command -v ip >/dev/null || need+=(iproute2)
  command -v nft >/dev/null || need+=(nftables)
  command -v openssl >/dev/null || need+=(openssl)   # certificates for the TLS test
  command -v chromium >/dev/null || need+=(chromium)
  command -v chromedriver >/dev/null || need+=(chromium-driver)
  python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
  command -v npm >/dev/null || need+=(nodejs npm)                # the TypeScript client
fi
if [ ${#need[@]} -gt 0 ]; then
  root || { echo "setup: missing ${need[*]}; run as root or install them" >&2; exit 1; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
$tests || { echo "setup: ok"; exit 0; }

# Python modules the tests import: from PyPI for the python3 on PATH, else Debian's package.
for triple in zeroconf:zeroconf:python3-zeroconf \
              prometheus_client:prometheus_client:python3-prometheus-client \
              openapi_spec_validator:openapi-spec-validator:python3-openapi-spec-validator; do
  module=${triple%%:*} rest=${triple#*:}
  pypi=${rest%%:*} package=${rest#*:}
  python3 -c "import $module" 2>/dev/null && continue
  python3 -m pip install -q "$pypi" 2>/dev/null \
    || python3 -m pip install -q --break-system-packages "$pypi" 2>/dev/null \
    || { root && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package"; } \
    || { echo "setup: python3 module $module missing; pip install $pypi" >&2; exit 1; }
done

# promtool, from Debian's prometheus package: only the one binary, not the server or its service.
if ! command -v promtool >/dev/null; then
  root || { echo "setup: promtool missing; run as root or put it on PATH" >&2; exit 1; }
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq prometheus 2>/dev/null \
     || { apt-get update -qq && apt-get download -qq prometheus; })
  dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x"
  install -m 0755 "$tmp/x/usr/bin/promtool" /usr/local/bin/promtool
  chmod -R u+w "$tmp" && rm -rf "$tmp"
fi
# The TypeScript client's compiler and the js-libp2p peer of the interoperability test, at the
# versions their package-lock.json files pin.
[ -d clients/ts/node_modules/typescript ] || (cd clients/ts && npm ci --no-audit --no-fund --silent)
[ -d interop/js/node_modules/libp2p ] || (cd interop/js && npm ci --no-audit --no-fund --silent)
echo "setup: ok (with the test tools)"

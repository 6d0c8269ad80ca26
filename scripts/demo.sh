#!/usr/bin/env bash
# The demo: 15 simulated nodes on a 4-regular mesh, each writing to a replicated grow-only set, run
# with every synchronisation algorithm; prints how much each one transmitted until all converged.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/demo}
cargo build --release -q -p deltanode
./target/release/deltanode sim --topology mesh --workload gset --out "$out"
echo "charts and CSV in $out/"

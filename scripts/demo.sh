#!/usr/bin/env bash
# The demo: three real nodes (one sync round a second, to watch them converge) on loopback, wired in a line (a - b - c) with --peer; each writes to a
# shared counter, set and map; the script prints every node's state digest until they agree, shows
# the converged state, and stops the nodes (also on Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."
# DELTANODE_BIN names a binary to use instead of building the release one.
if [ -n "${DELTANODE_BIN:-}" ]; then
  bin=$DELTANODE_BIN
else
  cargo build --release -q -p deltanode
  bin=$PWD/target/release/deltanode
fi
work=$(mktemp -d)
pids=()
cleanup() {
  [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# ready FILE KEY: a field of a node's ready line (listen: its first address).
ready() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); v=r[sys.argv[2]]; print(v[0] if isinstance(v, list) else v)' "$1" "$2"; }

start() {
  local name=$1; shift
  "$bin" run --data-dir "$work/$name" --listen /ip4/127.0.0.1/tcp/0 --api 127.0.0.1:0 --no-mdns \
    --sync-interval 1000 "$@" >"$work/$name.ready" 2>"$work/$name.log" &
  pids+=($!)
  until [ -s "$work/$name.ready" ]; do sleep 0.1; done
  echo "node $name: $(ready "$work/$name.ready" peer_id) API http://$(ready "$work/$name.ready" api)"
}

start a
start b --peer "$(ready "$work/a.ready" listen)"
start c --peer "$(ready "$work/b.ready" listen)"
api() { echo "http://$(ready "$work/$1.ready" api)"; }

post() { curl -sf -X POST "$(api "$1")/v1/objects/$2" -d "$3" >/dev/null; }
post a visits '{"type":"counter","op":"inc","by":5}'
post b visits '{"type":"counter","op":"dec","by":2}'
post c visits '{"type":"counter","op":"inc","by":10}'
post a tags '{"type":"set","op":"add","value":"from-a"}'
post c tags '{"type":"set","op":"add","value":"from-c"}'
post b notes '{"type":"map","op":"put","field":"title","value":"written on b"}'
echo "wrote on a, b and c; digests until they agree:"

for _ in $(seq 50); do
  digests=()
  for n in a b c; do digests+=("$(curl -sf "$(api $n)/v1/state" | python3 -c 'import json,sys; print(json.load(sys.stdin)["digest"][:16])')"); done
  echo "  a=${digests[0]} b=${digests[1]} c=${digests[2]}"
  if [ "${digests[0]}" = "${digests[1]}" ] && [ "${digests[1]}" = "${digests[2]}" ]; then
    echo "converged; the state on c:"
    curl -sf "$(api c)/v1/state" | python3 -m json.tool
    exit 0
  fi
  sleep 0.2
done
echo "did not converge; logs in $work" >&2
trap - EXIT
exit 1

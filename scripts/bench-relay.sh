#!/usr/bin/env bash
# The relay side of the side-by-side ingest comparison (docs/BENCHMARKS.md,
# issue 12): starts nostr-rs-relay (SQLite, its defaults: WAL with
# `synchronous = NORMAL`, no per-event fsync; no event rate limit) in a
# temp directory on a free loopback port, drives it with
# scripts/nostr-load.py (notes signed before the timed window) and prints
# the client's JSON line: events/s, p50/p99 and the relay's CPU per
# accepted event (utime + stime from /proc).
#
#   RELAY_BIN=/path/to/nostr-rs-relay scripts/bench-relay.sh [nostr-load args…]
#
# Defaults: 16 clients × 4 in flight, 10 s, 60,000 pre-signed notes, two
# client processes (the Python client costs ≈ 230 µs of CPU per event).
# Run it alternately with `scripts/bench-cpu.sh sqlite ingest --presign N`.
set -euo pipefail
cd "$(dirname "$0")/.."
relay="${RELAY_BIN:-nostr-rs-relay}"
work="$(mktemp -d /tmp/distsoc-relay.XXXXXX)"
rpid=""
cleanup() {
    if [ -n "$rpid" ]; then kill "$rpid" 2>/dev/null || true; wait "$rpid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cat >"$work/relay.toml" <<EOF
[info]
relay_url = "ws://127.0.0.1:$port/"
name = "side-by-side"
[database]
data_directory = "$work/db"
[network]
address = "127.0.0.1"
port = $port
[options]
reject_future_seconds = 1800
[limits]
EOF
mkdir -p "$work/db"
RUST_LOG="${RELAY_LOG:-warn}" "$relay" --config "$work/relay.toml" --db "$work/db" >"$work/relay.log" 2>&1 &
rpid=$!
for _ in $(seq 100); do
    python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1',$port)))" && break
    sleep 0.1
done
python3 scripts/nostr-load.py --url "ws://127.0.0.1:$port" --clients "${CLIENTS:-16}" \
    --concurrency "${CONC:-4}" --duration "${DURATION:-10}" --presign "${PRESIGN:-60000}" \
    --procs "${PROCS:-2}" --server-pid "$rpid" "$@"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"

#!/usr/bin/env bash
# Anchor load benchmarks, as recorded in docs/BENCHMARKS.md.
#
#   scripts/bench-anchor.sh sqlite     # one anchor on embedded SQLite
#   scripts/bench-anchor.sh postgres   # one anchor on a throwaway PostgreSQL
#   scripts/bench-anchor.sh scaleout   # two anchors on one PostgreSQL:
#                                      # FetchWait on one, Enqueue on the other
#
# Everything runs on this machine on loopback. The PostgreSQL cluster is a
# throwaway one in a temp dir (unix socket only, default durability:
# fsync=on, synchronous_commit=on), removed at exit. Extra arguments go to
# every `distsoc loadgen` run (e.g. --duration 30); CLIENTS, CONC and
# DURATION (default 16, 4, 10) set its clients, requests in flight per
# client and seconds:
#
#   CLIENTS=2 CONC=1 scripts/bench-anchor.sh scaleout   # one sender, one waiter
#
# Every run prints, per scenario, throughput and p50/p99 per operation and
# the server's CPU per operation (`cpu per …` line: the anchor process and,
# on PostgreSQL, the whole cluster, read from /proc; with the loadgen's own
# and the load average). Posts for `ingest` are signed before the timed
# window (--presign), so the load generator leaves the CPU to the server.
#
# Environment:
#   SCENARIOS="mailbox fetchwait ingest"   which scenarios to run (sqlite, postgres)
#   PRESIGN=200000                         posts signed before an ingest run
#   ANCHOR_BIN=path                        another distsoc-anchor binary (e.g. an
#                                          older build, for before/after runs)
set -euo pipefail

mode="${1:-sqlite}"
shift || true
cd "$(dirname "$0")/.."

cargo build --release -q -p distsoc-anchor -p distsoc-tools
target_dir="${CARGO_TARGET_DIR:-target}"
anchor="${ANCHOR_BIN:-$target_dir/release/distsoc-anchor}"
scenarios="${SCENARIOS:-mailbox fetchwait ingest}"
presign="${PRESIGN:-200000}"
pg_pid=""
distsoc="$target_dir/release/distsoc"
work="$(mktemp -d /tmp/distsoc-bench.XXXXXX)"
pids=()
pg_data=""
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "$pg_data" ]; then run_pg pg_ctl -D "$pg_data" -m fast -w stop >/dev/null 2>&1 || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# PostgreSQL refuses to run as root: run its binaries as `postgres` then.
run_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_bin() {
    if command -v initdb >/dev/null; then return; fi
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
    [ -n "$d" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
    PATH="$d:$PATH"
}

start_pg() {
    pg_bin
    pg_data="$work/pg"
    mkdir -p "$pg_data"
    if [ "$(id -u)" = 0 ]; then chown postgres "$work" "$pg_data"; fi
    run_pg initdb -D "$pg_data" --auth=trust -U postgres >/dev/null
    run_pg pg_ctl -D "$pg_data" -l "$pg_data/log" -w \
        -o "-c listen_addresses='' -c unix_socket_directories='$pg_data' -c max_connections=200" start >/dev/null
    run_pg psql -h "$pg_data" -U postgres -qc "CREATE DATABASE distsoc" postgres
    url="host=$pg_data user=postgres dbname=distsoc"
    pg_pid="$(head -1 "$pg_data/postmaster.pid")"
}

# new_anchor NAME STORE: starts an anchor; its connect string is in $REPLY,
# its pid in $anchor_pid.
# (Functions that start processes run in this shell, not in $(…), so that
# cleanup knows every pid.)
new_anchor() {
    local dir="$work/$1"
    "$anchor" --data-dir "$dir" init >/dev/null
    sed -i -e 's/^\(ip_\)\{0,1\}rate_limit_per_second = .*/\1rate_limit_per_second = 1000000/' \
        -e 's/^\(ip_\)\{0,1\}rate_limit_burst = .*/\1rate_limit_burst = 1000000/' \
        -e 's/^post_quota_\(author\|depositor\)_\(posts\|bytes\) = .*/post_quota_\1_\2 = 0/' \
        "$dir/anchor.toml"
    local out="$work/$1.out"
    RUST_LOG=warn "$anchor" --data-dir "$dir" run --listen 127.0.0.1:0 \
        --admin-listen "" --metrics-listen "" --store "$2" >"$out" 2>"$work/$1.log" &
    anchor_pid=$!
    pids+=($!)
    # The connect string is printed once the anchor serves.
    for _ in $(seq 300); do
        if [ -s "$out" ]; then REPLY="$(head -1 "$out")"; return; fi
        sleep 0.1
    done
    echo "anchor $1 did not start:" >&2
    cat "$work/$1.log" >&2
    exit 1
}

loadgen() {
    echo "== distsoc loadgen $*" >&2
    "$distsoc" loadgen --no-progress --clients "${CLIENTS:-16}" \
        --concurrency-per-client "${CONC:-4}" --duration "${DURATION:-10}" "$@"
}

# scenario TARGET NAME [args…]: one loadgen run with the server CPU watched.
scenario() {
    local target="$1" name="$2"
    shift 2
    local cpu=(--server-pid "$anchor_pid")
    if [ -n "$pg_pid" ]; then cpu+=(--postgres-pid "$pg_pid"); fi
    if [ "$name" = ingest ] && [ "$presign" != 0 ]; then cpu+=(--presign "$presign"); fi
    loadgen --target "$target" --scenario "$name" "${cpu[@]}" "$@"
}

case "$mode" in
    sqlite)
        new_anchor a "sqlite:$work/a.sqlite"; a="$REPLY"
        for s in $scenarios; do scenario "$a" "$s" "$@"; done
        ;;
    postgres)
        start_pg
        new_anchor a "$url"; a="$REPLY"
        for s in $scenarios; do scenario "$a" "$s" "$@"; done
        ;;
    scaleout)
        start_pg
        new_anchor a "$url"; a="$REPLY"
        new_anchor b "$url"; b="$REPLY"
        # The CPU watched is anchor B's (the waiters') and the cluster's.
        scenario "$a" fetchwait --wait-target "$b" "$@"
        ;;
    *)
        echo "usage: $0 sqlite|postgres|scaleout [loadgen args…]" >&2
        exit 2
        ;;
esac

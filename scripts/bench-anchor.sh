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
# every `distsoc loadgen` run; CLIENTS, CONC and DURATION (default 16, 4,
# 10) set its clients, requests in flight per client and seconds:
#
#   CLIENTS=2 CONC=1 scripts/bench-anchor.sh scaleout   # one sender, one waiter
set -euo pipefail

mode="${1:-sqlite}"
shift || true
cd "$(dirname "$0")/.."

cargo build --release -q -p distsoc-anchor -p distsoc-tools
target_dir="${CARGO_TARGET_DIR:-target}"
anchor="$target_dir/release/distsoc-anchor"
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
}

# new_anchor NAME STORE: starts an anchor; its connect string is in $REPLY.
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

case "$mode" in
    sqlite)
        new_anchor a "sqlite:$work/a.sqlite"; a="$REPLY"
        for s in mailbox fetchwait ingest; do loadgen --target "$a" --scenario "$s" "$@"; done
        ;;
    postgres)
        start_pg
        new_anchor a "$url"; a="$REPLY"
        for s in mailbox fetchwait ingest; do loadgen --target "$a" --scenario "$s" "$@"; done
        ;;
    scaleout)
        start_pg
        new_anchor a "$url"; a="$REPLY"
        new_anchor b "$url"; b="$REPLY"
        loadgen --target "$a" --wait-target "$b" --scenario fetchwait "$@"
        ;;
    *)
        echo "usage: $0 sqlite|postgres|scaleout [loadgen args…]" >&2
        exit 2
        ;;
esac

#!/usr/bin/env bash
# Server CPU per operation for one load-generator scenario, read from /proc:
# utime + stime of the anchor process and, on PostgreSQL, of every process
# of the throwaway cluster, before and after the run (docs/BENCHMARKS.md,
# issue 12). Prints one line per run: throughput, latency and µs of server
# CPU per operation, plus the load average.
#
#   scripts/bench-cpu.sh sqlite|postgres SCENARIO [loadgen args…]
#
# SCENARIO is a `distsoc loadgen --scenario` (mailbox, fetchwait, ingest,
# notify). An "operation" is one enqueue + fetch for `mailbox`, one
# delivered message (enqueue + FetchWait wake) for `fetchwait`, one post
# for `ingest`, one acknowledged notification (a request that costs the
# anchor nothing but its stream) for `notify`. BIN_DIR (default
# target/release, built first) selects the binaries, so a saved build can be
# compared with the current one:
#
#   BIN_DIR=/tmp/before scripts/bench-cpu.sh sqlite mailbox
#   CLIENTS=2 CONC=1 scripts/bench-cpu.sh postgres fetchwait   # one sender, one waiter
#   PG_STATS=/tmp/stmts.txt scripts/bench-cpu.sh postgres mailbox
#   ANCHOR_SET="pg_write_workers = 1" scripts/bench-cpu.sh postgres mailbox   # an anchor.toml setting
#
# ANCHOR_SET="key = value[; key = value…]" sets anchor.toml keys after
# `init` (each key must already be in the file).
#
# PG_STATS=FILE (PostgreSQL) loads pg_stat_statements and writes to FILE,
# after the run, the statements by calls and the cluster's commits
# (xact_commit): round trips and commits per operation.
#
# Everything runs on this machine on loopback; the PostgreSQL cluster is a
# throwaway one in a temp dir (unix socket, default durability), removed at
# exit.
set -euo pipefail

backend="${1:?usage: $0 sqlite|postgres SCENARIO [loadgen args…]}"
scenario="${2:?usage: $0 sqlite|postgres SCENARIO [loadgen args…]}"
shift 2
cd "$(dirname "$0")/.."

if [ -z "${BIN_DIR:-}" ]; then
    cargo build --release -q -p distsoc-anchor -p distsoc-tools
    BIN_DIR="${CARGO_TARGET_DIR:-target}/release"
fi
anchor="$BIN_DIR/distsoc-anchor"
distsoc="$BIN_DIR/distsoc"
work="$(mktemp -d /tmp/distsoc-cpu.XXXXXX)"
pids=()
pg_data=""
run_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "$pg_data" ]; then run_pg pg_ctl -D "$pg_data" -m fast -w stop >/dev/null 2>&1 || true; fi
    if [ -n "${KEEP_LOG:-}" ]; then cp "$work/a.log" "$KEEP_LOG"; fi
    rm -rf "$work"
}
trap cleanup EXIT

case "$backend" in
    sqlite) store="sqlite:$work/a.sqlite" ;;
    postgres)
        pg_data="$work/pg"
        mkdir -p "$pg_data"
        if [ "$(id -u)" = 0 ]; then chown postgres "$work" "$pg_data"; fi
        run_pg initdb -D "$pg_data" --auth=trust -U postgres >/dev/null
        pg_opts="-c listen_addresses='' -c unix_socket_directories='$pg_data' -c max_connections=200"
        if [ -n "${PG_STATS:-}" ]; then pg_opts="$pg_opts -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"; fi
        run_pg pg_ctl -D "$pg_data" -l "$pg_data/log" -w -o "$pg_opts" start >/dev/null
        run_pg psql -h "$pg_data" -U postgres -qc "CREATE DATABASE distsoc" postgres
        if [ -n "${PG_STATS:-}" ]; then
            run_pg psql -h "$pg_data" -U postgres -qc "CREATE EXTENSION pg_stat_statements" distsoc
        fi
        store="host=$pg_data user=postgres dbname=distsoc"
        ;;
    *) echo "backend must be sqlite or postgres" >&2; exit 2 ;;
esac

dir="$work/a"
"$anchor" --data-dir "$dir" init >/dev/null
sed -i -e 's/^\(ip_\)\{0,1\}rate_limit_per_second = .*/\1rate_limit_per_second = 1000000/' \
    -e 's/^\(ip_\)\{0,1\}rate_limit_burst = .*/\1rate_limit_burst = 1000000/' \
    -e 's/^post_quota_\(author\|depositor\)_\(posts\|bytes\) = .*/post_quota_\1_\2 = 0/' \
    "$dir/anchor.toml"
if [ -n "${ANCHOR_SET:-}" ]; then
    IFS=';' read -ra sets <<<"$ANCHOR_SET"
    for kv in "${sets[@]}"; do
        key="$(echo "${kv%%=*}" | tr -d ' ')"
        value="$(echo "${kv#*=}" | sed 's/^ *//; s/ *$//')"
        grep -q "^$key = " "$dir/anchor.toml" || { echo "ANCHOR_SET: no key $key in anchor.toml" >&2; exit 2; }
        sed -i "s|^$key = .*|$key = $value|" "$dir/anchor.toml"
    done
fi
RUST_LOG="${ANCHOR_LOG:-warn}" "$anchor" --data-dir "$dir" run --listen 127.0.0.1:0 \
    --admin-listen "" --metrics-listen "" --store "$store" >"$work/a.out" 2>"$work/a.log" &
apid=$!
pids+=("$apid")
for _ in $(seq 300); do [ -s "$work/a.out" ] && break; sleep 0.1; done
[ -s "$work/a.out" ] || { cat "$work/a.log" >&2; exit 1; }
target="$(head -1 "$work/a.out")"

# Clock ticks (utime + stime) of the anchor, and of the cluster's processes.
ticks() {
    local sum=0 p
    for p in "$@"; do
        if [ -r "/proc/$p/stat" ]; then
            sum=$((sum + $(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$p/stat")))
        fi
    done
    echo "$sum"
}
pg_pids() {
    [ -n "$pg_data" ] || return 0
    local pm
    pm="$(head -1 "$pg_data/postmaster.pid")"
    echo "$pm"
    pgrep -P "$pm" || true
}

hz="$(getconf CLK_TCK)"
# Backends come and go with the pool: count each process's ticks from the
# start (0 for one started during the run) to the end; a process that
# exits during the run loses its ticks on both sides (the pool keeps its
# connections: RecyclingMethod::Fast and no idle timeout).
declare -A start_ticks=()
for p in $(pg_pids); do start_ticks[$p]="$(ticks "$p")"; done
a0="$(ticks "$apid")"
"$distsoc" loadgen --no-progress --target "$target" --scenario "$scenario" \
    --clients "${CLIENTS:-16}" --concurrency-per-client "${CONC:-4}" --duration "${DURATION:-10}" --json "$work/r.json" "$@" >"$work/lg.out"
a1="$(ticks "$apid")"
p0=0
p1=0
for p in $(pg_pids); do
    p1=$((p1 + $(ticks "$p")))
    p0=$((p0 + ${start_ticks[$p]:-0}))
done

if [ -n "${PG_STATS:-}" ] && [ -n "$pg_data" ]; then
    run_pg psql -h "$pg_data" -U postgres -X -c "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = 'distsoc'" \
        -c "SELECT calls, round(total_exec_time::numeric, 1) AS exec_ms, rows, left(regexp_replace(query, '\s+', ' ', 'g'), 110) AS query
              FROM pg_stat_statements ORDER BY calls DESC LIMIT 40" distsoc >"$PG_STATS"
fi

python3 - "$work/r.json" "$scenario" "$backend" "$a0" "$a1" "$p0" "$p1" "$hz" <<'EOF'
import json, sys, os
path, scenario, backend, a0, a1, p0, p1, hz = sys.argv[1:]
r = json.load(open(path))
ops = {o["op"]: o for o in r["ops"]}
dur = r["elapsed_s"]
if scenario == "mailbox":
    n = min(ops["enqueue"]["ok"], ops["fetch"]["ok"]); lat = ops["fetch"]; what = "enqueue+fetch"
elif scenario == "fetchwait":
    n = ops["wake"]["ok"]; lat = ops["wake"]; what = "enqueue+wake"
elif scenario == "notify":
    n = ops["notify"]["ok"]; lat = ops["notify"]; what = "notification"
else:
    n = ops["push_post"]["ok"]; lat = ops["push_post"]; what = "post"
us = lambda t: int(t) * 1e6 / int(hz)
a = us(int(a1) - int(a0)) / max(n, 1)
p = us(int(p1) - int(p0)) / max(n, 1)
load = os.getloadavg()
print(f"{backend} {scenario}: {n} {what} ({n/dur:,.0f}/s), p50/p99 {lat.get('p50_ms')}/{lat.get('p99_ms')} ms, "
      f"anchor CPU {a:.0f} µs/op" + (f" + PostgreSQL {p:.0f} µs/op" if backend == "postgres" else "") +
      f", consistent: {r['consistent']}, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
EOF

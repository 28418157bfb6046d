#!/usr/bin/env python3
"""Load client for a nostr relay, for the side-by-side ingest comparison of
docs/BENCHMARKS.md (issue 12): the relay's counterpart of
`distsoc loadgen --scenario ingest --presign N`.

Signs N kind-1 text notes (NIP-01: id = sha256 of the serialized event,
BIP-340 Schnorr signature; one key per client) *before* the timed window,
then C clients (one WebSocket each) keep K `EVENT`s in flight each for the
duration or until the notes are used up. An event counts when the relay
answers `["OK", id, true, …]` (NIP-20). With --server-pid the relay's CPU
(utime + stime from /proc) over the window is reported per accepted event.

    scripts/nostr-load.py --url ws://127.0.0.1:7000 --clients 16 \
        --concurrency 4 --duration 10 --presign 60000 --server-pid PID

Needs `pip install websockets coincurve`. Talks only to the URL it is given
(loopback); every loop is bounded in count and time.
"""

import argparse
import asyncio
import hashlib
import json
import multiprocessing as mp
import os
import sys
import time


def ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


def sign_batch(args):
    """Signs `n` notes of `size` content bytes with the key of `seed`."""
    import coincurve

    seed, n, size, created_at = args
    key = coincurve.PrivateKey(hashlib.sha256(b"nostr-load-%d" % seed).digest())
    pub = key.public_key_xonly.format().hex()
    out = []
    for i in range(n):
        head = "%d/%d " % (seed, i)
        content = head + "x" * max(0, size - len(head))
        ser = json.dumps(
            [0, pub, created_at, 1, [], content], separators=(",", ":"), ensure_ascii=False
        )
        eid = hashlib.sha256(ser.encode()).digest()
        sig = key.sign_schnorr(eid)
        ev = {
            "id": eid.hex(),
            "pubkey": pub,
            "created_at": created_at,
            "kind": 1,
            "tags": [],
            "content": content,
            "sig": sig.hex(),
        }
        out.append((ev["id"], json.dumps(["EVENT", ev], separators=(",", ":"))))
    return out


async def client(url, events, conc, deadline, stats, lat):
    import websockets

    async with websockets.connect(url, max_size=1 << 20, compression=None) as ws:
        pending = {}
        sem = asyncio.Semaphore(conc)
        done = asyncio.Event()

        async def reader():
            async for raw in ws:
                msg = json.loads(raw)
                if msg[0] == "OK":
                    t0 = pending.pop(msg[1], None)
                    if t0 is not None:
                        lat.append(time.perf_counter() - t0)
                        stats["ok" if msg[2] else "refused"] += 1
                        if not msg[2] and stats["refused"] <= 3:
                            print("refused:", msg[3], file=sys.stderr)
                        sem.release()
                elif msg[0] == "NOTICE":
                    stats["notice"] += 1
                if done.is_set() and not pending:
                    return

        rd = asyncio.create_task(reader())
        for eid, text in events:
            if time.perf_counter() >= deadline:
                break
            await sem.acquire()
            if time.perf_counter() >= deadline:
                sem.release()
                break
            pending[eid] = time.perf_counter()
            await ws.send(text)
            stats["sent"] += 1
        done.set()
        # Grace: at most 2 s for the answers still in flight.
        try:
            await asyncio.wait_for(asyncio.shield(rd), 2.0) if pending else None
        except asyncio.TimeoutError:
            stats["unanswered"] += len(pending)
        rd.cancel()


async def run_proc(url, batches, conc, start_at, duration, q):
    stats = {"ok": 0, "refused": 0, "sent": 0, "notice": 0, "unanswered": 0}
    lat = []
    await asyncio.sleep(max(0.0, start_at - time.time()))
    t0 = time.perf_counter()
    c0 = time.process_time()
    deadline = t0 + duration
    await asyncio.gather(*(client(url, b, conc, deadline, stats, lat) for b in batches))
    q.put((stats, lat, time.perf_counter() - t0, time.process_time() - c0))


def proc_main(url, batches, conc, start_at, duration, q):
    asyncio.run(run_proc(url, batches, conc, start_at, duration, q))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--presign", type=int, default=60000)
    ap.add_argument("--payload-bytes", type=int, default=1024)
    ap.add_argument("--procs", type=int, default=1, help="client processes")
    ap.add_argument("--server-pid", type=int)
    ap.add_argument("--json")
    a = ap.parse_args()

    per = a.presign // a.clients
    created = int(time.time())
    run = int(time.time() * 1000) % 1_000_000
    with mp.Pool(os.cpu_count()) as pool:
        signed = pool.map(
            sign_batch, [(run * 1000 + c, per, a.payload_bytes, created) for c in range(a.clients)]
        )
    groups = [signed[p :: a.procs] for p in range(a.procs)]
    q = mp.Queue()
    start_at = time.time() + 0.5
    hz = os.sysconf("SC_CLK_TCK")
    s0 = ticks(a.server_pid) if a.server_pid else 0
    procs = [
        mp.Process(target=proc_main, args=(a.url, g, a.concurrency, start_at, a.duration, q))
        for g in groups
    ]
    for p in procs:
        p.start()
    results = [q.get(timeout=a.duration + 60) for _ in procs]
    s1 = ticks(a.server_pid) if a.server_pid else 0
    for p in procs:
        p.join()
    stats = {}
    lat = []
    for st, l, _, _ in results:
        for k, v in st.items():
            stats[k] = stats.get(k, 0) + v
        lat += l
    elapsed = max(r[2] for r in results)
    lat.sort()
    pct = lambda p: round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 1) if lat else None
    ok = stats["ok"]
    out = {
        "events_ok": ok,
        "events_per_s": round(ok / elapsed),
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "elapsed_s": round(elapsed, 2),
        **stats,
        "server_cpu_us_per_event": round((s1 - s0) * 1e6 / hz / max(ok, 1), 1)
        if a.server_pid
        else None,
        "client_cpu_us_per_event": round(sum(r[3] for r in results) * 1e6 / max(ok, 1), 1),
        "load": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(out))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f)


if __name__ == "__main__":
    main()

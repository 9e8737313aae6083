#!/usr/bin/env python3
"""A slow stand-in for target/release/loadgen, with exactly its interface,
to test the scripts' plumbing before the real CLI exists:

    LOADGEN=scripts/loadgen_stub.py scripts/side_by_side.sh

    loadgen_stub.py --addr HOST:PORT --clients N --request 'DB {i} 10'
                    --duration SECS [--http] [--json]

Each client sends one request at a time over one connection (keep-alive
for --http) and checks the answer. One Python thread: it measures itself
more than the server past a few thousand requests per second.
"""
import argparse, asyncio, itertools, json, time

def expected_db(i):
    z = (i + 0x9E3779B97F4A7C15) & (2**64 - 1)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
    return f"OK DB {i} value={z ^ (z >> 31):016x}"

async def client(args, host, port, counter, stop, lat, stats):
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        stats["errors"] += 1
        return
    try:
        while time.monotonic() < stop:
            i = next(counter)
            req = args.request.replace("{i}", str(i))
            t = time.monotonic()
            if args.http:
                writer.write(f"GET {req} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for h in head.split(b"\r\n"):
                    if h.lower().startswith(b"content-length:"):
                        length = int(h.split(b":")[1])
                body = (await reader.readexactly(length)).decode().rstrip("\n")
                ok = head.startswith(b"HTTP/1.1 200")
            else:
                writer.write((req + "\n").encode())
                body = (await reader.readline()).decode().rstrip("\n")
                ok = True
            want = "PONG" if req.upper().endswith("PING") else expected_db(i)
            if ok and (body == want or body.startswith(want + " ")):
                stats["answered"] += 1
                lat.append(time.monotonic() - t)
            else:
                stats["errors"] += 1
    except (OSError, asyncio.IncompleteReadError, ValueError):
        stats["errors"] += 1
    finally:
        writer.close()

async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--addr", required=True)
    p.add_argument("--clients", type=int, required=True)
    p.add_argument("--request", required=True)
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--http", action="store_true")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    host, port = args.addr.rsplit(":", 1)
    stats, lat, counter = {"answered": 0, "errors": 0}, [], itertools.count()
    start = time.monotonic()
    stop = start + args.duration
    tasks = []
    for n in range(args.clients):  # connect in batches, as the real one does
        one = client(args, host, int(port), counter, stop, lat, stats)
        # Answers still missing 3 s after the run count as errors.
        tasks.append(asyncio.create_task(asyncio.wait_for(one, args.duration + 3)))
        if n % 256 == 255:
            await asyncio.sleep(0)
    for done in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(done, asyncio.TimeoutError):
            stats["errors"] += 1
    elapsed = time.monotonic() - start
    lat.sort()
    q = lambda f: round(lat[min(len(lat) - 1, int(f * len(lat)))] * 1000, 3) if lat else 0.0
    report = {"requests_per_sec": round(stats["answered"] / elapsed, 1), "p50_ms": q(0.5),
              "p99_ms": q(0.99), "errors": stats["errors"], "answered": stats["answered"]}
    print(json.dumps(report) if args.json else
          " ".join(f"{k}={v}" for k, v in report.items()))

asyncio.run(main())

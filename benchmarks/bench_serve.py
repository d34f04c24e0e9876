"""Load test of `seqgen serve` on loopback: streaming completions from 1, 8 and 64 concurrent
clients, against the same requests served one at a time.

    python benchmarks/bench_serve.py                  # shakespeare, 200 tokens per request
    python benchmarks/bench_serve.py --tokens 100 --levels 1 8 --repeats 3
    python benchmarks/bench_serve.py --client httpx   # the httpx load generator, to compare its cost

Starts its own server on a free 127.0.0.1 port and stops it at the end; every level is bounded in
requests (--rounds per client) and time (--max-seconds). Each repeat runs every level concurrently
and then one at a time, back to back, so both see the same machine load; the table gives medians
over repeats. Reports aggregate tokens/s, time to first token (TTFT), per-token latency (per
request: last token time - first token time over tokens - 1) and the longest wait between two
events of a request (what a token waited at most to be seen, coalescing included), p50 and p99
over requests, failed requests, and the CPU seconds the load generator and the server used per
level. Client and server share the machine.

The default client is a lean HTTP/1.1 client on asyncio streams (one keep-alive connection per
simulated client, chunked decoding, one json.loads per event): with httpx the load generator
itself cost as much CPU as the server, on the same cores, and capped the result.
"""

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time

import httpx
import numpy as np
from machine import matmul_gflops

try:  # the server's event loop (a dependency of seqgen serve off Windows): a cheaper client too
    from uvloop import run
except ImportError:
    from asyncio import run


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model, port):
    cmd = [sys.executable, "-m", "seqgen", "serve", model, "--port", str(port), "--log-level", "warning",
           "--max-queue", "4096", "--max-batch", "256"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start in 120 s")


class Timing:
    """What one streamed request saw: TTFT, per-token latency, longest gap between events, tokens."""

    def __init__(self, start):
        self.start, self.first, self.last, self.gap, self.received = start, None, None, 0.0, 0

    def text(self, chunk):
        k = sum(len(c["text"]) for c in chunk["choices"])  # character model: a character is a token
        if k:
            now = time.perf_counter()
            if self.first is None:
                self.first = now
            else:
                self.gap = max(self.gap, now - self.last)
            self.last = now
            self.received += k

    def result(self, tokens):
        if self.received < tokens:
            raise RuntimeError(f"{self.received} of {tokens} tokens")
        return (self.first - self.start, (self.last - self.first) / max(self.received - 1, 1), self.gap,
                self.received)


def sse_data(event, timing):
    """One server-sent event's data line -> the timing; False at [DONE]."""
    if not event.startswith(b"data: "):
        return True
    if event == b"data: [DONE]":
        return False
    chunk = json.loads(event[6:])
    if "error" in chunk:
        raise RuntimeError(chunk["error"]["message"])
    timing.text(chunk)
    return True


class RawClient:
    """One keep-alive HTTP/1.1 connection on asyncio streams; just enough of the protocol for the
    server's chunked event streams."""

    def __init__(self, host, port):
        self.host, self.port, self.conn = host, port, None

    async def stream(self, path, body, tokens):
        if self.conn is None:
            self.conn = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.conn
        payload = json.dumps(body).encode()
        timing = Timing(time.perf_counter())
        writer.write(b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                     b"\r\n%s" % (path.encode(), self.host.encode(), self.port, len(payload), payload))
        head = (await reader.readuntil(b"\r\n\r\n")).lower()
        status = int(head[9:12])
        if status != 200 or b"transfer-encoding: chunked" not in head:
            self.close()
            raise RuntimeError(f"HTTP {status}")
        buffer, open_ = b"", True
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
            data = await reader.readexactly(size + 2)
            if not size:
                break
            buffer += data[:-2]
            *events, buffer = buffer.split(b"\n\n")
            for event in events:
                open_ = sse_data(event, timing) and open_
        if open_:
            raise RuntimeError("the stream ended without [DONE]")
        return timing.result(tokens)

    def close(self):
        if self.conn is not None:
            self.conn[1].close()
            self.conn = None


class HttpxClient:
    """The same requests through httpx (one pooled client per level)."""

    def __init__(self, client):
        self.client = client

    async def stream(self, path, body, tokens):
        timing = Timing(time.perf_counter())
        async with self.client.stream("POST", path, json=body) as r:
            if r.status_code != 200:
                raise RuntimeError(f"HTTP {r.status_code}")
            async for line in r.aiter_lines():
                if not sse_data(line.encode(), timing):
                    break
        return timing.result(tokens)

    def close(self):
        pass


async def run_level(port, model, prompt, clients, rounds, tokens, max_seconds, one_at_a_time=False, kind="raw"):
    jobs = [(c, r) for c in range(clients) for r in range(rounds)]
    ttfts, per_token, gaps, total, failed = [], [], [], 0, 0
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60, limits=limits) as pool:
        def connection():
            return RawClient("127.0.0.1", port) if kind == "raw" else HttpxClient(pool)

        async def worker(mine):
            nonlocal total, failed
            conn = connection()
            try:
                for c, r in mine:
                    body = {"model": model, "prompt": prompt, "max_tokens": tokens, "seed": 1000 * c + r,
                            "stream": True, "stop": []}
                    try:
                        ttft, latency, gap, n = await conn.stream("/v1/completions", body, tokens)
                        ttfts.append(ttft)
                        per_token.append(latency)
                        gaps.append(gap)
                        total += n
                    except Exception:  # noqa: BLE001  (counted and reported)
                        failed += 1
                        conn.close()
            finally:
                conn.close()

        cpu = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        if one_at_a_time:  # the same requests, each sent when the one before it has finished
            tasks = [worker(jobs)]
        else:
            tasks = [worker([j for j in jobs if j[0] == c]) for c in range(clients)]
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=max_seconds)
        except asyncio.TimeoutError:
            failed += len(jobs) - len(ttfts) - failed
        elapsed = time.perf_counter() - start
        used = resource.getrusage(resource.RUSAGE_SELF)
    client_cpu = used.ru_utime - cpu.ru_utime + used.ru_stime - cpu.ru_stime
    return {"requests": len(jobs), "tokens": total, "seconds": elapsed, "tok_s": total / elapsed,
            "ttft": ttfts, "per_token": per_token, "gaps": gaps, "failed": failed, "client_cpu": client_cpu}


def cpu_seconds(pid):
    """User + system CPU seconds of a process so far (Linux; NaN elsewhere)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return float("nan")


def measured(proc, *level, **kw):
    before = cpu_seconds(proc.pid)
    result = run(run_level(*level, **kw))
    result["server_cpu"] = cpu_seconds(proc.pid) - before
    return result


def bare_kernel(model, streams, tokens, seconds=1.0):
    """Tokens/s of the batched sampler alone (no HTTP, in this process): ``streams`` streams of
    ``tokens`` tokens, repeated for about ``seconds``; the ceiling the service works under."""
    from seqgen.generation.sampler import generate

    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        generate(model, streams, tokens, [0], stop_id=-1, seed=done)
        done += streams * tokens
    return done / (time.perf_counter() - start)


def flops_per_token(model):
    """Multiply-adds x 2 of one sampling step of one stream: every weight matrix but the first
    layer's Wax (a one-hot input selects a row of it)."""
    return 2 * sum(p.size for name, p in model.params.items() if p.ndim == 2 and name != "l0.Wax")


def pct(values, q):
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="shakespeare")
    ap.add_argument("--prompt", default="ROMEO:")
    ap.add_argument("--tokens", type=int, default=200, help="tokens per request")
    ap.add_argument("--rounds", type=int, default=2, help="requests per client")
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 8, 64])
    ap.add_argument("--repeats", type=int, default=3, help="runs of every level (medians reported)")
    ap.add_argument("--client", choices=["raw", "httpx"], default="raw", help="load generator")
    ap.add_argument("--max-seconds", type=float, default=300, help="time bound per level")
    args = ap.parse_args()
    port = free_port()
    proc = start_server(args.model, port)
    loads = [os.getloadavg()[0]]
    runs = {clients: [] for clients in args.levels}
    from seqgen.generation.samples import load_model

    model, kernel = load_model(args.model).model, {1: [], max(args.levels): []}
    try:
        run(run_level(port, args.model, args.prompt, 2, 1, 20, 60, kind=args.client))  # warm-up
        for _ in range(args.repeats):
            for streams, speeds in kernel.items():
                speeds.append(bare_kernel(model, streams, args.tokens))
            for clients in args.levels:
                level = (port, args.model, args.prompt, clients, args.rounds, args.tokens, args.max_seconds)
                together = measured(proc, *level, kind=args.client)
                alone = together if clients == 1 else measured(proc, *level, one_at_a_time=True, kind=args.client)
                runs[clients].append((together, alone))
            loads.append(os.getloadavg()[0])
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    print(f"model {args.model}, {args.tokens} tokens per streamed request, {args.rounds} requests per client, "
          f"{args.client} client, median of {args.repeats} repeats; load average (1 min) "
          f"{min(loads):.1f}-{max(loads):.1f} over the run, {os.cpu_count()} CPUs")
    print("| clients | requests | tokens/s | one at a time | speed-up | TTFT p50 | TTFT p99 | per-token p50 "
          "| per-token p99 | longest wait p99 | failed | client CPU s | server CPU s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for clients, pairs in runs.items():
        def med(f, pairs=pairs):
            return statistics.median(f(t, a) for t, a in pairs)

        failed = sum(t["failed"] + a["failed"] * (a is not t) for t, a in pairs)
        print(f"| {clients} | {pairs[0][0]['requests']} | {med(lambda t, a: t['tok_s']):,.0f} "
              f"| {med(lambda t, a: a['tok_s']):,.0f} | {med(lambda t, a: t['tok_s'] / a['tok_s']):.1f}x "
              f"| {med(lambda t, a: pct(t['ttft'], 50)):.1f} ms | {med(lambda t, a: pct(t['ttft'], 99)):.1f} ms "
              f"| {med(lambda t, a: pct(t['per_token'], 50)):.2f} ms "
              f"| {med(lambda t, a: pct(t['per_token'], 99)):.2f} ms "
              f"| {med(lambda t, a: pct(t['gaps'], 99)):.1f} ms | {failed} "
              f"| {med(lambda t, a: t['client_cpu']):.2f} | {med(lambda t, a: t['server_cpu']):.2f} |")
    per_repeat = (f"{clients}: " + ", ".join(f"{t['tok_s'] / a['tok_s']:.1f}x" for t, a in pairs)
                  for clients, pairs in runs.items())
    print("speed-up per repeat: " + "; ".join(per_repeat))
    one, many = (statistics.median(speeds) for speeds in kernel.values())
    print(f"bare sampler (no HTTP, same repeats): 1 stream {one:,.0f} tokens/s, {max(args.levels)} streams "
          f"{many:,.0f} tokens/s = {many / one:.1f}x, the most batching itself can give")
    flops, peak, cores = flops_per_token(model), matmul_gflops()["openblas, one core"], os.cpu_count()
    ceiling = cores * peak * 1e9 / flops
    alone = statistics.median(a["tok_s"] for _, a in runs[max(args.levels)])
    print(f"arithmetic: {flops / 1e6:.2f} MFLOP per token; one core's float32 matrix product runs at {peak:.0f} "
          f"GFLOP/s; the bare sampler reaches {one * flops / 1e9:.0f} GFLOP/s on 1 stream "
          f"({one * flops / 1e9 / peak:.0%} of a core) and {many * flops / 1e9:.0f} on {max(args.levels)} "
          f"({many * flops / 1e9 / peak:.0%}). Ceiling, all {cores} cores at that rate doing nothing but the "
          f"products: {ceiling:,.0f} tokens/s = {ceiling / alone:.1f}x the one-at-a-time figure")


if __name__ == "__main__":
    main()

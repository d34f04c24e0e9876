"""Load test of `seqgen serve` on loopback: streaming completions from 1, 8 and 64 concurrent
clients, against the same requests served one at a time.

    python benchmarks/bench_serve.py                  # shakespeare, 200 tokens per request
    python benchmarks/bench_serve.py --tokens 100 --levels 1 8

Starts its own server on a free 127.0.0.1 port and stops it at the end; every level is bounded in
requests (--rounds per client) and time (--max-seconds). Reports aggregate tokens/s, time to first
token (TTFT) and per-token latency (per request: last token time - first token time over tokens - 1),
p50 and p99 over requests, and failed requests. Client and server share the machine.
"""

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time

import httpx
import numpy as np


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


async def one_request(client, model, prompt, tokens, seed):
    """Stream one completion; returns (TTFT s, per-token latency s, tokens received) or raises.
    Per-token latency is (time of the last token - time of the first) / (tokens - 1), as the
    client sees it (chunks that carry several tokens share the gap)."""
    body = {"model": model, "prompt": prompt, "max_tokens": tokens, "seed": seed, "stream": True, "stop": []}
    start = time.perf_counter()
    first = last = None
    received = 0
    async with client.stream("POST", "/v1/completions", json=body) as r:
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}")
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            data = json.loads(line[6:])
            if "error" in data:
                raise RuntimeError(data["error"]["message"])
            k = sum(len(c["text"]) for c in data["choices"])  # character model: a character is a token
            if k:
                last = time.perf_counter()
                first = first or last
                received += k
    if received < tokens:
        raise RuntimeError(f"{received} of {tokens} tokens")
    return first - start, (last - first) / max(received - 1, 1), received


async def run_level(url, model, prompt, clients, rounds, tokens, max_seconds, one_at_a_time=False):
    jobs = [(c, r) for c in range(clients) for r in range(rounds)]
    ttfts, gaps, total, failed = [], [], 0, 0
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        async def worker(mine):
            nonlocal total, failed
            for c, r in mine:
                try:
                    ttft, per_token, n = await one_request(client, model, prompt, tokens, 1000 * c + r)
                    ttfts.append(ttft)
                    gaps.append(per_token)
                    total += n
                except Exception:  # noqa: BLE001  (counted and reported)
                    failed += 1

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
    return {"requests": len(jobs), "tokens": total, "seconds": elapsed, "tok_s": total / elapsed,
            "ttft": ttfts, "gaps": gaps, "failed": failed}


def pct(values, q):
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="shakespeare")
    ap.add_argument("--prompt", default="ROMEO:")
    ap.add_argument("--tokens", type=int, default=200, help="tokens per request")
    ap.add_argument("--rounds", type=int, default=2, help="requests per client")
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 8, 64])
    ap.add_argument("--max-seconds", type=float, default=300, help="time bound per level")
    args = ap.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(args.model, port)
    try:
        asyncio.run(run_level(url, args.model, args.prompt, 2, 1, 20, 60))  # warm-up
        rows = []
        for clients in args.levels:
            level = (url, args.model, args.prompt, clients, args.rounds, args.tokens, args.max_seconds)
            together = asyncio.run(run_level(*level))
            alone = together if clients == 1 else asyncio.run(run_level(*level, one_at_a_time=True))
            rows.append((clients, together, alone))
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    print(f"model {args.model}, {args.tokens} tokens per streamed request, {args.rounds} requests per client")
    print("| clients | requests | tokens/s | one at a time | speed-up | TTFT p50 | TTFT p99 | per-token p50 "
          "| per-token p99 | failed |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for clients, t, a in rows:
        print(f"| {clients} | {t['requests']} | {t['tok_s']:,.0f} | {a['tok_s']:,.0f} | {t['tok_s'] / a['tok_s']:.1f}x "
              f"| {pct(t['ttft'], 50):.1f} ms | {pct(t['ttft'], 99):.1f} ms | {pct(t['gaps'], 50):.2f} ms "
              f"| {pct(t['gaps'], 99):.2f} ms | {t['failed'] + a['failed'] * (a is not t)} |")


if __name__ == "__main__":
    main()

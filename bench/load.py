"""Load test: concurrent gradio_client users against the real app on loopback.

Starts `python app.py` on a free port, warms every endpoint once (models load on first use), then
runs --clients threads, each with its own `gradio_client.Client`, sending --requests requests
that rotate through the endpoints in REQUESTS, in --rounds equal rounds. Reports errors (target
0), p50/p95 latency overall and per endpoint, and the server's resident memory (VmRSS, children
included) after the warm-up and after each round (target: within 10%), each time after the round's visitors have left
(their clients closed) and the server has been idle for --settle seconds (the app returns freed
heap memory to the system every 5 s). The first concurrent round
also pays for per-thread buffers that a sequential warm-up never allocates, so memory growth
that continues from round to round is what would show a leak. Then a burst larger than the queue checks what a user gets
when the queue is full: the app's queue holds 32 events, and the rest must hear "busy, try again".

    python bench/load.py                      # 16 clients × 10 requests, then a 48-event burst
    python bench/load.py --clients 4 --requests 3 --burst 0

To cover a new tab, add its endpoint to REQUESTS; endpoints the app has and REQUESTS lacks are
listed as not covered.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

from gradio_client import Client, handle_file

from served import EXAMPLES, resident_bytes, served_app

PHOTO = EXAMPLES / "astronaut.jpg"
# api_name → arguments of request number n (bounded sizes, so a run stays minutes long). The
# photo endpoints all get the example photo, as when many visitors click the same example; the
# avatar endpoints vary their seed, as visitors do.
REQUESTS = {
    "/cartoonize": lambda n: (handle_file(str(PHOTO)), "faces", 1.0, 512),
    "/anime": lambda n: (handle_file(str(PHOTO)), "to_anime", "crop", 1.0, 512),
    "/lookalikes": lambda n: (handle_file(str(PHOTO)), 8, None, None),
    "/avatars": lambda n: ("blue", "red", n, 16, 0.8, 4),
    "/morph": lambda n: (f"acgan:v2;hair=blue;eyes=red;seed={n};n=1;trunc=0.8", "acgan:v2;hair=blonde;eyes=green;seed=42;n=1;trunc=0.8", 30, "slerp", 4, 15),
}
BURST_ENDPOINT = "/cartoonize"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed_request(client: Client, endpoint: str, number: int, timeout: float) -> tuple[float, str | None]:
    started = time.perf_counter()
    try:
        client.submit(*REQUESTS[endpoint](number), api_name=endpoint).result(timeout=timeout)
        error = None
    except Exception as failure:  # every failure is a finding of the load test, reported below
        error = f"{type(failure).__name__}: {str(failure).splitlines()[0] if str(failure) else ''}"[:200]
    return time.perf_counter() - started, error


def client_session(url: str, index: int, endpoints: list[str], steps: range, deadline: float, results: list, lock):
    """One visitor: a session of requests, then leaving (closing the client ends its heartbeat)."""
    client = Client(url, verbose=False)
    try:
        for step in steps:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                with lock:
                    results.append(("(deadline)", 0.0, "not sent: --time-limit reached"))
                continue
            endpoint = endpoints[(index + step) % len(endpoints)]
            seconds, error = timed_request(client, endpoint, index * 1000 + step, remaining)
            error = error and f"{endpoint} {error}"
            with lock:
                results.append((endpoint, seconds, error))
    finally:
        client.close()


def burst(url: str, events: int, timeout: float) -> Counter:
    """Submit `events` jobs at once from one client; count how each one ended."""
    client = Client(url, verbose=False)
    jobs = [client.submit(*REQUESTS[BURST_ENDPOINT](n), api_name=BURST_ENDPOINT) for n in range(events)]
    outcomes: Counter = Counter()
    for job in jobs:
        try:
            job.result(timeout=timeout)
            outcomes["served"] += 1
        except Exception as failure:
            outcomes[f"{type(failure).__name__}: {failure}"] += 1
    client.close()
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=10, help="requests per client")
    parser.add_argument("--rounds", type=int, default=2, help="split each client's requests into this many rounds")
    parser.add_argument("--burst", type=int, default=48, help="events submitted at once after the load (0: skip)")
    parser.add_argument("--time-limit", type=float, default=1500, help="seconds for the whole load phase")
    parser.add_argument("--settle", type=float, default=10.0, help="idle seconds before each memory reading")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    with served_app() as (url, process):
        probe = Client(url, verbose=False)
        offered = set(probe.view_api(return_format="dict", print_info=False)["named_endpoints"])
        probe.close()
        endpoints = [name for name in REQUESTS if name in offered]
        not_covered = sorted(offered - set(REQUESTS))
        idle = resident_bytes(process.pid)
        warm_client = Client(url, verbose=False)
        warm_up = {endpoint: timed_request(warm_client, endpoint, 10**6, 600) for endpoint in endpoints}
        warm_client.close()
        time.sleep(args.settle)
        before = resident_bytes(process.pid)

        results: list = []
        lock = threading.Lock()
        deadline = time.monotonic() + args.time_limit
        started = time.perf_counter()
        after_rounds = []
        bounds = [round(args.requests * r / args.rounds) for r in range(args.rounds + 1)]
        for first, last in zip(bounds, bounds[1:]):
            with ThreadPoolExecutor(args.clients) as pool:
                for index in range(args.clients):
                    pool.submit(client_session, url, index, endpoints, range(first, last), deadline, results, lock)
            time.sleep(args.settle)
            started += args.settle  # the wall time and the time limit count load, not settling
            deadline += args.settle
            after_rounds.append(resident_bytes(process.pid))
        wall = time.perf_counter() - started
        after = after_rounds[-1]
        outcomes = burst(url, args.burst, 600) if args.burst else Counter()
        after_burst = resident_bytes(process.pid)

    latencies = [seconds for _, seconds, error in results if error is None]
    errors = Counter(error for _, _, error in results if error is not None)
    by_endpoint = defaultdict(list)
    for endpoint, seconds, error in results:
        if error is None:
            by_endpoint[endpoint].append(seconds)
    report = {
        "clients": args.clients,
        "requests": len(results),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "wall_seconds": round(wall, 1),
        "p50_seconds": round(statistics.median(latencies), 2) if latencies else None,
        "p95_seconds": round(percentile(latencies, 0.95), 2) if latencies else None,
        "per_endpoint": {
            name: {"n": len(v), "p50": round(statistics.median(v), 2), "p95": round(percentile(v, 0.95), 2)}
            for name, v in sorted(by_endpoint.items())
        },
        "warm_up_seconds": {name: round(seconds, 2) for name, (seconds, _) in warm_up.items()},
        "warm_up_errors": {name: error for name, (_, error) in warm_up.items() if error},
        "rss_mb": {
            "idle": round(idle / 2**20),
            "before_load": round(before / 2**20),
            "after_rounds": [round(rss / 2**20) for rss in after_rounds],
            "after_burst": round(after_burst / 2**20),
        },
        "rss_change_percent": round(100 * (after - before) / before, 1),
        "rss_change_last_round_percent": round(100 * (after - after_rounds[0]) / after_rounds[0], 1) if args.rounds > 1 else None,
        "burst": dict(outcomes),
        "not_covered": not_covered,
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))
    print(
        f"\n{report['requests']} requests from {args.clients} clients in {report['wall_seconds']} s: "
        f"{report['errors']} errors, p50 {report['p50_seconds']} s, p95 {report['p95_seconds']} s; "
        f"RSS {report['rss_mb']['before_load']} MB before, {report['rss_mb']['after_rounds']} MB after each round "
        f"({report['rss_change_percent']:+.1f}% overall, {report['rss_change_last_round_percent']}% after the first round; "
        f"target within ±10%); burst of {args.burst}: {dict(outcomes)}"
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2, ensure_ascii=False)
    return 0 if report["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Cold start: from `python app.py` to the first cartoon served to a client (target: under 15 s).

Each run starts a fresh app process, waits until its page answers, and sends the Cartoonize
example through gradio_client; the clock stops when the result has arrived. The first request
pays for loading the model and the face detector, which is what a Space's first visitor waits
for. As a reference for this machine's speed at the moment, the same run times a bare
`python -c "import torch, gradio"`; the ratio to it is comparable across machines and loads.

    python bench/cold_start.py              # 3 runs
    python bench/cold_start.py --runs 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from gradio_client import Client, handle_file

from served import EXAMPLES, served_app

TARGET_SECONDS = 15


def bare_import_seconds() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch, gradio"], check=True)
    return time.perf_counter() - started


def cold_start_seconds() -> tuple[float, float]:
    """(seconds until the page answers, seconds until the first cartoon arrived)."""
    started = time.perf_counter()
    with served_app() as (url, _):
        page = time.perf_counter() - started
        client = Client(url, verbose=False)
        client.predict(handle_file(str(EXAMPLES / "astronaut.jpg")), "faces", 1.0, 1024, api_name="/cartoonize")
        first = time.perf_counter() - started
    return page, first


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    reference, page, first = [], [], []
    for _ in range(args.runs):  # interleaved, so a change in machine load hits both alike
        reference.append(bare_import_seconds())
        up, served = cold_start_seconds()
        page.append(up)
        first.append(served)
    result = {
        "runs": args.runs,
        "bare_import_seconds": round(statistics.median(reference), 2),
        "page_up_seconds": round(statistics.median(page), 2),
        "first_cartoon_seconds": round(statistics.median(first), 2),
        "first_cartoon_seconds_all": [round(s, 2) for s in first],
    }
    result["ratio_to_bare_import"] = round(result["first_cartoon_seconds"] / result["bare_import_seconds"], 2)
    print(json.dumps(result, indent=2))
    print(
        f"\ncold start to first cartoon: {result['first_cartoon_seconds']} s (median of {args.runs}; target < {TARGET_SECONDS} s), "
        f"{result['ratio_to_bare_import']}× a bare `import torch, gradio` ({result['bare_import_seconds']} s); "
        f"page answering after {result['page_up_seconds']} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

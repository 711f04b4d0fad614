"""`python app.py` on a free loopback port for the bench scripts, and its resident memory.

Not a benchmark itself: `bench/load.py` and `bench/cold_start.py` import it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_app(port: int, log) -> subprocess.Popen:
    """`python app.py` as a user starts it, offline, on `port`."""
    env = dict(os.environ, GRADIO_SERVER_PORT=str(port), HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    return subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_until_up(process: subprocess.Popen, url: str, timeout: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise SystemExit(f"app.py exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"app.py did not answer within {timeout:.0f}s:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.1)


@contextlib.contextmanager
def served_app(startup_timeout: float = 300):
    """Yield (url, process) of a running app; always stopped on the way out."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="cartoon-bench-") as folder:
        log_path = Path(folder) / "app.log"
        with open(log_path, "w") as log:
            process = start_app(port, log)
            try:
                url = f"http://127.0.0.1:{port}/"
                wait_until_up(process, url, startup_timeout, log_path)
                yield url, process
            finally:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (Linux /proc)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                pending.extend(int(child) for child in (task / "children").read_text().split())
    return found


def resident_bytes(pid: int) -> int:
    """VmRSS of `pid` and its children, in bytes."""
    total = 0
    for member in descendants(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total

"""Refresh docs/screenshot.png (the README's picture): the Cartoonize tab after running its first example.

It runs the browser test of the first tab, Cartoonize (tests/test_browser.py), against the real app
with the shipped weights; that test copies its screenshot here. Needs Chromium (`make install-browser`).

    python scripts/screenshot.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "screenshot.png"


def main() -> int:
    TARGET.parent.mkdir(exist_ok=True)
    before = TARGET.stat().st_mtime if TARGET.exists() else None
    env = dict(os.environ, CARTOON_SCREENSHOT=str(TARGET), CI="true")  # CI: no silent skip without Chromium
    test = "tests/test_browser.py::test_tab_example_runs_in_browser"
    code = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test, "-k", "Cartoonize"], cwd=ROOT, env=env)
    if code or not TARGET.exists() or TARGET.stat().st_mtime == before:
        print("docs/screenshot.png was not refreshed", file=sys.stderr)
        return code or 1
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

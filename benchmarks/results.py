"""Writes the benchmark reports into ``benchmarks/RESULTS.md``.

Each script owns one section of the file, between two HTML comments, and
rewrites only that section: running one script leaves the others' latest
results in place.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
_HEADER = """# Benchmark results

Written by the scripts in `benchmarks/` (see `benchmarks/README.md`); each
script rewrites its own section. Times are from a shared, noisy 2-core machine:
read the medians and the ratios taken within a round, and the Python call counts,
which do not depend on the machine's load.
"""


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "absent"


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def load() -> str:
    """The load averages (1, 5, 15 minutes), as a note on how busy the machine was."""
    try:
        return " / ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def environment(*packages: str) -> str:
    """One paragraph: when, on what, with which versions."""
    names = ("django", "djangorestframework", "django-microkit", *packages)
    versions = ", ".join(f"{name} {_version(name)}" for name in names)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{now}, commit {_commit()}. Python {platform.python_version()}, "
        f"{versions}; {os.cpu_count()} cores, load average {load()} at the end."
    )


def write_section(key: str, text: str, path: Path = RESULTS) -> None:
    """Put ``text`` as section ``key`` of the results file, replacing the
    previous one or appending it."""
    begin, end = f"<!-- begin {key} -->", f"<!-- end {key} -->"
    block = f"{begin}\n{text.strip()}\n{end}\n"
    current = path.read_text() if path.exists() else _HEADER
    if begin in current and end in current:
        head, rest = current.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        current = head + block + ("\n" + tail if tail else "")
    else:
        current = current.rstrip("\n") + "\n\n" + block
    path.write_text(current)


def publish(key: str, text: str, output: str) -> None:
    """Print ``text`` and, unless ``output`` is ``-``, make it section ``key``
    of the results file ``output``."""
    sys.stdout.write(text)
    if output != "-":
        write_section(key, text, Path(output))

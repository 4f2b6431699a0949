"""``manage.py microkit_health``: run a probe's checks now, in this process.

For a container's exec probe, a deploy step or an operator at a shell: prints
one line per check and exits 1 when the probe fails (0 for ``pass`` and
``warn``), without going through an HTTP server.

``--health-file PATH`` checks an events worker instead (``manage.py
microkit_consume --health-file PATH``): it passes while the worker touched the
file less than ``--max-age`` seconds ago.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_microkit.health import PROBES, HealthReport, run_probe
from django_microkit.health.views import show_details

__all__ = ["Command"]

#: Seconds since a worker's last heartbeat after which it counts as dead: the
#: worker beats every second while idle, and between a handler's attempts.
_WORKER_MAX_AGE = 60.0


class Command(BaseCommand):
    help = "Run a health probe's checks and exit 1 if the probe fails."

    # An exec probe runs this every few seconds: skip the full system checks.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--probe",
            choices=PROBES,
            default="ready",
            help="The probe to run (default: ready).",
        )
        parser.add_argument(
            "--details",
            action="store_true",
            help="Show error texts (default: as MICROKIT['HEALTH']['SHOW_DETAILS']).",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print the application/health+json document instead of a table.",
        )
        parser.add_argument(
            "--health-file",
            metavar="PATH",
            help="Check the heartbeat file of an events worker instead of a probe.",
        )
        parser.add_argument(
            "--max-age",
            type=float,
            default=_WORKER_MAX_AGE,
            metavar="SECONDS",
            help="With --health-file: the oldest heartbeat that passes "
            f"(default: {_WORKER_MAX_AGE:g}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["health_file"]:
            self._check_worker(Path(options["health_file"]), options["max_age"])
            return
        probe: str = options["probe"]
        details = options["details"] or show_details()
        report = run_probe(probe, fresh=True)
        if options["json"]:
            self.stdout.write(json.dumps(report.as_document(details=details), indent=2))
        else:
            self._write_table(report, details=details)
        if report.status == "fail":
            raise CommandError(f"The {probe} probe fails.", returncode=1)

    def _check_worker(self, path: Path, max_age: float) -> None:
        try:
            age = time.time() - path.stat().st_mtime
        except OSError:
            raise CommandError(
                f"worker: fail (no heartbeat file {str(path)!r})", returncode=1
            ) from None
        if age > max_age:
            raise CommandError(
                f"worker: fail (last heartbeat {age:.1f} s ago, over {max_age:g} s)",
                returncode=1,
            )
        self.stdout.write(
            f"worker: {self.style.SUCCESS('pass')} (heartbeat {age:.1f} s ago)"
        )

    def _write_table(self, report: HealthReport, *, details: bool) -> None:
        rows = [("CHECK", "STATUS", "TIME", "OUTPUT")]
        for result in report.checks:
            output = (result.detail if details else None) or result.output or ""
            rows.append(
                (result.name, result.status, f"{result.duration:.1f} ms", output)
            )
        widths = [max(len(row[column]) for row in rows) for column in range(3)]
        styles = {
            "pass": self.style.SUCCESS,
            "warn": self.style.WARNING,
            "fail": self.style.ERROR,
        }
        for index, (name, status, duration, output) in enumerate(rows):
            cells = [
                name.ljust(widths[0]),
                status.ljust(widths[1]),
                duration.rjust(widths[2]),
                output,
            ]
            if index:
                cells[1] = styles[status](cells[1])
            self.stdout.write("  ".join(cells).rstrip())
        if len(rows) == 1:
            self.stdout.write("(no checks)")
        self.stdout.write(
            f"{report.probe}: {styles[report.status](report.status)} "
            f"(HTTP {report.http_status})"
        )

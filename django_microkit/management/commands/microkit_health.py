"""``manage.py microkit_health``: run a probe's checks now, in this process.

For a container's exec probe, a deploy step or an operator at a shell: prints
one line per check and exits 1 when the probe fails (0 for ``pass`` and
``warn``), without going through an HTTP server.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_microkit.health import PROBES, HealthReport, run_probe
from django_microkit.health.views import show_details

__all__ = ["Command"]


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

    def handle(self, *args: Any, **options: Any) -> None:
        probe: str = options["probe"]
        details = options["details"] or show_details()
        report = run_probe(probe, fresh=True)
        if options["json"]:
            self.stdout.write(json.dumps(report.as_document(details=details), indent=2))
        else:
            self._write_table(report, details=details)
        if report.status == "fail":
            raise CommandError(f"The {probe} probe fails.", returncode=1)

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

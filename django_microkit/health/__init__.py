"""Health probes: liveness, readiness and startup, answering
``application/health+json`` (draft-inadarei-api-health-check); see docs/health.md."""

from __future__ import annotations

from django_microkit.health._registry import PROBES, register_check
from django_microkit.health.runner import (
    CheckEntry,
    CheckResult,
    HealthDocument,
    HealthReport,
    Status,
    arun_probe,
    run_probe,
)

__all__ = [
    "CheckEntry",
    "CheckResult",
    "HealthDocument",
    "HealthReport",
    "PROBES",
    "Status",
    "arun_probe",
    "register_check",
    "run_probe",
]

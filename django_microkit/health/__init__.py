"""Health probes: liveness, readiness and startup.

``/health/live``, ``/health/ready`` and ``/health/startup`` answer
``application/health+json`` (draft-inadarei-api-health-check) with 200 or 503.
The checks are django-health-check's (database, cache, storage, Redis…) and the
service's own, registered with :func:`register_check` or named in
``MICROKIT["HEALTH"]``. A probe runs its checks concurrently, each within a
timeout, and reuses a round of results for a short time so that a burst of
probes costs one round.
"""

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

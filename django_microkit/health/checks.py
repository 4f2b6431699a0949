"""System checks of ``MICROKIT["HEALTH"]``: every probe's entries are resolved as
a probe would resolve them, so a misspelt check fails ``manage.py check``, not
the first readiness probe after a deploy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.checks import CheckMessage

from django_microkit.checks import Issue, is_number
from django_microkit.conf import microkit_settings
from django_microkit.health._registry import PROBE_SETTINGS, Misconfigured, resolve

__all__ = ["check_health", "check_health_deploy"]

#: Built-in checks of a dependency: out of place in the liveness probe.
_DEPENDENCY_KINDS = frozenset({"database", "cache", "redis"})


def check_health(**kwargs: Any) -> list[CheckMessage]:
    """The time budget, the URL prefix and each probe's list of checks."""
    section = microkit_settings.HEALTH
    timeout, ttl = section["TIMEOUT"], section["RESULT_TTL"]
    prefix = section["URL_PREFIX"]
    found = [
        (
            is_number(timeout) and timeout <= 0,
            "django_microkit.E043",
            f"MICROKIT['HEALTH']['TIMEOUT'] is {timeout!r}.",
            "A timeout is a number of seconds greater than 0 (default 2).",
        ),
        (
            is_number(ttl) and ttl < 0,
            "django_microkit.E044",
            f"MICROKIT['HEALTH']['RESULT_TTL'] is {ttl!r}.",
            "Give the seconds a round of checks is reused, 0 to run the "
            "checks on every probe.",
        ),
        (
            isinstance(prefix, str)
            and (prefix.startswith("/") or (prefix and not prefix.endswith("/"))),
            "django_microkit.E046",
            f"MICROKIT['HEALTH']['URL_PREFIX'] is {prefix!r}.",
            "Write it as Django routes are written: no leading slash, a "
            "trailing one ('health/'), or '' for /live, /ready, /startup.",
        ),
    ]
    issues = [Issue(*issue) for wrong, *issue in found if wrong]
    for probe, key in PROBE_SETTINGS.items():
        entries = section[key]
        if isinstance(entries, (list, tuple)):
            issues.extend(_entry_issues(probe, key, entries))
    return [issue.message() for issue in issues]


def check_health_deploy(**kwargs: Any) -> list[CheckMessage]:
    """Production only: probe answers must not carry error texts."""
    if microkit_settings.HEALTH["SHOW_DETAILS"] is not True:
        return []
    issue = Issue(
        "django_microkit.W042",
        "MICROKIT['HEALTH']['SHOW_DETAILS'] is True: probe responses carry "
        "error texts, which may name hosts, users and databases.",
        "Leave it unset in production; operators find the error in the "
        "logs, or with `manage.py microkit_health --details`.",
    )
    return [issue.message()]


def _entry_issues(probe: str, key: str, entries: Sequence[Any]) -> list[Issue]:
    issues: list[Issue] = []
    names: list[str] = []
    for entry in entries:
        try:
            checks = resolve(entry, 1.0)
        except Misconfigured as error:
            found = error.issue
            issues.append(
                Issue(found.id, f"MICROKIT['HEALTH'][{key!r}]: {found.msg}", found.hint)
            )
            continue
        names.extend(check.name for check in checks)
        reference = entry if isinstance(entry, str) else entry["check"]
        if probe == "live" and reference.partition(":")[0] in _DEPENDENCY_KINDS:
            issues.append(
                Issue(
                    "django_microkit.W041",
                    f"MICROKIT['HEALTH']['LIVENESS_CHECKS'] checks {reference!r}.",
                    "When a dependency fails, a liveness failure restarts every "
                    "instance and cures nothing: check dependencies in "
                    "READINESS_CHECKS.",
                )
            )
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        issues.append(
            Issue(
                "django_microkit.W040",
                f"MICROKIT['HEALTH'][{key!r}] runs {duplicates} more than once.",
                "Remove the repeated entry, or give each a distinct 'name'.",
            )
        )
    return issues

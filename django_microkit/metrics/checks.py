"""System checks of ``MICROKIT["METRICS"]`` (``E100``–``E103``,
``W100``–``W103``), registered in :mod:`django_microkit.checks`."""

from __future__ import annotations

import ipaddress
import os
from typing import Any

from django.core.checks import CheckMessage

from django_microkit.checks import Issue, is_number
from django_microkit.conf import microkit_settings
from django_microkit.metrics.multiprocess import (
    ENVIRONMENT_VARIABLE,
    multiprocess_directory,
)

__all__ = ["check_metrics", "check_metrics_deploy"]

_WHERE = "MICROKIT['METRICS']"
_MIN_TOKEN_LENGTH = 32


def _is_network(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def _buckets_issue(buckets: object) -> Issue | None:
    if not isinstance(buckets, list | tuple):
        return None  # E003 reports the type.
    numbers = [bound for bound in buckets if is_number(bound) and bound > 0]
    if numbers and len(numbers) == len(buckets) and numbers == sorted(set(numbers)):
        return None
    return Issue(
        "django_microkit.E102",
        f"{_WHERE}['BUCKETS'] is {list(buckets)!r}.",
        "Give the buckets' upper bounds in seconds, positive and increasing, "
        "e.g. [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5].",
    )


def _directory_issues(section: Any) -> list[Issue]:
    issues = []
    environment = multiprocess_directory()
    setting: object = section["MULTIPROCESS_DIR"]
    for path, origin in ((environment, ENVIRONMENT_VARIABLE), (setting, "setting")):
        if not isinstance(path, str) or not path or not os.path.exists(path):
            continue
        if not os.path.isdir(path) or not os.access(path, os.W_OK | os.X_OK):
            issues.append(
                Issue(
                    "django_microkit.E103",
                    f"The metrics multiprocess directory {path!r} (from the "
                    f"{origin}) is not a writable directory.",
                    "Point it at an empty directory the server's workers can "
                    "write to, such as a tmpfs mount.",
                )
            )
    if environment and isinstance(setting, str) and setting and setting != environment:
        issues.append(
            Issue(
                "django_microkit.W102",
                f"{_WHERE}['MULTIPROCESS_DIR'] is {setting!r} but "
                f"{ENVIRONMENT_VARIABLE} is {environment!r}; prometheus_client "
                "uses the environment's.",
                "Set one of the two, or the same directory in both.",
            )
        )
    return issues


def check_metrics(**kwargs: Any) -> list[CheckMessage]:
    """``E100``–``E103``, ``W102``: the path, networks, buckets and directory."""
    section = microkit_settings.METRICS
    issues: list[Issue] = []
    path = section["PATH"]
    if isinstance(path, str) and (not path or path.startswith("/")):
        issues.append(
            Issue(
                "django_microkit.E100",
                f"{_WHERE}['PATH'] is {path!r}.",
                "Write it as Django routes are written, without a leading "
                "slash: 'metrics'.",
            )
        )
    networks = section["ALLOW_NETWORKS"]
    if isinstance(networks, list | tuple):
        issues += [
            Issue(
                "django_microkit.E101",
                f"{_WHERE}['ALLOW_NETWORKS'] holds {network!r}, which is not an "
                "IP network.",
                "Give addresses or networks in CIDR notation, e.g. "
                "'10.0.0.0/8' or '::1'.",
            )
            for network in networks
            if not _is_network(network)
        ]
    bucket_issue = _buckets_issue(section["BUCKETS"])
    if bucket_issue is not None:
        issues.append(bucket_issue)
    issues += _directory_issues(section)
    return [issue.message() for issue in issues]


def check_metrics_deploy(**kwargs: Any) -> list[CheckMessage]:
    """``W100``, ``W101``, ``W103`` (``check --deploy``): who can read the
    metrics, and whether their counts are those of all the workers."""
    section = microkit_settings.METRICS
    if section["ENABLED"] is not True:
        return []
    issues = []
    networks = section["ALLOW_NETWORKS"]
    if isinstance(networks, list | tuple) and any(
        _is_network(network)
        and ipaddress.ip_network(network, strict=False).prefixlen == 0
        for network in networks
    ):
        issues.append(
            Issue(
                "django_microkit.W100",
                f"{_WHERE}['ALLOW_NETWORKS'] lets every address read the metrics.",
                "List only the networks of your Prometheus servers (the "
                "default: loopback and private networks), or give the scrapers "
                "a TOKEN and remove the catch-all network.",
            )
        )
    if not (multiprocess_directory() or section["MULTIPROCESS_DIR"]):
        issues.append(
            Issue(
                "django_microkit.W101",
                "No metrics multiprocess directory: under a server with several "
                "worker processes each scrape sees the counts of one worker.",
                f"Set {_WHERE}['MULTIPROCESS_DIR'] (or {ENVIRONMENT_VARIABLE}) and "
                "start gunicorn with '-c python:django_microkit.gunicorn' or "
                "uvicorn through django_microkit.uvicorn; silence W101 for a "
                "server of one process.",
            )
        )
    token = section["TOKEN"]
    if isinstance(token, str) and 0 < len(token) < _MIN_TOKEN_LENGTH:
        issues.append(
            Issue(
                "django_microkit.W103",
                f"{_WHERE}['TOKEN'] is {len(token)} characters long.",
                f"Use a random token of at least {_MIN_TOKEN_LENGTH} characters, "
                "e.g. secrets.token_urlsafe(32), read from the environment.",
            )
        )
    return [issue.message() for issue in issues]

"""System checks of ``MICROKIT["SERVICE_AUTH"]``.

The key checks are the findings of :func:`~.keys.build_config` itself, so a
check and a running service read a setting the same way; the replay-cache
checks look at ``CACHES`` too.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage

from django_microkit.checks import Issue
from django_microkit.conf import microkit_settings
from django_microkit.service_auth.keys import ServiceAuthConfig, build_config

__all__ = ["check_service_auth", "check_service_auth_deploy"]

_WHERE = "MICROKIT['SERVICE_AUTH']"


def check_service_auth(**kwargs: Any) -> list[CheckMessage]:
    """Every problem with the keys, lifetimes and algorithms, and a replay
    cache that cannot protect against replays."""
    config, issues = _config()
    if config.peers:  # verifying no tokens, the replay settings do not matter
        issues += _replay_issues(config)
    return [issue.message() for issue in issues]


def _replay_issues(config: ServiceAuthConfig) -> list[Issue]:
    if not config.replay_protection:
        return [
            Issue(
                "django_microkit.W050",
                f"{_WHERE}['REPLAY_PROTECTION'] is off: a captured token can be "
                "replayed until it expires.",
                "Turn it on unless every caller reuses its tokens on purpose "
                "(REUSE_TOKENS_FOR).",
            )
        ]
    alias = config.replay_cache
    if alias not in settings.CACHES:
        problem = "which is not in CACHES."
    elif _backend(alias).endswith(".DummyCache"):
        problem = "a DummyCache, which forgets every jti at once."
    else:
        return []
    return [
        Issue(
            "django_microkit.E059",
            f"{_WHERE}['REPLAY_CACHE'] is {alias!r}, {problem}",
            "Name a cache shared by all processes of the service (Redis in "
            "production).",
        )
    ]


def check_service_auth_deploy(**kwargs: Any) -> list[CheckMessage]:
    """``--deploy``: a replay cache that each process keeps for itself."""
    config, _issues = _config()
    alias = config.replay_cache
    local = _backend(alias).endswith(".LocMemCache")
    if not (config.peers and config.replay_protection and local):
        return []
    warning = Issue(
        "django_microkit.W051",
        f"{_WHERE}['REPLAY_CACHE'] is {alias!r}, a local-memory cache: each "
        "process keeps its own list of seen tokens, so a token can be replayed "
        "once against every other process.",
        "Use a cache shared by all processes (Redis).",
    )
    return [warning.message()]


def _config() -> tuple[ServiceAuthConfig, list[Issue]]:
    return build_config(microkit_settings.SERVICE_NAME, microkit_settings.SERVICE_AUTH)


def _backend(alias: str) -> str:
    return str(settings.CACHES.get(alias, {}).get("BACKEND", ""))

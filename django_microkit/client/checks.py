"""System checks of ``MICROKIT["CLIENT"]`` and ``MICROKIT["SERVICES"]``.

The rules are those :meth:`~django_microkit.client.config.ServiceConfig.from_settings`
applies at a service's first call (:func:`~.config.settings_issues`): a mistake
is reported here at start-up, and refused there if it was ignored.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage

from django_microkit.client.config import settings_issues

__all__ = ["check_client"]


def check_client(**kwargs: Any) -> list[CheckMessage]:
    """Every service entry is usable (E060–E066), its deadline fits its timeouts
    (W060), and calls meant to carry a service token can be signed (W061)."""
    return [issue.message() for issue in settings_issues()]

from __future__ import annotations

from django_microkit.request_id import get_request_id


def test_no_request_id_outside_a_request() -> None:
    assert get_request_id() is None

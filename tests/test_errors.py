from __future__ import annotations

import pytest

from django_microkit.errors import Problem


def test_problem_carries_its_members() -> None:
    problem = Problem(
        409,
        "insufficient_stock",
        title="Not enough stock.",
        detail="Only 2 left.",
        headers={"Retry-After": "5"},
        available=2,
    )
    assert problem.status_code == 409
    assert problem.code == "insufficient_stock"
    assert problem.title == "Not enough stock."
    assert str(problem.detail) == "Only 2 left."
    assert problem.headers == {"Retry-After": "5"}
    assert problem.extensions == {"available": 2}
    assert problem.errors is None


@pytest.mark.parametrize("status", [200, 302, 600])
def test_problem_needs_an_error_status(status: int) -> None:
    with pytest.raises(ValueError, match=str(status)):
        Problem(status, "nope")

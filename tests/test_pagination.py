from __future__ import annotations

import datetime
import json
import os
import re
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from django.core import signing
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import BinaryField, F, Value
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory

from django_microkit.errors import Problem
from django_microkit.pagination import (
    BasePagination,
    CursorPagination,
    LimitOffsetPagination,
    PageNumberPagination,
    format_link_header,
)
from django_microkit.pagination.base import (
    int_query_param,
    invalid_pagination,
    openapi_query_parameter,
    page_not_found,
    page_url,
    single_query_param,
)
from tests.links import parse_links
from tests.testapp.models import Book, Shelf

pytestmark = pytest.mark.django_db

BASE = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
PROBLEM_JSON = "application/problem+json"
needs_postgres = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL"), reason="needs DATABASE_URL (PostgreSQL)"
)


def make_books(count: int, start: int = 0) -> list[Book]:
    """Books with repeated, NULL and sub-millisecond values in every column."""
    shelves = [Shelf.objects.get_or_create(name=name)[0] for name in "abc"]
    books = [
        Book(
            title=f"book {i:05d}",
            score=i % 7,
            rank=None if i % 5 == 0 else i % 11,
            price=Decimal(i % 13) + Decimal("0.25"),
            published=BASE
            + datetime.timedelta(minutes=i // 3, microseconds=(i // 3 % 3) * 123457),
            shelf=shelves[i % 4] if i % 4 < 3 else None,
            code=uuid.UUID(int=(i * 7919) % 1000) if i % 6 else None,
            day=None if i % 8 == 0 else datetime.date(2024, 1, 1 + i % 9),
            at=datetime.time(i % 24, 30, 15, 500),
            length=None if i % 9 == 0 else datetime.timedelta(seconds=i % 17),
            weight=(i % 10) / 3,
        )
        for i in range(start, start + count)
    ]
    created: list[Book] = Book.objects.bulk_create(books)
    return created


def _nulls_last(value: Any) -> tuple[bool, Any]:
    return (value is None, value if value is not None else 0)


class _Desc:
    """Reverses the natural order of a value inside a sort key."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return bool(other.value < self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.value == other.value


def _desc_nulls_first(value: Any) -> tuple[bool, Any]:
    # Descending with NULL (the largest value) first.
    return (value is not None, _Desc(value if value is not None else 0))


#: Each ordering of tests/testapp/paging_views.py, as a Python sort key that
#: spells out the expected order: the pk tiebreak, and NULL as the largest value.
ORDERINGS: dict[str, Callable[[Book], Any]] = {
    "pk": lambda b: b.id,
    "score": lambda b: (b.score, b.id),
    "desc-multi": lambda b: (_Desc(b.published), -b.score, -b.id),
    "shelf": lambda b: (
        _nulls_last(b.shelf.name if b.shelf else None),
        -b.score,
        -b.id,
    ),
    "rank": lambda b: (_nulls_last(b.rank), b.id),
    "rank-desc": lambda b: (_desc_nulls_first(b.rank), b.title, b.id),
    "price": lambda b: (b.price, b.published, b.id),
    "year": lambda b: (-b.published.year, b.title, b.id),
    "id-desc": lambda b: -b.id,
    "code": lambda b: (_nulls_last(b.code), b.id),
    "day-at": lambda b: (_desc_nulls_first(b.day), b.at, b.id),
    "length": lambda b: (_nulls_last(b.length), b.id),
    "weight": lambda b: (-b.weight, -b.id),
}


def expected_ids(name: str) -> list[int]:
    books = Book.objects.select_related("shelf")
    return [b.id for b in sorted(books, key=ORDERINGS[name])]


def walk(
    client: APIClient,
    url: str | None,
    *,
    direction: str = "next",
    between: Callable[[], object] | None = None,
) -> list[list[int]]:
    """Every page from ``url`` following ``direction`` links, as lists of IDs."""
    pages = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        pages.append([row["id"] for row in response.json()["results"]])
        url = response.json()[direction]
        if between is not None:
            between()
    return pages


def flat(pages: list[list[int]]) -> list[int]:
    return [row for page in pages for row in page]


def assert_problem(
    response: Any, status: int, code: str, errors: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == "about:blank"
    if errors is not None:
        assert body["errors"] == errors
    return body


@pytest.fixture
def client() -> APIClient:
    return APIClient()


# --- envelope and links -----------------------------------------------------------


def test_page_number_envelope_and_links(client: APIClient) -> None:
    books = make_books(45)
    first = client.get("/paging/page/")
    assert first.status_code == 200
    assert first.json() == {
        "results": first.json()["results"],
        "next": "http://testserver/paging/page/?page=2",
        "previous": None,
        "count": 45,
    }
    assert [row["id"] for row in first.json()["results"]] == [b.id for b in books[:20]]
    assert parse_links(first["Link"]) == {
        "next": "http://testserver/paging/page/?page=2"
    }

    last = client.get("/paging/page/?page=3")
    assert last.json()["next"] is None
    assert last.json()["previous"] == "http://testserver/paging/page/?page=2"
    assert [row["id"] for row in last.json()["results"]] == [b.id for b in books[40:]]
    assert parse_links(last["Link"]) == {
        "prev": "http://testserver/paging/page/?page=2"
    }


def test_links_keep_other_parameters_in_order(client: APIClient) -> None:
    make_books(30)
    response = client.get("/paging/page/?score=1&page=2&page_size=2&z=%3E%22%20%C3%BC")
    body = response.json()
    assert body["next"] == (
        "http://testserver/paging/page/?score=1&page_size=2&z=%3E%22+%C3%BC&page=3"
    )
    assert body["previous"] == (
        "http://testserver/paging/page/?score=1&page_size=2&z=%3E%22+%C3%BC&page=1"
    )
    assert parse_links(response["Link"]) == {
        "next": body["next"],
        "prev": body["previous"],
    }
    assert body["count"] == 5


def test_links_are_absolute_for_the_requested_host(client: APIClient) -> None:
    make_books(3)
    response = client.get("/paging/limit/?limit=1", HTTP_HOST="localhost:8000")
    assert (
        response.json()["next"]
        == "http://localhost:8000/paging/limit/?limit=1&offset=1"
    )


@pytest.mark.parametrize(
    ("links", "header"),
    [
        (
            [("https://a.example/x?q=1", "next")],
            '<https://a.example/x?q=1>; rel="next"',
        ),
        (
            [('https://a.example/<x> "y"', "next"), ("https://a.example/ü", "prev")],
            '<https://a.example/%3Cx%3E%20%22y%22>; rel="next", '
            '<https://a.example/%C3%BC>; rel="prev"',
        ),
    ],
)
def test_format_link_header_escapes_what_a_uri_cannot_hold(
    links: list[tuple[str, str]], header: str
) -> None:
    assert format_link_header(links) == header
    parse_links(header)


def test_limit_offset_envelope_and_links(client: APIClient) -> None:
    books = make_books(12)
    response = client.get("/paging/limit/?limit=5&offset=3")
    body = response.json()
    assert [row["id"] for row in body["results"]] == [b.id for b in books[3:8]]
    assert body["count"] == 12
    assert body["next"] == "http://testserver/paging/limit/?limit=5&offset=8"
    # Never a negative offset: the previous window starts at 0, which is implied.
    assert body["previous"] == "http://testserver/paging/limit/?limit=5"
    assert parse_links(response["Link"]) == {
        "next": body["next"],
        "prev": body["previous"],
    }
    last = client.get(body["next"]).json()
    assert [row["id"] for row in last["results"]] == [b.id for b in books[8:]]
    assert last["next"] is None
    assert last["previous"] == "http://testserver/paging/limit/?limit=5&offset=3"


@pytest.mark.parametrize(
    "url", ["/paging/page/", "/paging/limit/", "/paging/cursor/pk/"]
)
def test_empty_list_is_one_empty_page(client: APIClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 200
    assert response.json()["results"] == []
    assert response.json()["next"] is None
    assert response.json()["previous"] is None
    assert "Link" not in response


def test_a_python_list_is_paged_too(client: APIClient) -> None:
    body = client.get("/paging/list/?page=2&page_size=3").json()
    assert body["results"] == [4, 5, 6]
    assert body["count"] == 7
    with override_settings(MICROKIT={"PAGINATION": {"COUNT_LIMIT": 5}}):
        assert "count" not in client.get("/paging/list/").json()
    with override_settings(MICROKIT={"PAGINATION": {"COUNT_LIMIT": 7}}):
        assert client.get("/paging/list/").json()["count"] == 7


# --- page sizes ----------------------------------------------------------------


def test_page_size_defaults_and_maximum_come_from_settings(client: APIClient) -> None:
    make_books(12)
    with override_settings(
        MICROKIT={"PAGINATION": {"PAGE_SIZE": 4, "MAX_PAGE_SIZE": 6}}
    ):
        assert len(client.get("/paging/page/").json()["results"]) == 4
        assert len(client.get("/paging/cursor/pk/").json()["results"]) == 4
        assert len(client.get("/paging/page/?page_size=6").json()["results"]) == 6
        assert_problem(
            client.get("/paging/page/?page_size=7"),
            400,
            "invalid_pagination",
            [
                {
                    "code": "max_value",
                    "detail": "'page_size' must be at most 6.",
                    "parameter": "page_size",
                }
            ],
        )
        assert len(client.get("/paging/limit/").json()["results"]) == 4


def test_a_paginator_subclass_pins_its_own_sizes(client: APIClient) -> None:
    make_books(5)
    assert len(client.get("/paging/small/").json()["results"]) == 2
    assert len(client.get("/paging/small/?page_size=3").json()["results"]) == 3
    assert client.get("/paging/small/?page_size=4").status_code == 400


# --- invalid input ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "parameter", "code", "detail"),
    [
        (
            "/paging/page/?page=abc",
            "page",
            "not_an_integer",
            "'page' must be a whole number.",
        ),
        ("/paging/page/?page=0", "page", "min_value", "'page' must be at least 1."),
        (
            "/paging/page/?page=-1",
            "page",
            "not_an_integer",
            "'page' must be a whole number.",
        ),
        (
            "/paging/page/?page=1.5",
            "page",
            "not_an_integer",
            "'page' must be a whole number.",
        ),
        (
            "/paging/page/?page=",
            "page",
            "not_an_integer",
            "'page' must be a whole number.",
        ),
        (
            "/paging/page/?page=%EF%BC%95",
            "page",
            "not_an_integer",
            "'page' must be a whole number.",
        ),
        (
            "/paging/page/?page=1&page=2",
            "page",
            "duplicate",
            "Give 'page' at most once.",
        ),
        (
            "/paging/page/?page=99999999999999999999",
            "page",
            "max_value",
            "'page' must be at most 50000000001 with page_size=20.",
        ),
        (
            "/paging/page/?page=4800935059655327744",
            "page",
            "max_value",
            "'page' must be at most 50000000001 with page_size=20.",
        ),
        (
            "/paging/page/?page=0000000000000000000000000000007&page_size=1000",
            "page_size",
            "max_value",
            "'page_size' must be at most 100.",
        ),
        (
            "/paging/page/?page=100000000000000",
            "page",
            "max_value",
            "'page' must be at most 50000000001 with page_size=20.",
        ),
        (
            "/paging/page/?page_size=0",
            "page_size",
            "min_value",
            "'page_size' must be at least 1.",
        ),
        (
            "/paging/page/?page_size=1000",
            "page_size",
            "max_value",
            "'page_size' must be at most 100.",
        ),
        (
            "/paging/limit/?limit=-1",
            "limit",
            "not_an_integer",
            "'limit' must be a whole number.",
        ),
        ("/paging/limit/?limit=0", "limit", "min_value", "'limit' must be at least 1."),
        (
            "/paging/limit/?limit=101",
            "limit",
            "max_value",
            "'limit' must be at most 100.",
        ),
        (
            "/paging/limit/?offset=1e9",
            "offset",
            "not_an_integer",
            "'offset' must be a whole number.",
        ),
        (
            "/paging/limit/?offset=-5",
            "offset",
            "not_an_integer",
            "'offset' must be a whole number.",
        ),
        (
            "/paging/shallow/?offset=5",
            "offset",
            "max_value",
            "'offset' must be at most 4.",
        ),
        (
            "/paging/cursor/pk/?page_size=x",
            "page_size",
            "not_an_integer",
            "'page_size' must be a whole number.",
        ),
    ],
)
def test_invalid_parameters_are_400_problems(
    client: APIClient, url: str, parameter: str, code: str, detail: str
) -> None:
    make_books(3)
    body = assert_problem(
        client.get(url),
        400,
        "invalid_pagination",
        [{"code": code, "detail": detail, "parameter": parameter}],
    )
    body.pop("request_id", None)
    assert body == {
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "detail": "The pagination query parameters are not valid.",
        "instance": url.split("?")[0],
        "code": "invalid_pagination",
        "errors": [{"code": code, "detail": detail, "parameter": parameter}],
    }


def test_max_offset_setting_bounds_page_numbers_and_offsets(client: APIClient) -> None:
    make_books(30)
    with override_settings(MICROKIT={"PAGINATION": {"MAX_OFFSET": 10}}):
        assert client.get("/paging/page/?page=3&page_size=5").status_code == 200
        assert_problem(
            client.get("/paging/page/?page=4&page_size=5"),
            400,
            "invalid_pagination",
            [
                {
                    "code": "max_value",
                    "detail": "'page' must be at most 3 with page_size=5.",
                    "parameter": "page",
                }
            ],
        )
        assert client.get("/paging/limit/?offset=10").status_code == 200
        assert client.get("/paging/limit/?offset=11").status_code == 400


@pytest.mark.parametrize(
    ("url", "count"),
    [
        ("/paging/page/?page=3", "exact"),
        ("/paging/page/?page=3", "none"),
        ("/paging/page/?page=99", "exact"),
        ("/paging/limit/?offset=40", "exact"),
        ("/paging/limit/?offset=45", "none"),
        ("/paging/shallow/?offset=4&limit=1", "exact"),
    ],
)
def test_pages_beyond_the_end_are_404_problems(
    client: APIClient, url: str, count: str
) -> None:
    make_books(40 if "shallow" not in url else 4)
    with override_settings(MICROKIT={"PAGINATION": {"COUNT": count}}):
        body = assert_problem(client.get(url), 404, "page_not_found")
    body.pop("request_id", None)
    assert body == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "The requested page is beyond the end of the list.",
        "instance": url.split("?")[0],
        "code": "page_not_found",
    }


# --- counting ------------------------------------------------------------------------


def _count_queries(context: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in context.captured_queries if "COUNT(" in q["sql"].upper()]


@pytest.mark.parametrize("url", ["/paging/page/?page_size=5", "/paging/limit/?limit=5"])
def test_count_none_pages_without_counting(client: APIClient, url: str) -> None:
    make_books(12)
    with (
        override_settings(MICROKIT={"PAGINATION": {"COUNT": "none"}}),
        CaptureQueriesContext(connection) as queries,
    ):
        body = client.get(url).json()
    assert "count" not in body
    assert body["next"] is not None
    assert _count_queries(queries) == []


def test_count_prefer_counts_only_when_asked(client: APIClient) -> None:
    make_books(12)
    with override_settings(MICROKIT={"PAGINATION": {"COUNT": "prefer"}}):
        plain = client.get("/paging/page/")
        assert "count" not in plain.json()
        assert "Preference-Applied" not in plain
        assert "Prefer" in re.split(r",\s*", plain["Vary"])
        for prefer in (
            "count=exact",
            'respond-async, COUNT="exact"; x=1',
            "count=exact, wait=5",
        ):
            asked = client.get("/paging/page/", HTTP_PREFER=prefer)
            assert asked.json()["count"] == 12
            assert asked["Preference-Applied"] == "count=exact"
        assert (
            "count" not in client.get("/paging/page/", HTTP_PREFER="count=none").json()
        )
        assert (
            "count"
            not in client.get("/paging/page/", HTTP_PREFER="return=minimal").json()
        )


def test_count_limit_caps_the_count(client: APIClient) -> None:
    make_books(12)
    with override_settings(MICROKIT={"PAGINATION": {"COUNT_LIMIT": 10}}):
        with CaptureQueriesContext(connection) as queries:
            body = client.get("/paging/page/?page_size=5").json()
        assert "count" not in body
        assert body["next"] is not None
        (count_sql,) = _count_queries(queries)
        assert "LIMIT 11" in count_sql.upper()
    with override_settings(MICROKIT={"PAGINATION": {"COUNT_LIMIT": 12}}):
        assert client.get("/paging/page/").json()["count"] == 12


# --- cursor pagination ------------------------------------------------------------


@pytest.mark.parametrize("ordering", list(ORDERINGS))
def test_cursor_walks_every_row_once_in_order_both_ways(
    client: APIClient, ordering: str
) -> None:
    make_books(61)
    expected = expected_ids(ordering)
    pages = walk(client, f"/paging/cursor/{ordering}/?page_size=7")
    assert flat(pages) == expected
    assert [len(page) for page in pages] == [7] * 8 + [5]

    last = client.get(f"/paging/cursor/{ordering}/?page_size=7")
    url = last.json()["next"]
    while url:
        last = client.get(url)
        url = last.json()["next"]
    backwards = walk(client, last.json()["previous"], direction="previous")
    assert backwards == pages[-2::-1]


def test_cursor_never_counts(client: APIClient) -> None:
    make_books(30)
    with CaptureQueriesContext(connection) as queries:
        pages = walk(client, "/paging/cursor/score/?page_size=10")
    assert len(pages) == 3
    assert _count_queries(queries) == []
    assert all("count" not in client.get("/paging/cursor/score/").json() for _ in [0])


@pytest.mark.parametrize("ordering", ["score", "desc-multi", "rank-desc", "shelf"])
def test_cursor_walk_is_stable_under_inserts_and_deletes(
    client: APIClient, ordering: str
) -> None:
    originals = make_books(60)
    doomed = {originals[13].id, originals[47].id}
    inserted: list[Book] = []

    def change() -> None:
        inserted.extend(make_books(9, start=1000 + len(inserted)))
        Book.objects.filter(id__in=doomed).delete()

    seen = flat(walk(client, f"/paging/cursor/{ordering}/?page_size=8", between=change))
    assert len(seen) == len(set(seen))
    survivors = {b.id for b in originals} - doomed
    assert survivors <= set(seen)
    assert not doomed & set(seen)
    # The rows seen are in order: the walk is a subsequence of the final order.
    final = expected_ids(ordering)
    assert seen == [i for i in final if i in set(seen)]


def test_cursor_previous_from_the_second_page_is_the_first(client: APIClient) -> None:
    books = make_books(10)
    first = client.get("/paging/cursor/pk/?page_size=4").json()
    second = client.get(first["next"]).json()
    assert second["previous"] is not None
    back = client.get(second["previous"]).json()
    assert back["results"] == first["results"]
    assert back["previous"] is None
    assert back["next"] is not None
    assert [row["id"] for row in client.get(back["next"]).json()["results"]] == [
        b.id for b in books[4:8]
    ]


def test_cursor_after_everything_was_deleted(client: APIClient) -> None:
    books = make_books(10)
    first = client.get("/paging/cursor/pk/?page_size=4").json()
    Book.objects.filter(id__gt=books[3].id).delete()
    empty = client.get(first["next"])
    assert empty.status_code == 200
    assert empty.json()["results"] == []
    assert empty.json()["next"] is None
    assert parse_links(empty["Link"]) == {"prev": empty.json()["previous"]}
    # Going back from an empty page lands on the rows up to the cursor.
    back = client.get(empty.json()["previous"]).json()
    assert [row["id"] for row in back["results"]] == [b.id for b in books[:4]]


def test_cursor_previous_when_everything_before_was_deleted(client: APIClient) -> None:
    books = make_books(10)
    second = client.get(
        client.get("/paging/cursor/pk/?page_size=4").json()["next"]
    ).json()
    Book.objects.filter(id__lt=books[4].id).delete()
    back = client.get(second["previous"]).json()
    assert [row["id"] for row in back["results"]] == [b.id for b in books[4:8]]
    assert back["previous"] is None


def test_cursor_page_size_may_change_between_pages(client: APIClient) -> None:
    books = make_books(10)
    first = client.get("/paging/cursor/pk/?page_size=3").json()
    url = first["next"].replace("page_size=3", "page_size=5")
    assert [row["id"] for row in client.get(url).json()["results"]] == [
        b.id for b in books[3:8]
    ]


def test_cursor_follows_the_ordering_filter(client: APIClient) -> None:
    make_books(20)
    seen = flat(
        walk(client, "/paging/cursor/ordering-filter/?ordering=-score&page_size=6")
    )
    assert seen == [
        b.id for b in sorted(Book.objects.all(), key=lambda b: (-b.score, -b.id))
    ]
    default = flat(walk(client, "/paging/cursor/ordering-filter/?page_size=6"))
    assert default == sorted(seen)
    # A cursor of one ordering is refused under another.
    first = client.get(
        "/paging/cursor/ordering-filter/?ordering=-score&page_size=6"
    ).json()
    other = first["next"].replace("ordering=-score", "ordering=title")
    assert_problem(
        client.get(other),
        400,
        "invalid_pagination",
        _cursor_error(MISMATCH, "cursor_mismatch"),
    )


def test_cursor_uses_the_paginator_ordering_when_the_queryset_has_none(
    client: APIClient,
) -> None:
    make_books(15)
    seen = flat(walk(client, "/paging/cursor/paginator-ordering/?page_size=4"))
    assert seen == [
        b.id for b in sorted(Book.objects.all(), key=lambda b: (-b.score, -b.id))
    ]


def _cursor_error(detail: str, code: str) -> list[dict[str, str]]:
    return [{"code": code, "detail": detail, "parameter": "cursor"}]


INVALID = "The cursor is not valid: use the links as given."
MISMATCH = (
    "The cursor belongs to another list: the path, ordering or filters have "
    "changed since it was issued."
)


def _signed(payload: Any, salt: str = "django_microkit.pagination.cursor") -> str:
    return signing.dumps(payload, salt=salt, compress=True)


@pytest.mark.parametrize(
    ("cursor", "detail", "code"),
    [
        ("abc", INVALID, "invalid_cursor"),
        ("", INVALID, "invalid_cursor"),
        (
            _signed({"v": 1, "p": [1], "r": 0, "h": "x"}, salt="other"),
            INVALID,
            "invalid_cursor",
        ),
        (_signed({"v": 2, "p": [1], "r": 0, "h": "x"}), INVALID, "invalid_cursor"),
        (_signed({"v": 1}), INVALID, "invalid_cursor"),
        (_signed([1, 2]), INVALID, "invalid_cursor"),
        (_signed({"v": 1, "p": 5, "r": 0, "h": "x"}), INVALID, "invalid_cursor"),
        (_signed({"v": 1, "p": [[1]], "r": 0, "h": "x"}), INVALID, "invalid_cursor"),
        (
            _signed({"v": 1, "p": [{"dt": "nope"}], "r": 0, "h": "x"}),
            INVALID,
            "invalid_cursor",
        ),
        (
            _signed({"v": 1, "p": [{"n": "x"}], "r": 0, "h": "x"}),
            INVALID,
            "invalid_cursor",
        ),
        (
            _signed({"v": 1, "p": [{"zz": 1}], "r": 0, "h": "x"}),
            INVALID,
            "invalid_cursor",
        ),
        (
            _signed({"v": 1, "p": [{"a": 1, "b": 2}], "r": 0, "h": "x"}),
            INVALID,
            "invalid_cursor",
        ),
        (_signed({"v": 1, "p": [1], "r": 0, "h": "x"}), MISMATCH, "cursor_mismatch"),
    ],
)
def test_bad_cursors_are_400_problems(
    client: APIClient, cursor: str, detail: str, code: str
) -> None:
    make_books(3)
    assert_problem(
        client.get("/paging/cursor/pk/", {"cursor": cursor}),
        400,
        "invalid_pagination",
        _cursor_error(detail, code),
    )


def test_a_modified_cursor_is_refused(client: APIClient) -> None:
    make_books(10)
    link = client.get("/paging/cursor/pk/?page_size=3").json()["next"]
    token = link.split("cursor=")[1]
    payload, rest = token.split("%3A", 1)
    # Flip one character of the payload: the signature no longer matches.
    flipped = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    response = client.get(link.replace(token, f"{flipped}%3A{rest}"))
    assert_problem(
        response, 400, "invalid_pagination", _cursor_error(INVALID, "invalid_cursor")
    )


@pytest.mark.parametrize(
    ("first", "replay"),
    [
        ("/paging/cursor/score/?score=1&page_size=2", ("score=1", "score=2")),
        ("/paging/cursor/score/?score=1&page_size=2", ("score=1&", "")),
        ("/paging/cursor/score/?page_size=2", ("page_size=2", "page_size=2&shelf=a")),
        (
            "/paging/cursor/score/?page_size=2",
            ("/paging/cursor/score/", "/paging/cursor/rank/"),
        ),
    ],
)
def test_a_cursor_is_bound_to_its_path_and_filters(
    client: APIClient, first: str, replay: tuple[str, str]
) -> None:
    make_books(30)
    link = client.get(first).json()["next"]
    assert client.get(link).status_code == 200
    assert_problem(
        client.get(link.replace(*replay)),
        400,
        "invalid_pagination",
        _cursor_error(MISMATCH, "cursor_mismatch"),
    )


def test_a_cursor_given_twice_is_refused(client: APIClient) -> None:
    make_books(5)
    link = client.get("/paging/cursor/pk/?page_size=2").json()["next"]
    cursor = link.split("cursor=")[1]
    assert_problem(
        client.get(f"{link}&cursor={cursor}"),
        400,
        "invalid_pagination",
        _cursor_error("Give 'cursor' at most once.", "duplicate"),
    )


class _RawJSON:
    """Signs the JSON text it is given as it is (``1e309``, ``NaN``)."""

    def dumps(self, obj: str) -> bytes:
        return obj.encode()


def _forged(link: str, index: int, value: str) -> str:
    """``link`` with the JSON ``value`` at ``index`` of its cursor's position,
    signed again with ``SECRET_KEY`` as someone who knows the key would."""
    salt = "django_microkit.pagination.cursor"
    payload = signing.loads(parse_qs(urlsplit(link).query)["cursor"][0], salt=salt)
    values = [json.dumps(item) for item in payload.pop("p")]
    values[index] = value
    text = json.dumps(payload)[:-1] + f', "p": [{", ".join(values)}]}}'
    cursor = signing.dumps(
        text,
        salt=salt,
        serializer=_RawJSON,  # type: ignore[arg-type]  # writes the text as it is
        compress=True,
    )
    return f"{link.split('?')[0]}?page_size=2&cursor={cursor}"


@pytest.mark.parametrize(
    ("ordering", "index", "value"),
    [
        # Where a datetime belongs: a number, a date, a naive one, a string.
        ("desc-multi", 0, "5"),
        ("desc-multi", 0, '{"d": "2024-01-01"}'),
        ("desc-multi", 0, '{"dt": "2024-01-01T00:00:00"}'),
        ("desc-multi", 0, '"2024-01-01T00:00:00+00:00"'),
        # Where an id belongs.
        ("pk", 0, '"abc"'),
        ("pk", 0, '"5"'),
        ("pk", 0, "true"),
        ("pk", 0, "1.5"),
        ("pk", 0, "1e309"),
        ("pk", 0, "null"),
        ("id-desc", 0, '{"n": "5"}'),
        # Decimals and floats that are no numbers.
        ("price", 0, '{"n": "NaN"}'),
        ("price", 0, '{"n": "sNaN"}'),
        ("price", 0, '{"n": "Infinity"}'),
        ("price", 0, "2.5"),
        ("weight", 0, "NaN"),
        ("weight", 0, "1e309"),
        ("weight", 0, "-Infinity"),
        ("weight", 0, '"1.5"'),
        # Strings: longer than the column, or not a string.
        ("rank-desc", 1, json.dumps("x" * 101)),
        ("rank-desc", 1, "7"),
        ("shelf", 0, json.dumps("x" * 51)),
        ("shelf", 0, "5"),
        # Other types, through a transform and across the tiebreak.
        ("year", 0, '{"dt": "2024-01-01T00:00:00+00:00"}'),
        ("year", 0, '"2024"'),
        ("code", 0, '"abc"'),
        ("code", 0, '{"u": "00000000-0000-0000-0000-000000000001", "x": 1}'),
        # A tagged value that is no string where its tag wraps one.
        ("code", 0, '{"u": 5}'),
        ("code", 0, '{"u": [1]}'),
        ("code", 0, '{"u": {"a": 1}}'),
        ("desc-multi", 0, '{"dt": 5}'),
        ("price", 0, '{"n": [1]}'),
        ("length", 0, '{"td": "1"}'),
        ("day-at", 0, '{"dt": "2024-01-01T00:00:00+00:00"}'),
        ("day-at", 1, '{"d": "2024-01-01"}'),
        # An aware time: SQLite and MySQL cannot compare one with the column.
        ("day-at", 1, '{"t": "10:00:00+05:00"}'),
        ("length", 0, "5"),
        ("length", 0, '{"td": [1e309, 0, 0]}'),
        # Durations timedelta holds, too long for 64-bit microseconds.
        ("length", 0, '{"td": [999999999, 0, 0]}'),
        ("length", 0, '{"td": [-999999999, 0, 0]}'),
        ("length", 0, '{"td": [106751992, 0, 0]}'),
        ("score", 1, '{"td": [1, 0, 0]}'),
    ],
)
def test_a_forged_cursor_of_the_wrong_types_is_refused(
    client: APIClient, ordering: str, index: int, value: str
) -> None:
    make_books(10)
    link = client.get(f"/paging/cursor/{ordering}/?page_size=2").json()["next"]
    # Signed again unchanged, the cursor still works: only the value is wrong.
    unchanged = signing.loads(
        parse_qs(urlsplit(link).query)["cursor"][0],
        salt="django_microkit.pagination.cursor",
    )["p"][index]
    assert client.get(_forged(link, index, json.dumps(unchanged))).status_code == 200
    assert_problem(
        client.get(_forged(link, index, value)),
        400,
        "invalid_pagination",
        _cursor_error(INVALID, "invalid_cursor"),
    )


@pytest.mark.parametrize(
    "value",
    [
        # A lone surrogate has no UTF-8: neither database driver can send it.
        json.dumps("a\ud800b"),
        # PostgreSQL text cannot hold NUL (SQLite's can: no refusal there).
        pytest.param(
            json.dumps("a\0b"), marks=[pytest.mark.integration, needs_postgres]
        ),
    ],
)
def test_a_forged_cursor_the_database_cannot_compare_is_refused(
    client: APIClient, value: str
) -> None:
    """A string of the right type and length that the database still refuses
    to compare with the column."""
    make_books(10)
    link = client.get("/paging/cursor/rank-desc/?page_size=2").json()["next"]
    assert_problem(
        client.get(_forged(link, 1, value)),
        400,
        "invalid_pagination",
        _cursor_error(INVALID, "invalid_cursor"),
    )


# --- cursor pagination configured wrongly ---------------------------------------


def _request(url: str = "/") -> Request:
    return Request(APIRequestFactory().get(url))


def test_model_meta_ordering_is_the_fallback() -> None:
    for name in ("b", "c", "a"):
        Shelf.objects.create(name=name)
    paginator = CursorPagination()
    page = paginator.paginate_queryset(Shelf.objects.all(), _request("/?page_size=2"))
    assert [s.name for s in page] == ["c", "b"]


def test_unordered_queryset_without_meta_ordering_pages_by_pk() -> None:
    books = make_books(3)
    page = CursorPagination().paginate_queryset(Book.objects.all(), _request())
    assert [b.id for b in page] == [b.id for b in books]


@pytest.mark.parametrize(
    ("queryset", "message"),
    [
        (lambda: Book.objects.order_by("?"), "random order"),
        (lambda: Book.objects.order_by(F("score") + 1), "field paths only"),
        (lambda: Shelf.objects.order_by("book__title"), "to-many relation"),
        (lambda: [1, 2, 3], "querysets only"),
    ],
)
def test_cursor_refuses_orderings_it_cannot_seek(
    queryset: Callable[[], Any], message: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        CursorPagination().paginate_queryset(queryset(), _request())


def test_cursor_ignores_repeated_ordering_terms() -> None:
    books = make_books(5)
    queryset = Book.objects.order_by("-score", "pk", "id", "-score")
    page = CursorPagination().paginate_queryset(queryset, _request("/?page_size=5"))
    assert [b.id for b in page] == [
        b.id for b in sorted(books, key=lambda b: (-b.score, b.id))
    ]


def test_cursor_orders_by_expressions_of_field_paths() -> None:
    books = make_books(6)
    queryset = Book.objects.order_by(F("score").desc(), F("title"))
    page = CursorPagination().paginate_queryset(queryset, _request("/?page_size=3"))
    expected = sorted(books, key=lambda b: (-b.score, b.title))[:3]
    assert [b.id for b in page] == [b.id for b in expected]


def test_cursor_cannot_encode_binary_positions() -> None:
    make_books(3)
    queryset = Book.objects.annotate(blob=Value(b"x", BinaryField())).order_by("blob")
    with pytest.raises(ImproperlyConfigured, match="bytes"):
        CursorPagination().paginate_queryset(queryset, _request("/?page_size=1"))


# --- OpenAPI -------------------------------------------------------------------------


def test_schema_documents_envelopes_and_parameters() -> None:
    from drf_spectacular.generators import SchemaGenerator
    from openapi_spec_validator import validate

    from tests.testapp import paging_views

    patterns = [p for p in paging_views.urlpatterns if "list" not in str(p.pattern)]
    with override_settings(
        MICROKIT={"PAGINATION": {"COUNT": "prefer", "MAX_PAGE_SIZE": 50}}
    ):
        schema = SchemaGenerator(patterns=patterns).get_schema(
            request=None, public=True
        )
    validate(schema)
    components = schema["components"]["schemas"]
    page = components["PaginatedBookList"]
    cursor = components["CursorPaginatedBookList"]
    assert page["required"] == ["results", "next", "previous"]
    assert sorted(page["properties"]) == ["count", "next", "previous", "results"]
    assert page["properties"]["results"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/Book"},
    }
    assert page["properties"]["next"]["nullable"] is True
    assert sorted(cursor["properties"]) == ["next", "previous", "results"]

    def parameters(path: str) -> dict[str, dict[str, Any]]:
        operation = schema["paths"][path]["get"]
        # The version header is documented by versioning, not by the paginator.
        return {
            p["name"]: p
            for p in operation["parameters"]
            if p["name"] != "X-API-Version"
        }

    page_params = parameters("/paging/page/")
    assert sorted(page_params) == ["Prefer", "page", "page_size"]
    # Every page size up to MAX_PAGE_SIZE reaches this page within MAX_OFFSET.
    assert page_params["page"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 10**12 // 50 + 1,
    }
    assert page_params["page_size"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 50,
    }
    assert page_params["Prefer"]["in"] == "header"
    assert sorted(parameters("/paging/limit/")) == ["Prefer", "limit", "offset"]
    assert parameters("/paging/shallow/")["offset"]["schema"]["maximum"] == 4
    assert sorted(parameters("/paging/cursor/pk/")) == ["cursor", "page_size"]
    assert parameters("/paging/cursor/pk/")["cursor"]["schema"] == {
        "type": "string",
        "format": "cursor",
        "minLength": 1,
        "pattern": "^[A-Za-z0-9_.:-]+$",
    }
    ordering_params = parameters("/paging/cursor/ordering-filter/")
    assert sorted(ordering_params) == ["cursor", "ordering", "page_size"]
    response = schema["paths"]["/paging/cursor/pk/"]["get"]["responses"]["200"]
    assert response["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CursorPaginatedBookList"
    }


def test_cursors_in_links_match_the_documented_pattern(client: APIClient) -> None:
    make_books(3)
    link = client.get("/paging/cursor/pk/?page_size=1").json()["next"]
    cursor = link.split("cursor=", 1)[1]
    assert re.fullmatch(r"[A-Za-z0-9_.:-]+", unquote(cursor))


# --- PostgreSQL at scale ---------------------------------------------------------


@pytest.mark.integration
@needs_postgres
@pytest.mark.parametrize("ordering", ["pk", "score", "desc-multi"])
def test_cursor_walks_ten_thousand_rows_once_with_inserts(
    client: APIClient, ordering: str
) -> None:
    assert connection.vendor == "postgresql"
    originals = make_books(10_000)
    inserted: list[Book] = []

    def insert() -> None:
        inserted.extend(make_books(25, start=20_000 + len(inserted)))

    with (
        override_settings(MICROKIT={"PAGINATION": {"MAX_PAGE_SIZE": 1000}}),
        CaptureQueriesContext(connection) as queries,
    ):
        pages = walk(
            client, f"/paging/cursor/{ordering}/?page_size=500", between=insert
        )
    seen = flat(pages)
    assert len(seen) == len(set(seen))
    assert {b.id for b in originals} <= set(seen)
    assert seen == [i for i in expected_ids(ordering) if i in set(seen)]
    assert _count_queries(queries) == []


@pytest.mark.integration
@needs_postgres
@pytest.mark.parametrize(
    "url", ["/paging/page/?page_size=500", "/paging/limit/?limit=500"]
)
def test_offset_paging_walks_ten_thousand_rows(client: APIClient, url: str) -> None:
    books = make_books(10_000)
    with override_settings(MICROKIT={"PAGINATION": {"MAX_PAGE_SIZE": 1000}}):
        first = client.get(url).json()
        assert first["count"] == 10_000
        with override_settings(
            MICROKIT={"PAGINATION": {"MAX_PAGE_SIZE": 1000, "COUNT_LIMIT": 5_000}}
        ):
            assert "count" not in client.get(url).json()
        seen = flat(walk(client, url))
    assert seen == [b.id for b in books]


# --- system checks ---------------------------------------------------------------


def check_messages(**overrides: Any) -> dict[str, Any]:
    from django.core.checks import run_checks

    with override_settings(**overrides):
        return {
            m.id: m for m in run_checks() if m.id and m.id.startswith("django_microkit")
        }


def pagination(**values: Any) -> dict[str, Any]:
    return {"SERVICE_NAME": "tests", "PAGINATION": values}


@pytest.mark.parametrize(
    ("values", "check_id", "message"),
    [
        ({"PAGE_SIZE": 0}, "E030", "MICROKIT['PAGINATION']['PAGE_SIZE'] is 0"),
        (
            {"MAX_PAGE_SIZE": -1},
            "E030",
            "MICROKIT['PAGINATION']['MAX_PAGE_SIZE'] is -1",
        ),
        (
            {"PAGE_SIZE": 50, "MAX_PAGE_SIZE": 40},
            "E031",
            "MICROKIT['PAGINATION']['MAX_PAGE_SIZE'] (40) is smaller than "
            "MICROKIT['PAGINATION']['PAGE_SIZE'] (50).",
        ),
        ({"COUNT": "exactly"}, "E032", "MICROKIT['PAGINATION']['COUNT'] is 'exactly'"),
        ({"COUNT_LIMIT": 0}, "E033", "MICROKIT['PAGINATION']['COUNT_LIMIT'] is 0"),
        ({"MAX_OFFSET": -1}, "E033", "MICROKIT['PAGINATION']['MAX_OFFSET'] is -1"),
    ],
)
def test_pagination_checks(values: dict[str, Any], check_id: str, message: str) -> None:
    found = check_messages(MICROKIT=pagination(**values))
    assert list(found) == [f"django_microkit.{check_id}"]
    assert found[f"django_microkit.{check_id}"].msg.startswith(message)


def test_e032_suggests_the_near_mode() -> None:
    found = check_messages(MICROKIT=pagination(COUNT="prefered"))
    assert "Did you mean 'prefer'?" in found["django_microkit.E032"].hint


def test_valid_pagination_settings_are_clean() -> None:
    values = {"PAGE_SIZE": 5, "MAX_PAGE_SIZE": 5, "COUNT": "prefer", "COUNT_LIMIT": 1}
    assert check_messages(MICROKIT=pagination(**values, MAX_OFFSET=0)) == {}
    # Wrong types are E003's business, not these checks'.
    found = check_messages(MICROKIT=pagination(PAGE_SIZE="5", COUNT=1, COUNT_LIMIT="x"))
    assert list(found) == ["django_microkit.E003"]


@pytest.mark.parametrize(
    "paginator",
    [None, "rest_framework.pagination.PageNumberPagination", "no.such.Paginator"],
)
def test_w030_paginator_is_not_microkit(settings: Any, paginator: Any) -> None:
    rest_framework = {**settings.REST_FRAMEWORK, "DEFAULT_PAGINATION_CLASS": paginator}
    found = check_messages(REST_FRAMEWORK=rest_framework)
    assert list(found) == ["django_microkit.W030"]


def test_w030_accepts_every_microkit_paginator(settings: Any) -> None:
    class Own(CursorPagination):
        pass

    for paginator in (LimitOffsetPagination, PageNumberPagination, Own):
        rest_framework = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_PAGINATION_CLASS": paginator,
        }
        assert check_messages(REST_FRAMEWORK=rest_framework) == {}


def test_w031_drf_page_size_is_ignored(settings: Any) -> None:
    found = check_messages(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "PAGE_SIZE": 50})
    assert list(found) == ["django_microkit.W031"]


# --- a paginator of the service's own -------------------------------------------------


class SkipPagination(BasePagination):
    """Pages a list by ``?skip=``, made of the helpers a service may use too."""

    def paginate_queryset(  # type: ignore[override]  # pages sequences only
        self, queryset: Sequence[Any], request: Request, view: Any = None
    ) -> list[Any]:
        if single_query_param(request, "mode") not in (None, "plain"):
            raise invalid_pagination("mode", "'mode' must be 'plain'.")
        self.request, self.rows = request, len(queryset)
        self.size = self.get_page_size(request)
        self.skip = int_query_param(request, "skip", minimum=0) or 0
        if self.skip and self.skip >= self.rows:
            raise page_not_found()
        return list(queryset[self.skip : self.skip + self.size])

    def get_next_link(self) -> str | None:
        after = self.skip + self.size
        assert self.request is not None
        return (
            page_url(self.request, {"skip": str(after)}) if after < self.rows else None
        )

    def get_previous_link(self) -> str | None:
        assert self.request is not None
        return page_url(self.request, {"skip": None}) if self.skip else None


def test_a_paginator_of_ones_own_answers_the_same_envelope() -> None:
    paginator = SkipPagination()
    request = Request(APIRequestFactory().get("/items/?q=a&skip=2&page_size=2"))
    response = paginator.get_paginated_response(
        paginator.paginate_queryset(range(5), request)
    )
    assert response.data == {
        "results": [2, 3],
        "next": "http://testserver/items/?q=a&page_size=2&skip=4",
        "previous": "http://testserver/items/?q=a&page_size=2",
    }
    assert parse_links(response["Link"]) == {
        "next": "http://testserver/items/?q=a&page_size=2&skip=4",
        "prev": "http://testserver/items/?q=a&page_size=2",
    }


@pytest.mark.parametrize(
    ("query", "status", "item"),
    [
        ("skip=x", 400, {"code": "not_an_integer", "parameter": "skip"}),
        ("skip=1&skip=2", 400, {"code": "duplicate", "parameter": "skip"}),
        ("mode=fancy", 400, {"code": "invalid", "parameter": "mode"}),
        ("skip=9", 404, None),
        ("skip=" + "9" * 5000, 400, {"code": "max_value", "parameter": "skip"}),
    ],
)
def test_a_paginator_of_ones_own_refuses_with_the_same_problems(
    query: str, status: int, item: dict[str, str] | None
) -> None:
    request = Request(APIRequestFactory().get(f"/items/?{query}"))
    with pytest.raises(Problem) as raised:
        SkipPagination().paginate_queryset(range(5), request)
    assert raised.value.status_code == status
    errors = raised.value.errors
    if item is None:
        assert not errors
    else:
        assert errors and item.items() <= errors[0].items()


def test_openapi_query_parameter() -> None:
    assert openapi_query_parameter("skip", "Rows to skip.", {"type": "integer"}) == {
        "name": "skip",
        "required": False,
        "in": "query",
        "description": "Rows to skip.",
        "schema": {"type": "integer"},
    }

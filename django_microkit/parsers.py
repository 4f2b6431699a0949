"""Request body parsers that refuse hostile JSON with a 400, never a 500.

DRF's ``JSONParser`` turns a ``ValueError`` from the JSON decoder into a
``ParseError`` but lets a ``RecursionError`` through: a body of a few hundred
kilobytes of nested ``[`` exhausts the decoder's recursion limit and the
request answers 500. :class:`JSONParser` answers 400 ``parse_error`` instead.
``rest_framework_defaults()`` names it in ``DEFAULT_PARSER_CLASSES``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

__all__ = ["JSONParser"]


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with too deeply nested JSON a 400 ``parse_error``.

    ``POST /orders/`` with ``{"items": [[[[…]]]]}`` nested beyond the
    decoder's recursion limit answers::

        HTTP/1.1 400 Bad Request
        Content-Type: application/problem+json

        {"status": 400, "code": "parse_error",
         "detail": "JSON parse error - too deeply nested.", ...}
    """

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - too deeply nested.") from exc

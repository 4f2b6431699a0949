"""A strict RFC 8288 ``Link`` parser for the tests."""

from __future__ import annotations

import re

import requests.utils

# RFC 8288 link-value: "<" URI-Reference ">" *( OWS ";" OWS link-param ), with
# the URI made of RFC 3986 characters only.
_LINK_VALUE = re.compile(
    r'<(?P<uri>[A-Za-z0-9\-._~:/?#\[\]@!$&\'()*+,;=%]*)>(?P<params>(?:\s*;\s*[a-z]+="[^"]*")+)'
)


def parse_links(header: str) -> dict[str, str]:
    """rel -> URI, parsed strictly; cross-checked with requests' parser."""
    links: dict[str, str] = {}
    rest = header
    while rest:
        match = _LINK_VALUE.match(rest)
        assert match is not None, f"not an RFC 8288 link-value: {rest!r}"
        rel = re.search(r'rel="([^"]*)"', match["params"])
        assert rel is not None
        links[rel[1]] = match["uri"]
        rest = rest[match.end() :]
        assert rest == "" or rest.startswith(", "), rest
        rest = rest[2:]
    loose = {
        link["rel"]: link["url"] for link in requests.utils.parse_header_links(header)
    }
    assert loose == links
    return links

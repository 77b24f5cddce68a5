"""Secret-looking query parameters lose their values wherever a URL is recorded."""

import pytest

from gatetrace.runtime import url_redaction


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=shoes&page=2", "q=shoes&page=2"),
        ("api_key=abc&q=1", "api_key=<redacted>&q=1"),
        ("X-Amz-Signature=deadbeef&X-Amz-Date=1", "X-Amz-Signature=<redacted>&X-Amz-Date=1"),
        ("sig=1&signal=2", "sig=<redacted>&signal=2"),
        ("access%5Ftoken=t", "access%5Ftoken=<redacted>"),
        ("PASSWORD=x&user=bob", "PASSWORD=<redacted>&user=bob"),
        ("token", "token"),
        ("a=1&&token=2&", "a=1&&token=<redacted>&"),
        ("", ""),
    ],
)
def test_redact_query(query: str, expected: str) -> None:
    assert url_redaction.redact_query(query) == expected


def test_an_unchanged_query_is_the_same_object() -> None:
    query = "q=1&page=2"
    assert url_redaction.redact_query(query) is query


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://u:p@h:80/x", "http://REDACTED:REDACTED@h:80/x"),
        ("https://user@h/x?a=b@c", "https://REDACTED:REDACTED@h/x?a=b@c"),
        ("http://a@b:p@h", "http://REDACTED:REDACTED@h"),
        ("http://h/p@x", "http://h/p@x"),
        ("http://h#frag@x", "http://h#frag@x"),
        ("not a url", "not a url"),
    ],
)
def test_redact_userinfo(url: str, expected: str) -> None:
    assert url_redaction.redact_userinfo(url) == expected

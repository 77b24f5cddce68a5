"""The kit's HTTP attributes (OpenTelemetry HTTP semantic conventions), rule by rule."""

from gatetrace.embed import semconv
from gatetrace.runtime import span


def _server(**fields: object) -> dict[str, span.TagValue]:
    tags: dict[str, span.TagValue] = {}
    semconv.ServerRequest(**fields).write(tags, 64)  # type: ignore[arg-type]
    return tags


def _client(method: str, url: str) -> dict[str, span.TagValue]:
    tags: dict[str, span.TagValue] = {}
    semconv.ClientRequest(method, url).write(tags, 256)
    return tags


def test_server_query_is_recorded_with_secret_values_redacted() -> None:
    tags = _server(method="GET", path="/orders", query="id=7&access_token=abc", host="svc:8080")
    assert tags["url.path"] == "/orders"
    assert tags["url.query"] == "id=7&access_token=<redacted>"
    assert (tags["server.address"], tags["server.port"]) == ("svc", 8080)
    assert "url.query" not in _server(method="GET", path="/")


def test_an_unknown_method_is_other_with_the_original_kept() -> None:
    tags = _server(method="PURGE", path="/")
    assert tags["http.request.method"] == "_OTHER"
    assert tags["http.request.method_original"] == "PURGE"
    assert semconv.server_name("PURGE", "/x") == "HTTP /x"
    assert semconv.client_name("get") == "HTTP"  # methods are case-sensitive


def test_client_url_full_never_holds_credentials_or_secret_values() -> None:
    tags = _client("GET", "https://svc:s3cret@pay.internal/charge?sig=zz&amount=5#frag")
    assert (
        tags["url.full"] == "https://REDACTED:REDACTED@pay.internal/charge?sig=<redacted>&amount=5"
    )
    assert (tags["server.address"], tags["server.port"]) == ("pay.internal", 443)
    plain = _client("POST", "http://10.0.0.7:8081/x")
    assert plain["url.full"] == "http://10.0.0.7:8081/x"
    assert (plain["server.address"], plain["server.port"]) == ("10.0.0.7", 8081)

"""The trace page on the admin port: its files are public and locked down by headers,
nothing else becomes public, and the page only loads same-origin files and builds its DOM
from text (the browser test in tests/browser drives it for real)."""

import html.parser
import importlib.resources
import re

import pytest
from adminharness import AUTH, running_admin

from gatetrace.gateway import admin_auth, ui

pytestmark = pytest.mark.timeout(30)

UI_FILES = importlib.resources.files("gatetrace.gateway") / "ui"


class _References(html.parser.HTMLParser):
    """Every src/href of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("src", "href"):
            value = found.get(name)
            if value is not None:
                self.urls.append(value)
        if tag == "script" and "src" not in found:
            self.inline_scripts += 1
        if any(name.startswith("on") for name, _ in attrs):
            raise AssertionError(f"inline event handler on <{tag}>: {attrs}")


def _page_references() -> _References:
    parser = _References()
    parser.feed((UI_FILES / "index.html").read_text(encoding="utf-8"))
    return parser


async def test_page_and_assets_are_served_without_a_token() -> None:
    async with running_admin() as adm:
        for path, content_type, marker in [
            ("/ui/", "text/html", '<script src="app.js"'),
            ("/ui/app.js", "text/javascript", "sessionStorage"),
            ("/ui/app.css", "text/css", ".waterfall"),
        ]:
            response = await adm.client.get(path)
            assert response.status == 200, path
            assert response.content_type == content_type, path
            assert marker in await response.text(), path
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Content-Security-Policy"] == ui.CONTENT_SECURITY_POLICY


async def test_bare_prefix_redirects_to_the_page() -> None:
    async with running_admin() as adm:
        response = await adm.client.get("/ui", allow_redirects=False)
        assert response.status == 308
        assert response.headers["Location"] == "/ui/"


@pytest.mark.parametrize(
    "path",
    [
        "/api/services",
        "/api/traces?service=edge",
        "/admin/v1/tracing",
        "/ui/index.html.bak",
        "/ui/app.js/extra",
        "/ui/../api/services",
        "/ui/%2e%2e/api/services",
        "/uix/",
    ],
)
async def test_everything_else_still_needs_the_token(path: str) -> None:
    async with running_admin() as adm:
        response = await adm.client.get(path)
        assert response.status == 401, path
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_query_api_answers_with_the_token_the_page_sends() -> None:
    async with running_admin() as adm:
        response = await adm.client.get("/api/services", headers=AUTH)
        assert response.status == 200
        assert (await response.json())["data"] == []


async def test_public_paths_are_exactly_the_page_routes() -> None:
    async with running_admin() as adm:
        routed = {
            route.resource.canonical
            for route in adm.client.app.router.routes()
            if route.resource is not None and route.resource.canonical.startswith("/ui")
        }
    assert routed == set(ui.PUBLIC_PATHS)
    assert ui.PUBLIC_PATHS <= admin_auth.OPEN_PATHS
    assert {p for p in admin_auth.OPEN_PATHS if p.startswith("/ui")} == ui.PUBLIC_PATHS


def test_page_loads_only_its_own_files() -> None:
    refs = _page_references()
    assert refs.inline_scripts == 0
    files = [url for url in refs.urls if not url.startswith(("#", "data:"))]
    assert sorted(files) == ["app.css", "app.js"]
    for url in files:
        assert url in ui.ASSETS


def test_script_builds_the_dom_from_text_and_calls_no_other_host() -> None:
    script = (UI_FILES / "app.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink
    assert "new Function" not in script
    hosts = set(re.findall(r"https?://[^\s\"'`]+", script))
    assert hosts == {"http://www.w3.org/2000/svg"}  # the SVG namespace, never fetched
    # the token goes into sessionStorage and the Authorization header, nowhere else
    assert "localStorage" not in script
    assert "document.cookie" not in script
    assert "Authorization: `Bearer ${bearer}`" in script


def test_forms_cannot_leak_the_token_into_a_url() -> None:
    page = (UI_FILES / "index.html").read_text(encoding="utf-8")
    forms = re.findall(r"<form\b[^>]*>", page)
    assert forms
    for form in forms:
        assert 'method="post"' in form, form  # never a GET query string, even without JS
    assert "form-action 'none'" in ui.CONTENT_SECURITY_POLICY

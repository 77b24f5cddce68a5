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
        for name, (file_name, content_type) in ui.ASSETS.items():
            response = await adm.client.get(ui.PREFIX + name)
            assert response.status == 200, name
            assert response.content_type == content_type, name
            assert await response.read() == (UI_FILES / file_name).read_bytes(), name
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Content-Security-Policy"] == ui.CONTENT_SECURITY_POLICY
        page = await (await adm.client.get("/ui/")).text()
        assert '<script type="module" src="app.js">' in page


def test_every_file_of_the_page_is_served() -> None:
    files = {f.name for f in UI_FILES.iterdir() if f.is_file()}
    assert files == {file_name for file_name, _ in ui.ASSETS.values()}


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


def _scripts() -> dict[str, str]:
    return {
        f.name: f.read_text(encoding="utf-8")
        for f in UI_FILES.iterdir()
        if f.is_file() and f.name.endswith(".js")
    }


def test_scripts_import_only_served_modules() -> None:
    scripts = _scripts()
    imported = set()
    for script in scripts.values():
        for specifier in re.findall(r"^import\b[^;]*?from \"([^\"]+)\";", script, re.M):
            assert specifier.startswith("./"), specifier  # same folder, never another host
            imported.add(specifier[2:])
    assert imported == set(scripts) - {"app.js"}
    assert imported <= set(ui.ASSETS)


def test_scripts_build_the_dom_from_text_and_call_no_other_host() -> None:
    scripts = _scripts()
    for name, script in scripts.items():
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in script, (name, sink)
        assert "new Function" not in script, name
        assert "localStorage" not in script and "document.cookie" not in script, name
        hosts = set(re.findall(r"https?://[^\s\"'`]+", script))
        assert hosts <= {"http://www.w3.org/2000/svg"}, name  # the SVG namespace, not fetched
    # the token goes into sessionStorage and the Authorization header, nowhere else
    assert "sessionStorage" in scripts["session.js"]
    assert "Authorization: `Bearer ${bearer}`" in scripts["session.js"]
    assert [n for n, s in scripts.items() if "sessionStorage" in s or "fetch(" in s] == [
        "session.js"
    ]


def test_forms_cannot_leak_the_token_into_a_url() -> None:
    page = (UI_FILES / "index.html").read_text(encoding="utf-8")
    forms = re.findall(r"<form\b[^>]*>", page)
    assert forms
    for form in forms:
        assert 'method="post"' in form, form  # never a GET query string, even without JS
    assert "form-action 'none'" in ui.CONTENT_SECURITY_POLICY

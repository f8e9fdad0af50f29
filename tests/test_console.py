"""The web console is served at / next to the API, which answers as before."""

from pathlib import Path

import pytest

from tests.conftest import AppFactory

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
INDEX = "<!doctype html><html><body><div id=root></div><script src=/assets/app-1a2b.js>"
SCRIPT = "console.log('clarion');\n" * 200


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    folder = tmp_path / "console_dist"
    (folder / "assets").mkdir(parents=True)
    (folder / "index.html").write_text(INDEX)
    (folder / "assets" / "app-1a2b.js").write_text(SCRIPT)
    (folder / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (tmp_path / "secret.txt").write_text("not for the web")
    return folder


class TestWithoutBuild:
    async def test_root_says_how_to_build_and_the_api_works(
        self, make_api: AppFactory, tmp_path: Path
    ) -> None:
        api = await make_api(console_dir=tmp_path / "nothing-here")
        page = await api.client.get("/", headers=BROWSER)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "make console" in page.text and "npm ci" in page.text
        account = await api.new_account("acme", credits=5)
        me = await account.get("/account")
        assert me.status_code == 200 and me.json()["balance"] == 5


class TestWithBuild:
    async def test_root_and_client_routes_answer_the_index(
        self, make_api: AppFactory, dist: Path
    ) -> None:
        api = await make_api(console_dir=dist)
        for path in ("/", "/campaigns/7", "/contacts", "/settings/keys", "/sign-in"):
            page = await api.client.get(path, headers=BROWSER)
            assert page.status_code == 200, path
            assert page.text == INDEX
            assert page.headers["cache-control"] == "no-cache"

    async def test_a_navigation_without_accept_is_a_page_too(
        self, make_api: AppFactory, dist: Path
    ) -> None:
        api = await make_api(console_dir=dist)
        page = await api.client.get("/lists/3", headers={"Sec-Fetch-Mode": "navigate"})
        assert page.text == INDEX

    async def test_api_clients_get_the_api_on_the_same_paths(
        self, make_api: AppFactory, dist: Path
    ) -> None:
        api = await make_api(console_dir=dist)
        account = await api.new_account("acme", credits=5)
        listed = await account.get("/campaigns", headers={"Accept": "application/json"})
        assert listed.status_code == 200 and listed.json()["total"] == 0
        anything = await account.get("/campaigns", headers={"Accept": "*/*"})
        assert anything.json()["total"] == 0
        missing = await account.get("/campaigns/999")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        created = await account.post("/lists", json={"name": "vip"}, headers=BROWSER)
        assert created.status_code == 201

    async def test_api_pages_stay_the_apis(self, make_api: AppFactory, dist: Path) -> None:
        api = await make_api(console_dir=dist)
        docs = await api.client.get("/docs", headers=BROWSER)
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
        schema = await api.client.get("/openapi.json", headers=BROWSER)
        assert schema.json()["info"]["title"] == "Clarion"
        health = await api.client.get("/healthz", headers=BROWSER)
        assert health.json()["status"] == "ok"

    async def test_hashed_assets_are_cached_for_a_year_and_compressed(
        self, make_api: AppFactory, dist: Path
    ) -> None:
        api = await make_api(console_dir=dist)
        asset = await api.client.get("/assets/app-1a2b.js", headers={"Accept-Encoding": "gzip"})
        assert asset.status_code == 200
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert asset.headers["content-encoding"] == "gzip"
        assert asset.text == SCRIPT  # httpx decodes it
        assert "javascript" in asset.headers["content-type"]

    async def test_missing_or_escaping_asset_paths_are_404(
        self, make_api: AppFactory, dist: Path
    ) -> None:
        api = await make_api(console_dir=dist)
        for path in ("/assets/missing.js", "/assets/../../secret.txt", "/assets/%2e%2e/index.html"):
            answer = await api.client.get(path)
            assert answer.status_code == 404, path
            assert "not for the web" not in answer.text

    async def test_top_level_build_files_are_served(self, make_api: AppFactory, dist: Path) -> None:
        api = await make_api(console_dir=dist)
        icon = await api.client.get("/favicon.svg")
        assert icon.status_code == 200 and "svg" in icon.text

    async def test_writes_are_never_the_consoles(self, make_api: AppFactory, dist: Path) -> None:
        api = await make_api(console_dir=dist)
        answer = await api.client.post("/", headers=BROWSER)
        assert answer.status_code in (404, 405)
        assert answer.text != INDEX

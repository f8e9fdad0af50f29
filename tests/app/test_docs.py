"""/docs and /redoc work offline: every URL they load is served by Clarion itself."""

import re

import pytest

from tests.conftest import Api

URL = re.compile(r"""(?:src|href)=["']([^"']+)["']|url:\s*["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_pages_load_only_local_assets_and_the_assets_are_served(api: Api, page: str) -> None:
    r = await api.client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "cdn" not in html.lower() and "googleapis" not in html
    urls = [a or b for a, b in URL.findall(html)]
    scripts = [u for u in urls if u.endswith(".js")]
    assert scripts, html
    for url in urls:
        assert url.startswith("/"), url  # no other host
        if url.startswith("/docs-assets/"):
            asset = await api.client.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > 1000, url
    assert "/openapi.json" in html
    spec = (await api.client.get("/openapi.json")).json()
    assert "/docs-assets" not in str(spec["paths"])

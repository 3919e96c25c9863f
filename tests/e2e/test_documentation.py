"""The documentation works offline and stands alone: `/docs` and `/redoc` load
every asset from the service itself, and the README and docs/ link nothing
outside the repository."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from fieldledger.api.app import create_app
from fieldledger.api.reference import reference
from fieldledger.application.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']""")


@pytest.fixture
def client(sqlite_url: str) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=sqlite_url, background=False, sweep_interval=0))
    with TestClient(app) as client:
        yield client


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_documentation_loads_only_local_assets(client: TestClient, page: str) -> None:
    r = client.get(page)
    assert r.status_code == 200
    assets = ASSET.findall(r.text)
    assert any(a.endswith(".js") for a in assets), assets
    for asset in assets:
        assert asset.startswith("/") and not asset.startswith("//"), asset
        assert client.get(asset).status_code == 200, asset
    assert "https://" not in r.text and "http://" not in r.text  # no CDN, no fonts
    if page == "/docs":
        assert '"validatorUrl": null' in r.text  # Swagger UI asks no validator online


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)|<(https?://[^>]+)>")


@pytest.mark.parametrize("document", documents(), ids=lambda p: p.name)
def test_the_docs_link_nothing_outside_the_repository(document: Path) -> None:
    text = document.read_text("utf-8")
    for found in MARKDOWN_LINK.finditer(text):
        target = found.group(1) or found.group(2)
        assert not re.match(r"^[a-z]+:", target), f"{document.name} links outside: {target}"
        path = (document.parent / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT), f"{document.name} links outside the repo: {target}"
        assert path.exists(), f"{document.name} links to a missing file: {target}"


def test_the_api_reference_is_current(client: TestClient) -> None:
    """docs/reference.md is what `python -m fieldledger.api.reference` writes now."""
    written = (ROOT / "docs" / "reference.md").read_text("utf-8")
    assert written == reference(client.get("/openapi.json").json()), (
        "docs/reference.md is out of date: python -m fieldledger.api.reference > docs/reference.md"
    )

"""The OpenAPI document describes every route, and /docs renders from local files only."""

from __future__ import annotations

import re
from collections import Counter

from quart import Quart
from quart.testing import QuartClient

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}
HIDDEN = {"/metrics", "/docs", "/docs/static/{filename}", "/openapi.json"}


async def test_spec_lists_every_route_with_tag_summary_and_unique_operation_id(
    embedded_app: Quart, embedded_client: QuartClient
) -> None:
    spec = await (await embedded_client.get("/openapi.json")).get_json()
    assert spec["openapi"].startswith("3.") and spec["info"]["title"] == "CodeMentor API"
    operations = [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]
    for path, method, operation in operations:
        assert operation.get("tags"), f"{method.upper()} {path} has no tag"
        assert operation.get("summary"), f"{method.upper()} {path} has no summary"
        assert operation.get("operationId"), f"{method.upper()} {path} has no operationId"
    ids = Counter(operation["operationId"] for _, _, operation in operations)
    assert [name for name, count in ids.items() if count > 1] == []

    documented = {(path, method.upper()) for path, method, _ in operations}
    for rule in embedded_app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]*:)?([^>]+)>", r"{\1}", rule.rule)
        if path in HIDDEN:
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, f"{method} {path} is missing from the spec"
    assert {"/", "/health", "/health/ready"} <= set(spec["paths"])
    assert not HIDDEN & set(spec["paths"])


async def test_spec_declares_bearer_and_cookie_security(embedded_client: QuartClient) -> None:
    spec = await (await embedded_client.get("/openapi.json")).get_json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert schemes["cookieAuth"] == {"type": "apiKey", "in": "cookie", "name": "access_token"}
    assert {tag["name"] for tag in spec["tags"]} == {"health", "auth", "users", "exercises", "chat", "github"}


async def test_docs_reference_only_local_assets_that_are_served(embedded_client: QuartClient) -> None:
    response = await embedded_client.get("/docs")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    page = await response.get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert len(assets) >= 3
    for asset in assets:
        assert asset.startswith("/docs/static/"), f"{asset} is not local"
        served = await embedded_client.get(asset)
        assert served.status_code == 200, asset
        assert len(await served.get_data()) > 0
    assert "<script>" not in page  # no inline script: the CSP allows only our own files
    bundle = await (await embedded_client.get("/docs/static/swagger-ui-bundle.js")).get_data(as_text=True)
    assert "swagger" in bundle.lower() and len(bundle) > 500_000  # Swagger UI 5 itself, not a stub
    initializer = await (await embedded_client.get("/docs/static/swagger-initializer.js")).get_data(as_text=True)
    assert '"/openapi.json"' in initializer


async def test_docs_static_serves_nothing_else(embedded_client: QuartClient) -> None:
    for name in ("index.html", "..%2Fapi%2Fdocs.py", "swagger-ui-bundle.js.map"):
        assert (await embedded_client.get(f"/docs/static/{name}")).status_code == 404

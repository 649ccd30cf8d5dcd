"""Swagger UI at `/docs`, served entirely from local files so it renders with no internet access."""

from __future__ import annotations

from pathlib import Path

from quart import Blueprint, Response, abort, send_from_directory
from quart_schema import hide
from swagger_ui_bundle import swagger_ui_path

bp = Blueprint("docs", __name__)

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
SWAGGER_FILES = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "favicon-16x16.png"})
DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>CodeMentor API</title>
  <link rel="stylesheet" href="/docs/static/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/static/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/static/swagger-ui-bundle.js"></script>
  <script src="/docs/static/swagger-initializer.js"></script>
</body>
</html>
"""


@bp.get("/docs")
@hide
async def get_docs() -> Response:
    return Response(DOCS_PAGE, content_type="text/html; charset=utf-8")


@bp.get("/docs/static/<string:filename>")
@hide
async def get_docs_asset(filename: str) -> Response:
    if filename == "swagger-initializer.js":
        response = await send_from_directory(STATIC_DIR, filename)
    elif filename in SWAGGER_FILES:
        response = await send_from_directory(swagger_ui_path, filename)
    else:
        abort(404)
    response.cache_control.public = True
    response.cache_control.max_age = 3600
    return response

"""The API docs page (/docs/) with Swagger UI's files served from the installed ``swagger-ui-py`` package,
so the page works where the server cannot reach the internet (the framework's default loads them, and a
favicon, from a CDN).

``swagger-ui-py`` rather than ``swagger-ui-bundle``: the latter ships Swagger UI 4.15, which renders none of
the OpenAPI 3.1 document the framework writes (3.1 came with Swagger UI 5).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

ASSETS_PATH = "/docs/assets"
ASSETS = Path(str(files("swagger_ui") / "static"))

swagger_page = SwaggerRenderPlugin(
    path="/",
    js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
    css_url=f"{ASSETS_PATH}/swagger-ui.css",
    standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
    favicon=f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>",
)

docs_assets = create_static_files_router(path=ASSETS_PATH, directories=[ASSETS], include_in_schema=False)

"""The admin page that exports a pool's codes: pick a state and a format, download the same stream
``GET /v1/pools/{id}/export`` sends. Reading only: a read-only key may export."""

from __future__ import annotations

from typing import Annotated, get_args

from litestar import Controller, Response, get
from litestar.params import QueryParameter
from litestar.response import Stream

from promopool import service
from promopool.api.deps import PoolId, StoreDep
from promopool.api.native.export import ExportState, export_stream
from promopool.domain.errors import PromopoolError
from promopool.domain.export import ExportFormat
from promopool.web.pages import AnyRequest, handle_admin_error, signed_in
from promopool.web.render import render
from promopool.web.session import COOKIE_PATH


class AdminExportController(Controller):
    path = f"{COOKIE_PATH}/pools/{{pool_id:int}}"
    include_in_schema = False
    exception_handlers = {PromopoolError: handle_admin_error}

    @get("/export")
    async def export_page(self, request: AnyRequest, store: StoreDep, pool_id: PoolId) -> Response[str]:
        admin = await signed_in(request, store)
        pool = await service.get_pool(store, account=admin.account, pool_id=pool_id)
        return render(
            "export.html", admin=admin, pool=pool, states=get_args(ExportState), formats=list(ExportFormat)
        )

    @get("/export/download")
    async def download(
        self,
        request: AnyRequest,
        store: StoreDep,
        pool_id: PoolId,
        state_filter: Annotated[ExportState, QueryParameter(name="state")] = "all",
        export_format: Annotated[ExportFormat, QueryParameter(name="format")] = ExportFormat.CSV,
    ) -> Stream:
        admin = await signed_in(request, store)
        return await export_stream(store, admin.account, pool_id, state_filter, export_format)

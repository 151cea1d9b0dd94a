"""The admin page that generates codes into a pool, and the page of the job that does it.

The form starts the same job ``POST /v1/pools/{id}/generate`` does (checked against the key-space floor
first: a refusal shows the check's message above the form as typed) and always runs it in the background:
the answer goes to the job's page, whose progress bar follows ``/admin/jobs/{id}/progress.json``
(``static/job.js``).
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get, post
from litestar.response import Redirect

from promopool import service
from promopool.api.deps import JobId, JobsDep, PoolId, SettingsDep, StoreDep
from promopool.domain.errors import InvalidInput, PromopoolError
from promopool.domain.generation import CHARSETS, DEFAULT_CHARSET, CodeSpec
from promopool.domain.jobs import Job
from promopool.domain.keys import check_writable
from promopool.web.admin import Admin
from promopool.web.forms import whole_number
from promopool.web.pages import AnyRequest, form_of, handle_admin_error, signed_in
from promopool.web.render import render
from promopool.web.session import COOKIE_PATH, CSRF_FIELD

BLANK_FORM = {"pattern": "####-####-####", "charset": DEFAULT_CHARSET, "count": "1000", "prefix": ""}


def job_progress(job: Job) -> dict[str, Any]:
    """What the job page's script needs to draw the bar and say how it ended."""
    return {
        "id": job.id,
        "state": job.state.value,
        "done": job.done,
        "total": job.total,
        "error": job.error,
        "pool_id": job.pool_id,
    }


async def _form(
    store: StoreDep,
    admin: Admin,
    pool_id: int,
    typed: dict[str, str],
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response[str]:
    pool = await service.get_pool(store, account=admin.account, pool_id=pool_id)
    return render(
        "generate.html",
        status_code=status_code,
        admin=admin,
        pool=pool,
        charsets=CHARSETS,
        typed=typed,
        error=error,
    )


class AdminGenerateController(Controller):
    path = COOKIE_PATH
    include_in_schema = False
    exception_handlers = {PromopoolError: handle_admin_error}

    @get("/pools/{pool_id:int}/generate")
    async def generate_page(self, request: AnyRequest, store: StoreDep, pool_id: PoolId) -> Response[str]:
        admin = await signed_in(request, store)
        check_writable(admin.account)  # the page of an action a read-only key may not take
        return await _form(store, admin, pool_id, BLANK_FORM)

    @post("/pools/{pool_id:int}/generate", status_code=303)
    async def generate(
        self,
        request: AnyRequest,
        store: StoreDep,
        settings: SettingsDep,
        jobs: JobsDep,
        pool_id: PoolId,
    ) -> Response[Any]:
        admin = await signed_in(request, store)
        form = await form_of(request)
        admin.check(form.get(CSRF_FIELD))
        try:
            spec = CodeSpec.of(
                pattern=form.get("pattern", ""),
                charset=form.get("charset", DEFAULT_CHARSET),
                prefix=form.get("prefix", ""),
            )
            job = await service.start_generation(
                store,
                account=admin.account,
                pool_id=pool_id,
                spec=spec,
                count=whole_number(form, "count", low=1) or 0,
                max_fill=settings.max_keyspace_fill,
            )
        except InvalidInput as exc:  # the key-space check's refusal among them, with its figures
            return await _form(store, admin, pool_id, form, error=exc.message, status_code=400)
        jobs.spawn(service.run_generation(store, job=job))
        return Redirect(f"{COOKIE_PATH}/jobs/{job.id}", status_code=303)

    @get("/jobs/{job_id:int}")
    async def job_page(self, request: AnyRequest, store: StoreDep, job_id: JobId) -> Response[str]:
        admin = await signed_in(request, store)
        job = await service.get_job(store, account=admin.account, job_id=job_id)
        pool = None
        if job.pool_id is not None:
            pool = await service.get_pool(store, account=admin.account, pool_id=job.pool_id)
        return render("job.html", admin=admin, job=job, pool=pool)

    @get("/jobs/{job_id:int}/progress.json")
    async def job_json(self, request: AnyRequest, store: StoreDep, job_id: JobId) -> dict[str, Any]:
        admin = await signed_in(request, store)
        return job_progress(await service.get_job(store, account=admin.account, job_id=job_id))

"""The ``promopool`` command: a thin layer over the service. ``promopool`` alone runs ``serve``."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import msgspec
import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from promopool import __version__, listen, service, serving
from promopool.claimfile import Resume, claim_into
from promopool.config import ConfigError, Settings
from promopool.domain import (
    Account,
    ApiKeyInfo,
    Claimed,
    CodeState,
    ImportReport,
    NewAccount,
    NewApiKey,
    Pool,
    PoolSettings,
)
from promopool.domain.alerts import KEEP, PoolAlert
from promopool.domain.claims import MAX_BULK_CLAIM
from promopool.domain.errors import InvalidInput, NotFound, PromopoolError
from promopool.domain.export import ExportFormat, ExportRow, StateFields
from promopool.domain.generation import CHARSETS, DEFAULT_CHARSET, CodeSpec
from promopool.domain.jobs import CliCommand, Job, JobState
from promopool.formats.export import encode_export
from promopool.formats.lines import CsvCodes, iter_lines
from promopool.recipientfile import claim_for_recipients_into
from promopool.storage import Store, open_store
from promopool.storage.failures import safe_url

T = TypeVar("T")

app = typer.Typer(help="promopool: unique promo-code pools with exactly-once claims.", no_args_is_help=False)
accounts_app = typer.Typer(help="Manage accounts.")
keys_app = typer.Typer(help="Manage an account's API keys (rotate: create a new key, then revoke the old).")
pools_app = typer.Typer(help="Manage pools.")
app.add_typer(accounts_app, name="accounts")
app.add_typer(keys_app, name="keys")
profile_dbs_app = typer.Typer(help="Manage profile databases (the Altcraft dialect's db_id).")
app.add_typer(pools_app, name="pools")
app.add_typer(profile_dbs_app, name="profile-dbs")

console = Console()
err = Console(stderr=True)

DatabaseOpt = Annotated[
    str | None, typer.Option("--database-url", "-d", help="Database URL (env PROMOPOOL_DATABASE_URL).")
]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML settings file.")]
AccountOpt = Annotated[str, typer.Option("--account", "-a", help="Account name.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of text.")]
ThresholdOpt = Annotated[
    int | None,
    typer.Option(help="Low-stock alert: an event when available codes fall to this count or below."),
]
WebhookUrlOpt = Annotated[
    str | None, typer.Option(help="POST the pool's low-stock events here (http/https; needs a threshold).")
]


def _print_json(document: Any) -> None:
    # Straight to stdout, not through rich: no markup, highlighting or wrapping may touch the document.
    sys.stdout.write(msgspec.json.encode(document).decode() + "\n")
    sys.stdout.flush()


def _table(*columns: str) -> Table:
    """A table drawn with box characters on a terminal, plain columns for a pipe or a file."""
    return Table(*columns, box=box.HEAVY_HEAD if console.is_terminal else None)


def _settings(ctx: typer.Context, **overrides: Any) -> Settings:
    root = ctx.find_root().params
    merged = {"database_url": root.get("database_url"), **overrides}
    try:
        return Settings.load(file=root.get("config"), overrides=merged)
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None


def _run(settings: Settings, work: Callable[[Store], Awaitable[T]], *, migrate: bool = True) -> T:
    """Open the store, migrate, run ``work``, close; domain errors become a one-line message, exit 1."""

    async def main() -> T:
        store = open_store(settings.database_url, lock_timeout=settings.lock_timeout_seconds)
        await store.connect()
        try:
            if migrate:
                await store.migrate()
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except PromopoolError as exc:
        # One line however long (a log scraper or a terminal finds it whole); the message is no markup.
        err.print(f"[red]error ({exc.code}):[/red] {escape(exc.message)}", soft_wrap=True)
        raise typer.Exit(1) from None


async def _account(store: Store, name: str) -> Account:
    account = await store.account_by_name(name)
    if account is None:
        raise NotFound(f"no account named {name!r} (create it with: promopool accounts create {name})")
    return account


def _print_version(wanted: bool) -> None:
    if wanted:
        _print_line(f"promopool {__version__}")
        raise typer.Exit()


def _print_line(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    database_url: DatabaseOpt = None,
    config: ConfigOpt = None,
    version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version.")
    ] = False,
) -> None:
    """With no command, runs ``serve``."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(serve, ctx=ctx)


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Listen address (env PROMOPOOL_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (env PROMOPOOL_PORT).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (env PROMOPOOL_WORKERS).")] = None,
    log_level: Annotated[
        str | None, typer.Option(help="debug, info, warning or error (env PROMOPOOL_LOG_LEVEL).")
    ] = None,
) -> None:
    """Run the HTTP server (migrates first; on an empty database creates the 'default' account)."""
    settings = _settings(ctx, host=host, port=port, workers=workers, log_level=log_level)
    try:  # first, so that a server that cannot listen does nothing else either
        guard = listen.hold(settings.host, settings.port)
    except listen.PortUnavailable as exc:
        err.print(f"[red]error:[/red] {exc}", soft_wrap=True, highlight=False)
        raise typer.Exit(1) from None
    with guard or contextlib.nullcontext():
        _serve(settings)


def _serve(settings: Settings) -> None:
    _announce_default(_run(settings, service.ensure_default_account), settings)
    # After the database opened (a URL that does not work stays a one-line error): what runs, on what.
    _print_line(f"promopool {__version__}")
    _print_line(f"database:    {safe_url(settings.database_url)}")
    _print_line(f"admin pages: {_base_url(settings)}/admin/")
    serving.run(settings)


def _base_url(settings: Settings) -> str:
    # A wildcard address is not one to browse to; this machine answers on it as 127.0.0.1.
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host  # noqa: S104
    return f"http://{f'[{host}]' if ':' in host else host}:{settings.port}"


def _announce_default(created: NewAccount | None, settings: Settings) -> None:
    if created is None:
        return
    console.print("[bold]Created the 'default' account.[/bold] Its API key is shown this once:")
    console.print(f"  public key (shop_id): {created.account.public_key}")
    console.print(f"  API key:              [bold green]{created.api_key}[/bold green]")
    console.print(
        f'  try: curl -H "Authorization: Bearer {created.api_key}" {_base_url(settings)}/v1/pools',
        soft_wrap=True,  # one line, so that it can be copied as it is
    )


@app.command()
def migrate(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Apply pending database migrations; on an empty database, create the 'default' account (as serve)."""
    settings = _settings(ctx)

    async def work(store: Store) -> tuple[list[int], NewAccount | None]:
        applied = await store.migrate()
        return applied, await service.ensure_default_account(store)

    # (Not migrated beforehand by _run, so that it can say what it applied.)
    applied, created = _run(settings, work, migrate=False)
    if as_json:
        _print_json({"applied": applied, "default_account": created and _new_account_document(created)})
        return
    console.print(f"applied migrations: {applied}" if applied else "database is up to date")
    _announce_default(created, settings)


def _new_account_document(new: NewAccount) -> dict[str, Any]:
    return {
        "account": new.account.name,
        "id": new.account.id,
        "public_key": new.account.public_key,
        "api_key": new.api_key,
    }


@accounts_app.command("create")
def accounts_create(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """Create an account and print its public key and API key (shown once)."""
    new = _run(_settings(ctx), lambda store: service.create_account(store, name=name))
    if as_json:
        _print_json(_new_account_document(new))
        return
    console.print(f"account:              {new.account.name} (id {new.account.id})")
    console.print(f"public key (shop_id): {new.account.public_key}")
    console.print(f"API key:              {new.api_key}")


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    name: str,
    account: AccountOpt = "default",
    read_only: Annotated[bool, typer.Option("--read-only", help="Reads only: writes answer 403.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key and print it (shown once, stored only hashed)."""

    async def work(store: Store) -> NewApiKey:
        owner = await _account(store, account)
        return await service.create_key(store, account=owner, name=name, read_only=read_only)

    new = _run(_settings(ctx), work)
    if as_json:
        _print_json({**_key_document(new.key), "api_key": new.api_key})
        return
    console.print(f"key id:  {new.key.id}" + (" (read-only)" if new.key.read_only else ""))
    console.print(f"API key: {new.api_key}")


@keys_app.command("list")
def keys_list(ctx: typer.Context, account: AccountOpt = "default", as_json: JsonOpt = False) -> None:
    """List the account's API keys: ids, names and last use (never the secrets)."""

    async def work(store: Store) -> list[ApiKeyInfo]:
        return await service.list_keys(store, account=await _account(store, account))

    keys = _run(_settings(ctx), work)
    if as_json:
        _print_json([_key_document(key) for key in keys])
        return
    table = _table("id", "name", "access", "fingerprint", "created", "last used")
    for key in keys:
        used = "never" if key.last_used_at is None else f"{key.last_used_at:%Y-%m-%d %H:%M}"
        access = "read-only" if key.read_only else "read-write"
        created = f"{key.created_at:%Y-%m-%d %H:%M}"
        table.add_row(str(key.id), escape(key.name), access, key.fingerprint, created, used)
    console.print(table)


def _key_document(key: ApiKeyInfo) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "read_only": key.read_only,
        "fingerprint": key.fingerprint,
        "created_at": key.created_at,
        "last_used_at": key.last_used_at,
    }


@keys_app.command("revoke")
def keys_revoke(
    ctx: typer.Context, key_id: int, account: AccountOpt = "default", as_json: JsonOpt = False
) -> None:
    """Revoke an API key: servers refuse it within auth_cache_seconds (not the account's only key)."""

    async def work(store: Store) -> ApiKeyInfo:
        return await service.revoke_key(store, account=await _account(store, account), key_id=key_id)

    revoked = _run(_settings(ctx), work)
    if as_json:
        _print_json(_key_document(revoked))
        return
    console.print(f"revoked key {revoked.id} ({escape(revoked.name)})")


@pools_app.command("create")
def pools_create(
    ctx: typer.Context,
    name: str,
    account: AccountOpt = "default",
    max_uses: Annotated[int, typer.Option(help="Redemptions allowed per code.")] = 1,
    public_fetch: Annotated[bool, typer.Option(help="Allow unauthenticated front-end fetch.")] = False,
    low_stock_threshold: ThresholdOpt = None,
    webhook_url: WebhookUrlOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a pool and print its id."""

    async def work(store: Store) -> int:
        owner = await _account(store, account)
        settings = PoolSettings(max_uses=max_uses, public_fetch=public_fetch)
        pool, _ = await service.create_pool_with_alert(
            store,
            account=owner,
            name=name,
            settings=settings,
            threshold=low_stock_threshold,
            webhook_url=webhook_url,
        )
        return pool.id

    _print_id(_run(_settings(ctx), work), as_json)


@pools_app.command("set")
def pools_set(
    ctx: typer.Context,
    pool_id: int,
    account: AccountOpt = "default",
    low_stock_threshold: ThresholdOpt = None,
    webhook_url: Annotated[
        str | None, typer.Option(help="POST the pool's events here (http/https); '' removes the URL.")
    ] = None,
    clear_alert: Annotated[
        bool, typer.Option("--clear-alert", help="Remove the low-stock alert and its webhook URL.")
    ] = False,
    fallback_code: Annotated[
        str | None, typer.Option(help="A shared code the empty pool answers claims with; '' removes it.")
    ] = None,
    fallback_pool: Annotated[
        int | None, typer.Option(help="Continue claims from this pool once empty; 0 removes it.", min=0)
    ] = None,
    valid_for: Annotated[
        int | None,
        typer.Option(help="Claimed codes expire this many seconds after issue; 0 removes it.", min=0),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a pool's low-stock alert, fallback and relative expiry; options not given keep their value.
    Prints the alert (and the fallback settings when one of them was given)."""
    if clear_alert and (low_stock_threshold is not None or webhook_url is not None):
        raise typer.BadParameter("--clear-alert takes no --low-stock-threshold or --webhook-url")
    changes: dict[str, Any] = {}  # PoolSettings fields by name (Any: they go in as keywords)
    if fallback_code is not None:
        changes["fallback_code"] = fallback_code or None
    if fallback_pool is not None:
        changes["fallback_pool_id"] = fallback_pool or None
    if valid_for is not None:
        changes["valid_for_seconds"] = valid_for or None

    async def work(store: Store) -> tuple[Pool, PoolAlert | None]:
        changed = await service.update_pool_and_alert(
            store,
            account=await _account(store, account),
            pool_id=pool_id,
            threshold=None if clear_alert else KEEP if low_stock_threshold is None else low_stock_threshold,
            webhook_url=KEEP if webhook_url is None else webhook_url,
            **changes,
        )
        return changed.value

    pool, alert = _run(_settings(ctx), work)
    document: dict[str, Any] = {
        "pool_id": pool_id,
        "low_stock_threshold": None if alert is None else alert.threshold,
        "webhook_url": None if alert is None else alert.webhook_url,
    }
    if changes:
        document.update(_fallback_document(pool))
    if as_json:
        _print_json(document)
        return
    if alert is None:
        console.print(f"pool {pool_id}: no low-stock alert")
    else:
        url = escape(alert.webhook_url) if alert.webhook_url else "no webhook URL"
        console.print(f"pool {pool_id}: low-stock alert at {alert.threshold} available, {url}")
    if changes:
        shown = ", ".join(f"{key} {escape(str(value))}" for key, value in _fallback_document(pool).items())
        console.print(f"pool {pool_id}: {shown}")


def _fallback_document(pool: Pool) -> dict[str, Any]:
    s = pool.settings
    return {
        "fallback_code": s.fallback_code,
        "fallback_pool_id": s.fallback_pool_id,
        "valid_for_seconds": s.valid_for_seconds,
    }


def _print_id(created: int, as_json: bool) -> None:
    if as_json:
        _print_json({"id": created})
    else:
        console.print(created)


@profile_dbs_app.command("create")
def profile_dbs_create(
    ctx: typer.Context, name: str, account: AccountOpt = "default", as_json: JsonOpt = False
) -> None:
    """Create a profile database and print its id (the Altcraft dialect's ``db_id``)."""

    async def work(store: Store) -> int:
        owner = await _account(store, account)
        return (await service.create_profile_database(store, account=owner, name=name)).id

    _print_id(_run(_settings(ctx), work), as_json)


@pools_app.command("list")
def pools_list(ctx: typer.Context, account: AccountOpt = "default", as_json: JsonOpt = False) -> None:
    """List the account's pools with their counts."""

    async def work(store: Store) -> list[Pool]:
        return await service.list_pools(store, account=await _account(store, account))

    pools = _run(_settings(ctx), work)
    if as_json:
        _print_json([_pool_document(pool) for pool in pools])
        return
    table = _table("id", "name", "available", "issued", "redeemed")
    for pool in pools:
        c = pool.counts
        table.add_row(str(pool.id), escape(pool.name), str(c.available), str(c.issued), str(c.redeemed))
    console.print(table)


def _pool_document(pool: Pool) -> dict[str, Any]:
    c = pool.counts
    return {
        "id": pool.id,
        "name": pool.name,
        "available": c.available,
        "issued": c.issued,
        "redeemed": c.redeemed,
    }


def _file_values(path: Path, csv: bool, advance: Callable[[int], None]) -> Iterator[str | StateFields]:
    def chunks() -> Iterator[bytes]:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                advance(len(chunk))
                yield chunk

    reader = CsvCodes()
    for line in iter_lines(chunks()):
        item = reader.row(line) if csv else line
        if item is not None:
            yield item


@app.command("import")
def import_(
    ctx: typer.Context,
    pool: int,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    account: AccountOpt = "default",
    csv: Annotated[
        bool | None, typer.Option("--csv/--text", help="Parse as CSV (default: by suffix).")
    ] = None,
    strict: Annotated[bool, typer.Option(help="Refuse the whole file if any code is invalid.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import codes from a file (one per line, or the first CSV column; a CSV export keeps its states) with
    a progress bar."""
    as_csv = file.suffix.lower() == ".csv" if csv is None else csv
    progress = Progress(
        TextColumn("[bold]importing[/bold]"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[inserted]} new, {task.fields[duplicates]} dup, {task.fields[invalid]} bad"),
        console=err,
        transient=False,
        disable=not err.is_terminal,
    )
    task = progress.add_task("import", total=file.stat().st_size, inserted=0, duplicates=0, invalid=0)

    def on_batch(report: ImportReport) -> None:
        progress.update(task, inserted=report.inserted, duplicates=report.duplicates, invalid=report.invalid)

    async def work(store: Store) -> ImportReport:
        owner = await _account(store, account)
        values = _file_values(file, as_csv, lambda n: progress.advance(task, n))
        return await service.counted_cli_run(
            store,
            command=CliCommand.IMPORT,
            run=lambda: service.import_codes(
                store,
                account=owner,
                pool_id=pool,
                values=values,
                strict=strict,
                ignore_blank=True,
                on_batch=on_batch,
            ),
            stored=lambda report: report.inserted,
        )

    with progress:
        report = _run(_settings(ctx), work)
    if as_json:
        _print_json(
            {
                "inserted": report.inserted,
                "duplicates": report.duplicates,
                "invalid": report.invalid,
                "invalid_samples": [
                    {"line": sample.position, "reason": sample.reason} for sample in report.invalid_samples
                ],
            }
        )
        return
    console.print(f"inserted {report.inserted}, duplicates {report.duplicates}, invalid {report.invalid}")
    for sample in report.invalid_samples[:10]:
        console.print(f"  line {sample.position}: {sample.reason.replace('_', ' ')}")


@app.command()
def generate(
    ctx: typer.Context,
    pool: int,
    count: int,
    pattern: Annotated[
        str | None, typer.Option(help="Shape of a code, '#' = a random character: SALE-####-####.")
    ] = None,
    length: Annotated[int | None, typer.Option(help="Random characters, without --pattern (12).")] = None,
    charset: Annotated[str, typer.Option(help=f"{', '.join(CHARSETS)}.")] = DEFAULT_CHARSET,
    prefix: Annotated[str, typer.Option(help="Text before each code.")] = "",
    suffix: Annotated[str, typer.Option(help="Text after each code.")] = "",
    check_character: Annotated[
        bool, typer.Option(help="Append a check character that catches typos and swaps.")
    ] = False,
    lowercase: Annotated[bool, typer.Option(help="Lowercase letters (default: uppercase).")] = False,
    account: AccountOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Generate COUNT new random codes into a pool, with a progress bar."""
    settings = _settings(ctx)
    progress = Progress(
        TextColumn("[bold]generating[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not err.is_terminal,
    )
    task = progress.add_task("generate", total=count)

    async def work(store: Store) -> Job:
        owner = await _account(store, account)
        spec = CodeSpec.of(
            pattern=pattern,
            length=length,
            charset=charset,
            prefix=prefix,
            suffix=suffix,
            check_character=check_character,
            uppercase=not lowercase,
        )
        return await service.counted_cli_run(
            store,
            command=CliCommand.GENERATE,
            run=lambda: service.generate_codes(
                store,
                account=owner,
                pool_id=pool,
                spec=spec,
                count=count,
                max_fill=settings.max_keyspace_fill,
                on_progress=lambda done: progress.update(task, completed=done),
            ),
            stored=lambda job: job.done,
            succeeded=lambda job: job.state is JobState.SUCCEEDED,
        )

    with progress:
        job = _run(settings, work)
    if as_json:  # the job as it ended, failed or not (the exit status still tells which)
        _print_json({"job": job.id, "state": job.state, "done": job.done, "error": job.error})
    if job.state is not JobState.SUCCEEDED:
        err.print(f"[red]error:[/red] job {job.id} stopped after {job.done} codes: {job.error}")
        raise typer.Exit(1)
    if not as_json:
        console.print(f"generated {job.done} codes (job {job.id})")


@app.command()
def export(
    ctx: typer.Context,
    pool: int,
    state: Annotated[str, typer.Option(help="available, issued, redeemed or all.")] = "all",
    export_format: Annotated[
        str | None, typer.Option("--format", help="csv or jsonl (default: the file's suffix, else csv).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
    account: AccountOpt = "default",
) -> None:
    """Export a pool's codes (code, state, issued_at, profile, usage_count) as CSV or JSON lines."""
    suffix = output.suffix.lstrip(".").lower() if output is not None else ""
    chosen = export_format or (suffix if suffix in set(ExportFormat) else ExportFormat.CSV)
    progress = Progress(
        TextColumn("[bold]exporting[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=output is None or not err.is_terminal,
    )

    async def work(store: Store) -> int:
        if chosen not in set(ExportFormat):
            raise InvalidInput(f"format must be csv or jsonl, not {chosen!r}", field="format")
        if state != "all" and state not in set(CodeState):
            raise InvalidInput(
                f"state must be available, issued, redeemed or all, not {state!r}", field="state"
            )
        wanted = None if state == "all" else CodeState(state)
        owner = await _account(store, account)
        counts = (await service.get_pool(store, account=owner, pool_id=pool)).counts
        task = progress.add_task("export", total=counts.total if wanted is None else getattr(counts, wanted))
        batches = await service.export_codes(store, account=owner, pool_id=pool, state=wanted)

        async def counted() -> AsyncIterator[list[ExportRow]]:
            async for rows in batches:
                progress.advance(task, len(rows))
                yield rows

        written = 0
        with contextlib.ExitStack() as stack:
            sink = sys.stdout.buffer if output is None else stack.enter_context(output.open("wb"))
            async for chunk in encode_export(counted(), ExportFormat(chosen)):
                sink.write(chunk)
                written += len(chunk)
            sink.flush()
        return written

    with progress:
        _run(_settings(ctx), work)


@app.command()
def claim(
    ctx: typer.Context,
    pool: int,
    account: AccountOpt = "default",
    idempotency_key: Annotated[
        str | None, typer.Option(help="Retry-safe key; with --count, what makes the run resumable.")
    ] = None,
    count: Annotated[
        int | None, typer.Option("--count", "-n", min=1, help="Claim this many codes into --output.")
    ] = None,
    recipients: Annotated[
        Path | None,
        typer.Option(help="Claim for each recipient of this file (one a line) its code, into --output."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="With --count: the file to write, one code per line; with --recipients, CSV recipient,code.",
        ),
    ] = None,
    chunk_size: Annotated[
        int,
        typer.Option(
            min=1, max=MAX_BULK_CLAIM, help="Codes per bulk claim into --output (keep it for a re-run)."
        ),
    ] = MAX_BULK_CLAIM,
    as_json: JsonOpt = False,
) -> None:
    """Hand out the next code of a pool and print it; or, with --count and -o, that many codes into a file;
    or, with --recipients and -o, each recipient's code. Resumable: re-run the same command (same
    --idempotency-key) to continue a run that stopped."""
    if recipients is not None:
        if count is not None:
            err.print("[red]error:[/red] --count and --recipients exclude each other")
            raise typer.Exit(2)
        _claim_for_recipients_into(
            ctx, pool, account, idempotency_key, recipients, output, chunk_size, as_json
        )
        return
    if count is not None or output is not None:
        _claim_into(ctx, pool, account, idempotency_key, count, output, chunk_size, as_json)
        return

    async def work(store: Store) -> Claimed:
        owner = await _account(store, account)
        return await service.claim(store, account=owner, pool_id=pool, idempotency_key=idempotency_key)

    claimed = _run(_settings(ctx), work)
    if as_json:
        _print_json({"code": claimed.code.value, "pool": pool, "replayed": claimed.replayed})
    else:
        _print_line(claimed.code.value)


def _claim_into(
    ctx: typer.Context,
    pool: int,
    account: str,
    key: str | None,
    count: int | None,
    output: Path | None,
    chunk: int,
    as_json: bool,
) -> None:
    if count is None or output is None:
        err.print("[red]error:[/red] --count and --output go together")
        raise typer.Exit(2)
    run_key = _need_key(key)
    progress, task = _claim_progress(count)

    async def work(store: Store) -> Resume:
        owner = await _account(store, account)
        return await claim_into(
            store,
            account=owner,
            pool_id=pool,
            count=count,
            key=run_key,
            path=output,
            chunk=chunk,
            on_codes=lambda codes: progress.advance(task, codes),
        )

    with progress:
        start = _run(_settings(ctx), work)
    if as_json:
        _print_json({"pool": pool, "count": count, "file": str(output), "resumed_at": start.lines})
    else:
        resumed = f" (continued after {start.lines} already in the file)" if start.lines else ""
        _print_line(f"claimed {count} codes into {output}{resumed}")


def _need_key(key: str | None) -> str:
    """The run's key; exit 2 without one."""
    if key is None:  # a run without a key could not be continued without claiming its lost chunk again
        err.print(
            "[red]error:[/red] claiming into a file needs --idempotency-key (a unique name of this run, e.g."
            " the campaign's): re-running the same command with it continues where the file stops"
        )
        raise typer.Exit(2)
    return key


def _claim_progress(total: int | None) -> tuple[Progress, TaskID]:
    progress = Progress(
        TextColumn("[bold]claiming[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not err.is_terminal,
    )
    return progress, progress.add_task("claim", total=total)


def _claim_for_recipients_into(
    ctx: typer.Context,
    pool: int,
    account: str,
    key: str | None,
    recipients: Path,
    output: Path | None,
    chunk: int,
    as_json: bool,
) -> None:
    if output is None:
        err.print("[red]error:[/red] --recipients and --output go together")
        raise typer.Exit(2)
    run_key = _need_key(key)
    progress, task = _claim_progress(None)
    total = 0

    def on_total(count: int) -> None:
        nonlocal total
        total = count
        progress.update(task, total=count)

    async def work(store: Store) -> Resume:
        owner = await _account(store, account)
        return await claim_for_recipients_into(
            store,
            account=owner,
            pool_id=pool,
            recipients=recipients,
            key=run_key,
            path=output,
            chunk=chunk,
            on_total=on_total,
            on_rows=lambda rows: progress.advance(task, rows),
        )

    with progress:
        start = _run(_settings(ctx), work)
    if as_json:
        _print_json({"pool": pool, "recipients": total, "file": str(output), "resumed_at": start.lines})
    else:
        resumed = f" (continued after {start.lines} already in the file)" if start.lines else ""
        _print_line(f"claimed codes for {total} recipients into {output}{resumed}")


def _copy_progress(verb: str) -> tuple[Progress, TaskID]:
    progress = Progress(
        TextColumn(f"[bold]{verb}[/bold] {{task.fields[table]}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not err.is_terminal,
    )
    return progress, progress.add_task(verb, total=None, table="")


def _copy(ctx: typer.Context, *, other_url: str, into_other: bool, verb: str) -> None:
    """Copy the configured database into ``other_url`` (``into_other``) or back, with a progress bar; print
    the verification and exit 1 on any difference."""
    settings = _settings(ctx)
    progress, task = _copy_progress(verb)

    async def work(store: Store) -> service.CopyReport:
        other = open_store(other_url, lock_timeout=settings.lock_timeout_seconds)
        await other.connect()
        try:
            return await service.copy_database(
                source=store if into_other else other,
                target=other if into_other else store,
                on_start=lambda total: progress.update(task, total=total),
                on_rows=lambda table, rows: progress.update(task, advance=rows, table=table),
            )
        finally:
            await other.close()

    with progress:
        report = _run(settings, work)
    _print_verification(report)


def _print_verification(report: service.CopyReport) -> None:
    """Every table's rows on both sides and whether the checksums agree; exit 1 on any difference."""
    table = Table("table", "rows", "rows in the copy", "checksum")
    for check in report.tables:
        differs = f"[red]{check.target_checksum} ≠ {check.source_checksum}[/red]"
        same = "[green]equal[/green]" if check.ok else differs
        table.add_row(check.table, str(check.source_rows), str(check.target_rows), same)
    console.print(table)
    if not report.ok:
        err.print("[red]error:[/red] the copy differs from the source (see the table above)")
        raise typer.Exit(1)
    console.print(f"verified: {report.rows} rows in {len(report.tables)} tables, counts and checksums equal")


@app.command("copy")
def copy_(
    ctx: typer.Context,
    to: Annotated[str, typer.Option("--to", help="URL of the empty database to copy into.")],
) -> None:
    """Copy the whole database into an empty one (SQLite to PostgreSQL or back), then verify the copy."""
    _copy(ctx, other_url=to, into_other=True, verb="copying")


@app.command()
def backup(ctx: typer.Context, file: Path) -> None:
    """Back the database up into a new SQLite file, consistent and verified, while servers keep running
    (SQLite: the online backup API; PostgreSQL: a copy in one snapshot). Restore with `promopool restore`."""
    if file.exists():
        err.print(f"[red]error:[/red] {escape(str(file))} exists; a backup never overwrites a file")
        raise typer.Exit(1)
    progress, task = _copy_progress("backing up")

    async def work(store: Store) -> service.CopyReport:
        return await service.backup_database(
            source=store,
            path=file,
            on_start=lambda total: progress.update(task, total=total),
            on_rows=lambda table, rows: progress.update(task, advance=rows, table=table),
            on_pages=lambda done, total: progress.update(task, completed=done, total=total, table="pages"),
        )

    with progress:
        report = _run(_settings(ctx), work)
    _print_verification(report)


@app.command()
def restore(
    ctx: typer.Context, file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]
) -> None:
    """Restore a backup file into the configured database, which must be empty, then verify it."""
    _copy(ctx, other_url=f"sqlite:///{file}", into_other=False, verb="restoring")


def main() -> None:
    app()

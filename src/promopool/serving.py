"""What `promopool serve` does around the HTTP server (granian): hand the settings to the worker processes,
set up what they share, and run them until stopped."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import multiprocessing
import os
import resource
import secrets
import tempfile
from dataclasses import replace
from pathlib import Path

from promopool import ledger, metrics
from promopool.config import SERVER_PID_ENV, Settings
from promopool.logs import log_config

log = logging.getLogger("promopool.serve")


def warnings(settings: Settings) -> list[str]:
    """What an operator should hear about these settings when the server starts."""
    found = []
    if settings.metrics_token is None and not _loopback(settings.host):
        found.append(
            f"/metrics is open to anyone who reaches {settings.host}:{settings.port} and names every account:"
            " set PROMOPOOL_METRICS_TOKEN, or keep the port off the internet"
        )
    return found


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may stand for any address
        return False


# What a worker needs open besides its client connections: the database pool, log and data files, pipes.
RESERVED_FILES = 256


def raise_open_file_limit() -> int:
    """Raise this process's open-file limit (its workers inherit it) to the most it may: a connection is an
    open file, and the usual soft limit of 1024 would cap a server at about a thousand. The new limit.
    (granian 2.8 raises it too, when imported; done here all the same, as the connection limit is sized
    from it.)"""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = hard if hard != resource.RLIM_INFINITY else _system_open_file_max()
    if soft != resource.RLIM_INFINITY and soft < ceiling:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
        except (ValueError, OSError):
            return soft
        return ceiling
    return soft if soft != resource.RLIM_INFINITY else ceiling


def _system_open_file_max() -> int:
    try:
        return int(Path("/proc/sys/fs/nr_open").read_text())
    except (OSError, ValueError):
        return 1 << 20


def connections_per_worker(open_files: int, settings: Settings) -> int:
    """How many connections a worker takes at once: as many as its open files allow. Beyond, new ones wait
    in the kernel's queue; a worker out of files would instead fail to accept them, over and over."""
    return max(64, open_files - RESERVED_FILES - settings.db_pool_size)


def run(settings: Settings) -> None:
    """Serve until SIGTERM or Ctrl-C."""
    # Workers are separate processes: they get the resolved settings, all of them, through the environment,
    # with one session key for all (else a sign-in would hold on one worker only).
    settings = replace(settings, session_secret=settings.session_secret or secrets.token_urlsafe(32))
    os.environ.update(settings.worker_environ())
    # Workers check that this process is still their parent, and end when it is gone (api.app).
    os.environ[SERVER_PID_ENV] = str(os.getpid())
    # Fresh interpreters, not forks: a worker must import prometheus-client after the metrics directory
    # below is set (it picks its storage at import), and must not inherit this process's threads.
    multiprocessing.set_start_method("spawn", force=True)
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.log import LogLevels
    from granian.server import Server

    open_files = raise_open_file_limit()
    connections = connections_per_worker(open_files, settings)

    with contextlib.ExitStack() as stack:
        if settings.workers > 1 and not os.environ.get(metrics.MULTIPROCESS_ENV):
            # Workers write their counters to files here; /metrics, on any worker, sums them all.
            os.environ[metrics.MULTIPROCESS_ENV] = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="promopool-metrics-")
            )
        os.environ.pop(ledger.BUDGETS_ENV, None)
        if settings.workers > 1:
            # The guessing budgets hold for the server, whichever worker answers (a private directory).
            budgets = (
                Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="promopool-"))) / "budgets.db"
            )
            ledger.create(budgets)
            os.environ[ledger.BUDGETS_ENV] = str(budgets)
        # granian rather than uvicorn: on the 2-core box, 1.35x the claims and 1.45x the trivial requests
        # per second (commit message of the switch). Its workers are processes even when there is one.
        server = Server(
            "promopool.api.app:app_from_env",
            address=settings.host,
            port=settings.port,
            interface=Interfaces.ASGI,
            workers=settings.workers,
            loop=Loops.uvloop,
            factory=True,
            websockets=False,
            # HTTP/1.1 only: in its auto mode (HTTP/2 without TLS too) the server waits for a new
            # connection's first bytes with no time limit, so idle connections could hold it forever.
            http=HTTPModes.http1,
            http1_settings=HTTP1Settings(header_read_timeout=round(settings.header_timeout_seconds * 1000)),
            backpressure=connections,
            log_level=LogLevels(settings.log_level),
            log_dictconfig=log_config(settings.log_level, access_log=settings.access_log),
            log_access=False,  # ours is promopool.access, with the request id
        )
        # (After Server(), which sets up the logging.)
        log.info("up to %d connections per worker (open-file limit %d)", connections, open_files)
        for warning in warnings(settings):
            log.warning(warning)
        server.serve()

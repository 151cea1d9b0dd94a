"""The server process killed alone (SIGKILL, the OOM killer): its workers notice and stop instead of
serving on, unsupervised, on the port; a restarted server would otherwise share it with them."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.reliability.conftest import Tally
from tests.reliability.servers import Server, running

pytestmark = [pytest.mark.reliability]

# The workers look for their server every 0.5 s and stop gracefully; generous for a loaded machine.
STOP_WITHIN_SECONDS = 15.0


def test_workers_stop_when_their_server_dies(fresh_url: str, tmp_path: Path, tally: Tally) -> None:
    server = Server(fresh_url, tmp_path / "server.log")
    with server:
        server.start()
        assert len(server.workers()) == 1  # --workers 1: granian serves from one child process
        children = server.children()
        assert server.process is not None
        server.process.send_signal(signal.SIGKILL)  # the server only, not its process group
        server.process.wait(timeout=30)
        tally.add("orphan (" + fresh_url.split(":")[0] + "): SIGKILL of the server process alone")
        deadline = time.monotonic() + STOP_WITHIN_SECONDS
        while any(running(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(running(pid) for pid in children), server.log()[-3000:]
        with pytest.raises(httpx.TransportError):
            httpx.get(server.url + "/health", timeout=2)
        assert "this worker stops" in server.log()

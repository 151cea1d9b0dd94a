"""The port is ours alone, or `promopool serve` does not start.

granian's workers each open their listening socket with SO_REUSEPORT, which lets any process of the same
user listen on the same port too: a second server on a busy port would start without a word and take a
share of the connections (of another database, perhaps). So before anything else `serve` binds the
address itself, without SO_REUSEPORT: that fails while anything listens there, and the error names the
port and, from Linux's /proc, the process that holds it.

Then it keeps a bound socket until it stops (the *guard*: SO_REUSEPORT, which its own workers share, but
without SO_REUSEADDR, which another server's check would need), so that a second server started in the
second or two before the workers listen is refused as well. The guard never listens: it takes no
connections.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from pathlib import Path

PROC = Path("/proc")


class PortUnavailable(Exception):
    """The server cannot listen where it is asked to; the message says where and why, in one line."""


def hold(host: str, port: int) -> socket.socket | None:
    """Check that nothing listens on ``host:port`` and return the guard (None where the system cannot make
    one); raise PortUnavailable otherwise."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except OSError as exc:  # a host name that does not resolve
        raise PortUnavailable(_why(host, port, exc)) from None
    with socket.socket(family, kind, proto) as check:
        # SO_REUSEADDR: the connections of a previous run waiting out TIME_WAIT do not count as in use.
        check.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            check.bind(address)
        except OSError as exc:
            raise PortUnavailable(_why(host, port, exc)) from None
    if not hasattr(socket, "SO_REUSEPORT"):
        return None  # granian then shares one socket between its workers: a second bind fails by itself
    guard = socket.socket(family, kind, proto)
    try:
        guard.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        guard.bind(address)
    except OSError:  # e.g. a previous program's connections in TIME_WAIT, without SO_REUSEPORT: no guard
        guard.close()
        return None
    return guard


def _why(host: str, port: int, error: OSError) -> str:
    where = f"{host}:{port}"
    if error.errno == errno.EADDRINUSE:
        holder = holder_of(port)
        by = f" by {holder}" if holder else ""
        return f"{where} is already in use{by}: stop it, or choose another port (--port, PROMOPOOL_PORT)"
    if error.errno == errno.EACCES:
        return f"not allowed to listen on {where} (ports below 1024 need privileges): choose another port"
    return f"cannot listen on {where}: {error.strerror or error}"


def holder_of(port: int) -> str | None:
    """'pid N (command line)' of a process listening on ``port``, as far as /proc shows it (Linux, and
    processes this user may inspect); a multiprocessing worker is named by its parent, the server."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    sockets = {f"socket:[{inode}]" for inode in inodes}
    for pid in _pids():
        if sockets & _links(pid):
            command = _command(pid)
            if "multiprocessing.spawn" in command:
                parent = _parent(pid)
                if parent is not None:
                    pid, command = parent, _command(parent)
            if len(command) > 120:
                command = command[:117] + "..."
            return f"pid {pid} ({command})" if command else f"pid {pid}"
    return None


def _listening_inodes(port: int) -> set[str]:
    found = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                found.add(inode)
    return found


def _links(pid: int) -> set[str]:
    """What the process's file descriptors point to; those it closes meanwhile, and processes that are not
    ours to see, are left out."""
    found: set[str] = set()
    try:
        descriptors = list((PROC / str(pid) / "fd").iterdir())
    except OSError:
        return found
    for fd in descriptors:
        with contextlib.suppress(OSError):
            found.add(str(fd.readlink()))
    return found


def _pids() -> list[int]:
    try:
        return sorted(int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit())
    except OSError:
        return []


def _command(pid: int) -> str:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ""
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)


def _parent(pid: int) -> int | None:
    try:
        return int((PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None

"""HTTP load with wrk (C, so the client is not the bottleneck), installed on first use.

Both Lua scripts end with a ``done`` that prints the run's figures as one ``BENCH {json}`` line, so nothing
depends on wrk's human-readable output. The claim script also has every thread append the code of each
200 response to its own file, for the duplicate check.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from _common import BenchFailure
from _procs import Processes, ensure_tool

THREADS = 2  # one per core of the 2-core box; the servers share the same cores

# The figures of a run, printed by every script below.
DONE_LUA = r"""
function done(summary, latency, requests)
  local ok = 0
  for _, t in ipairs(threads) do ok = ok + (t:get("ok") or 0) end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "ok": %d, "connect": %d, "read": %d, "write": %d,'
    .. ' "status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d,'
    .. ' "mean_us": %.1f}\n',
    summary.requests, summary.duration, ok, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""

SETUP_LUA = r"""
threads = {}
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end
"""

# Plain GETs (wrk's fast path: the request is formatted once); only the figures are added.
GET_LUA = SETUP_LUA + DONE_LUA

# POST /claim with the API key. args: the directory for the code files, the API key.
CLAIM_LUA = (
    SETUP_LUA
    + r"""
function init(args)
  wrk.method = "POST"
  wrk.body = ""  -- sends Content-Length: 0
  wrk.headers["Authorization"] = "Bearer " .. args[2]
  out = assert(io.open(args[1] .. "/codes-" .. id .. ".txt", "w"))
  -- Line-buffered: wrk never closes a thread's Lua state, so a buffered tail would be lost at exit.
  out:setvbuf("line")
  ok = 0
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
    out:write(body:match('"code":"(.-)"') or ("!unparsed " .. body), "\n")
  end
end
"""
    + DONE_LUA
)


@dataclass(slots=True)
class WrkStats:
    url: str
    connections: int
    threads: int
    seconds: float
    requests: int
    ok: int  # 200 responses (claim script only; 0 for GET_LUA)
    non_2xx: int
    socket_errors: dict[str, int]
    requests_per_s: float
    ok_per_s: float
    latency_p50_ms: float
    latency_p90_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    latency_mean_ms: float


def ensure_wrk(processes: Processes) -> str:
    return ensure_tool(processes, "wrk", "wrk")


def run_wrk(
    processes: Processes,
    name: str,
    url: str,
    *,
    script: Path,
    script_args: list[str] | None = None,
    seconds: float,
    connections: int,
) -> WrkStats:
    command = [
        ensure_wrk(processes),
        f"-t{THREADS}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        # Long enough that a slow claim under contention is measured, not dropped as a timeout.
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    if script_args:
        command += ["--", *script_args]
    child = processes.run(name, command, timeout=seconds + 60)
    stdout = child.stdout.read_text(encoding="utf-8", errors="replace")
    line = next((ln for ln in stdout.splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        raise BenchFailure(f"{name}: no BENCH line in wrk's output:\n{child.output()}")
    raw = json.loads(line.removeprefix("BENCH "))
    elapsed = raw["duration_us"] / 1e6
    return WrkStats(
        url=url,
        connections=connections,
        threads=THREADS,
        seconds=round(elapsed, 3),
        requests=raw["requests"],
        ok=raw["ok"],
        non_2xx=raw["status"],
        socket_errors={key: raw[key] for key in ("connect", "read", "write", "timeout")},
        requests_per_s=round(raw["requests"] / elapsed, 1),
        ok_per_s=round(raw["ok"] / elapsed, 1),
        latency_p50_ms=round(raw["p50_us"] / 1000, 2),
        latency_p90_ms=round(raw["p90_us"] / 1000, 2),
        latency_p99_ms=round(raw["p99_us"] / 1000, 2),
        latency_max_ms=round(raw["max_us"] / 1000, 2),
        latency_mean_ms=round(raw["mean_us"] / 1000, 2),
    )


def write_scripts(directory: Path) -> tuple[Path, Path]:
    """(GET script, claim script) written into ``directory``."""
    get_script, claim_script = directory / "get.lua", directory / "claim.lua"
    get_script.write_text(GET_LUA, encoding="utf-8")
    claim_script.write_text(CLAIM_LUA, encoding="utf-8")
    return get_script, claim_script


def claimed_codes(directory: Path) -> list[str]:
    """Every code the claim script recorded in ``directory``, in no particular order."""
    codes: list[str] = []
    for path in sorted(directory.glob("codes-*.txt")):
        codes += path.read_text(encoding="utf-8").splitlines()
    bad = [line for line in codes if line.startswith("!unparsed ")]
    if bad:
        raise BenchFailure(f"{len(bad)} 200 response(s) without a code, e.g. {bad[0]!r}")
    return codes


def wrk_version() -> str:
    done = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    return (done.stdout or done.stderr).splitlines()[0].strip() if (done.stdout or done.stderr) else ""

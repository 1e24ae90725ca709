"""Drive wrk (Debian's package) and read its --latency report."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# wrk's own socket timeout: far above any answer measured here, so a slow answer
# counts in the percentiles instead of as an error.
WRK_TIMEOUT = "10s"
# Headroom on top of the run's duration before a wrk process is considered stuck.
WRK_EXIT_MARGIN_SECONDS = 30

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_LATENCY_LINE = re.compile(r"^\s*(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", re.MULTILINE)
_TOTAL_LINE = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m)")
_RPS_LINE = re.compile(r"Requests/sec:\s+([\d.]+)")
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


class WrkMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    socket_errors: dict[str, int]
    non_2xx_3xx: int


def wrk_path() -> str:
    """The wrk binary; installed from Debian's packages when missing and we may."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=False)  # noqa: S607
        found = shutil.which("wrk")
        if found:
            return found
    raise WrkMissing("wrk is not installed: run `apt-get install -y wrk` (Debian's package).")


def wrk_version() -> str:
    done = subprocess.run(  # noqa: S603
        [wrk_path(), "--version"], capture_output=True, text=True, check=False
    )
    return (done.stdout or done.stderr).splitlines()[0].split(" Copyright")[0].strip()


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def parse(output: str) -> WrkResult:
    latencies = {pct: _ms(value, unit) for pct, value, unit in _LATENCY_LINE.findall(output)}
    total = _TOTAL_LINE.search(output)
    rps = _RPS_LINE.search(output)
    if total is None or rps is None or set(latencies) != {"50", "75", "90", "99"}:
        raise ValueError(f"unexpected wrk output:\n{output}")
    errors = _SOCKET_ERRORS.search(output)
    non_2xx = _NON_2XX.search(output)
    return WrkResult(
        requests=int(total.group(1)),
        seconds=_ms(total.group(2), total.group(3)) / 1000,
        rps=float(rps.group(1)),
        p50_ms=latencies["50"],
        p75_ms=latencies["75"],
        p90_ms=latencies["90"],
        p99_ms=latencies["99"],
        socket_errors=(
            dict(
                zip(("connect", "read", "write", "timeout"), map(int, errors.groups()), strict=True)
            )
            if errors
            else {}
        ),
        non_2xx_3xx=int(non_2xx.group(1)) if non_2xx else 0,
    )


def run(
    url: str,
    *,
    connections: int,
    seconds: float,
    headers: dict[str, str] | None = None,
    script: Path | None = None,
) -> WrkResult:
    """One closed-loop wrk run: each connection sends its next request on an answer."""
    threads = max(1, min(connections, os.cpu_count() or 1))
    command = [
        wrk_path(),
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={seconds:g}s",
        f"--timeout={WRK_TIMEOUT}",
        "--latency",
    ]
    for name, value in (headers or {}).items():
        command += ["--header", f"{name}: {value}"]
    if script is not None:
        command += ["--script", str(script)]
    command.append(url)
    done = subprocess.run(  # noqa: S603
        command,
        capture_output=True,
        text=True,
        check=False,
        timeout=seconds + WRK_EXIT_MARGIN_SECONDS,
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr}{done.stdout}")
    return parse(done.stdout)


def cycling_script(paths: list[str], *, threads: int, directory: Path) -> Path:
    """A wrk Lua script sending each request to the next path of `paths`.

    Each wrk thread starts at its own offset, so concurrent requests ask for
    different leads (no two share a single-flight lock).
    """
    quoted = ",\n".join(f'  "{p}"' for p in paths)
    step = max(1, len(paths) // max(threads, 1))
    script = directory / "cycle.lua"
    script.write_text(
        f"""local paths = {{
{quoted}
}}
local created = 0
function setup(thread)
  thread:set("offset", created * {step})
  created = created + 1
end
local i = 0
function request()
  i = i + 1
  return wrk.format(nil, paths[((offset or 0) + i) % #paths + 1])
end
"""
    )
    return script

"""Helpers for the reliability tests: the gpusim command as a real process, with timeouts
so that a hang fails the test instead of stalling CI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from helpers import SMALL

PROCESS_SECONDS = 120
"""Most a gpusim process may take in these tests before it counts as hung [s]."""


def small_file(folder: Path, name: str = "small.yaml", **changes: object) -> Path:
    """The small scenario (helpers.SMALL) as a YAML file, top-level keys changed."""
    path = folder / name
    path.write_text(yaml.safe_dump({**SMALL, **changes}, sort_keys=False))
    return path


def gpusim(*args: str, timeout: float = PROCESS_SECONDS) -> subprocess.CompletedProcess:
    """Run `python -m gpusim.cli ARGS` to completion (TimeoutExpired if it hangs)."""
    return subprocess.run([sys.executable, "-m", "gpusim.cli", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def start(*args: str, code: str | None = None) -> subprocess.Popen:
    """Start `gpusim ARGS` (or a Python snippet `code` with ARGS in sys.argv[1:])."""
    command = ["-c", code, *args] if code else ["-m", "gpusim.cli", *args]
    return subprocess.Popen([sys.executable, *command], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(predicate, what: str, seconds: float = PROCESS_SECONDS, proc=None) -> None:
    """Poll `predicate()` every 20 ms until true; AssertionError after `seconds`, or at
    once if `proc` ends first."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended (rc {proc.returncode}) before {what}: "
                                 f"{proc.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.02)


def holder_pid(lock: Path) -> int | None:
    """The pid a store's lock file records, or None."""
    try:
        return int(json.loads(lock.read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


def kill(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Send `sig`; for SIGKILL, also reap the process (bounded wait)."""
    os.kill(proc.pid, sig)
    if sig == signal.SIGKILL:
        proc.wait(timeout=30)


KILL_AT = """
import os, signal, sys
import gpusim.{module} as target
real = target.{name}
calls = [0]
def dying(*args, **kwargs):
    calls[0] += 1
    if calls[0] == {call} and {before}:
        os.kill(os.getpid(), signal.SIGKILL)
    result = real(*args, **kwargs)
    if calls[0] == {call}:
        os.kill(os.getpid(), signal.SIGKILL)
    return result
setattr(target, "{name}", dying)
from gpusim.cli import main
sys.exit(main(sys.argv[1:]))
"""
"""A driver that runs the gpusim command but SIGKILLs itself at the `call`-th call of
gpusim.MODULE.NAME: before it (`before=True`) or right after it returns."""


def killed_at(module: str, name: str, call: int, before: bool, *args: str) -> int:
    """Run gpusim ARGS, killed by SIGKILL at that call (see KILL_AT); its return code."""
    code = KILL_AT.format(module=module, name=name, call=call, before=before)
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                          text=True, timeout=PROCESS_SECONDS, check=False)
    return proc.returncode

"""Real `smsbot worker` processes for tests: each in its own process group with its output in a log, and
all stopped together after the test; a worker that does not stop fails the test with its threads' stacks."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STOP_SECONDS = 10


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    """`smsbot worker` with `env`, its stdout and stderr in `log`, its own process group (its children go
    with it)."""
    with open(log, "wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "wsgi", "worker"],
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_workers(processes: list[subprocess.Popen], logs: list[Path]) -> None:
    """SIGTERM every worker at once and wait up to STOP_SECONDS; a worker still running then writes its
    threads' stacks to its log (SIGUSR1, `smsbot worker`) and the test fails with them. All are killed."""
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline, stuck = time.monotonic() + STOP_SECONDS, []
    for process, log in zip(processes, logs, strict=True):
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            stuck.append(log)
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGUSR1)
    if stuck:
        time.sleep(1)  # the stacks reach the log
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    if stuck:
        tails = "\n\n".join(f"{log}:\n{log.read_text(errors='replace')[-8000:]}" for log in stuck)
        pytest.fail(f"{len(stuck)} worker(s) did not stop within {STOP_SECONDS} s of SIGTERM:\n{tails}", pytrace=False)

"""Fault injection for the crash tests (tests/test_crash.py, docs/reliability.md).

`point(name)` kills the process on the spot, as a SIGKILL or a power cut would, when the
environment variable CONVOY_FAULT names that point; otherwise it costs one lookup in
os.environ. `os._exit` runs no cleanup (no `finally`, no lock release, no flush), which is
exactly what a crash leaves behind.
"""

from __future__ import annotations

import os

CRASH_CODE = 137  # what a shell reports for a process killed by SIGKILL


def point(name: str) -> None:
    """Die here when CONVOY_FAULT=<name> (the crash tests name one point per run)."""
    if os.environ.get("CONVOY_FAULT") == name:
        os._exit(CRASH_CODE)

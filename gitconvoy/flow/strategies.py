"""Which strategy a convoy's name means here, and the coordinator that runs a command.

A convoy names its strategy in the state, which anyone who can push the state ref writes, so
the name is only a key: it picks a built-in (gitconvoy.plan.strategies) or a strategy this
machine installed under the entry-point group `gitconvoy.strategies`. A name that means
nothing here is not an error that stops the feeder: `strategy_for` raises StrategyFailed,
and the feeder falls back to `blocks` and records why.

The coordinator's command, like every command, comes only from the local user's settings
(git config `convoy.coordinator`, or `[coordinator] command` in the trusted
`.convoy/config.toml`; gitconvoy.git.localconfig), never from the state. It runs like a
dispatch command: from the main worktree's top level, through /bin/sh, with a timeout; the
JSON document on stdin, the answer on stdout.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterable
from importlib import metadata

from gitconvoy.errors import ConvoyError
from gitconvoy.git import gitcli, localconfig
from gitconvoy.plan import strategies
from gitconvoy.plan.strategies import BUILT_IN, FeederStrategy, StrategyFailed, Turn
from gitconvoy.state.store import Store

GROUP = "gitconvoy.strategies"
DEFAULT_TIMEOUT = 60.0
SET_IT = ("git config convoy.coordinator '<command>' (or [coordinator] command in "
          ".convoy/config.toml on the trusted branch)")


def installed(found: Iterable[metadata.EntryPoint] | None = None) -> dict[str, metadata.EntryPoint]:
    """Third-party strategies by name (the first of a name wins; built-in names are never
    taken over)."""
    points = metadata.entry_points(group=GROUP) if found is None else found
    out: dict[str, metadata.EntryPoint] = {}
    for point in points:
        if point.name not in BUILT_IN:
            out.setdefault(point.name, point)
    return out


def load_plugin(name: str, found: Iterable[metadata.EntryPoint] | None = None
                ) -> FeederStrategy:
    """The installed strategy `name`: its entry point names a class (made with no
    arguments) or an object with `choose(turn)`."""
    point = installed(found).get(name)
    if point is None:
        raise StrategyFailed(f"strategy {name!r} is not installed here (no entry point of "
                             f"that name in the group {GROUP})")
    try:
        loaded = point.load()
        strategy = loaded() if isinstance(loaded, type) else loaded
    except Exception as exc:  # foreign code: any failure is a fallback, not a crash
        raise StrategyFailed(f"strategy {name} ({point.value}) could not be loaded: "
                             f"{type(exc).__name__}: {exc}") from None
    if not callable(getattr(strategy, "choose", None)):
        raise StrategyFailed(f"strategy {name} ({point.value}) has no choose(turn) method")
    return strategy


def strategy_for(store: Store, name: str) -> FeederStrategy:
    """What the convoy's strategy `name` means on this machine; StrategyFailed if nothing."""
    if name == strategies.BLOCKS:
        return strategies.Blocks()
    if name == strategies.SERIAL:
        return strategies.Serial()
    if name == strategies.COORDINATOR:
        return Coordinator(store)
    return load_plugin(name)


def check_name(name: str) -> str:
    """A strategy name a user typed (`launch --strategy`): known here, or a ConvoyError."""
    if name in BUILT_IN or name in installed():
        return name
    raise ConvoyError(f"unknown strategy {name!r}: use {', '.join(BUILT_IN)} or one "
                      f"installed under the entry-point group {GROUP}")


def unknown_here(name: str) -> str | None:
    """Why `name` means nothing on this machine (for `status`), or None."""
    if name in BUILT_IN or name in installed():
        return None
    return f"not installed here (entry-point group {GROUP})"


def coordinator_command(store: Store) -> str | None:
    return localconfig.coordinator_found(store).value


def choose(strategy: FeederStrategy, turn: Turn, name: str) -> list[str]:
    """The strategy's answer, checked against the turn; StrategyFailed when it raised or
    answered what cannot be dispatched."""
    try:
        answer = strategy.choose(turn)
    except StrategyFailed:
        raise
    except Exception as exc:  # a third party's bug must not stop the feeder
        raise StrategyFailed(f"strategy {name} failed: {type(exc).__name__}: {exc}") from None
    return strategies.checked(answer, turn, f"strategy {name}")


# --- the coordinator --------------------------------------------------------------------


class Coordinator:
    """Asks the configured command which ready beads to dispatch (docs/convoys.md)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def choose(self, turn: Turn) -> list[str]:
        if not turn.ready or turn.capacity <= 0:
            return []
        try:
            command = localconfig.coordinator_found(self.store).value
            seconds = timeout(self.store)
        except ConvoyError as exc:  # e.g. the trusted config file does not parse
            raise StrategyFailed(exc.message) from None
        if not command:
            raise StrategyFailed(f"no coordinator command is set: {SET_IT}")
        document = json.dumps(strategies.coordinator_input(turn), sort_keys=True)
        out = run_coordinator(self.store, command, document, turn.convoy.id, seconds)
        return strategies.read_answer(out, turn)


def timeout(store: Store) -> float:
    """`convoy.coordinator.timeout` in seconds (default 60)."""
    raw = localconfig.coordinator_found(store, "timeout").value
    try:
        seconds = float(raw) if raw else DEFAULT_TIMEOUT
    except ValueError:
        raise StrategyFailed(f"convoy.coordinator.timeout {raw!r} is not a number of "
                             "seconds") from None
    return seconds if seconds > 0 else DEFAULT_TIMEOUT


def run_coordinator(store: Store, command: str, document: str, convoy_id: str,
                    seconds: float) -> str:
    """Run the command with `document` on stdin; its stdout, or StrategyFailed (could not
    start, not found, timed out, exited non-zero). Its own process group, killed whole at
    the timeout, so a child it left behind cannot hold the answer's pipe open."""
    env = gitcli.clean_env(other_repo=True, extra={"CONVOY_CONVOY": convoy_id})
    env.pop("LC_ALL", None)
    try:
        proc = subprocess.Popen(command, shell=True, cwd=localconfig.command_dir(store),
                                env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
    except OSError as exc:
        raise StrategyFailed(f"the coordinator could not start: {exc.strerror}") from None
    try:
        out, err = proc.communicate(document, timeout=seconds)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise StrategyFailed(f"the coordinator did not answer within {seconds:g}s "
                             "(convoy.coordinator.timeout)") from None
    except BaseException:
        _kill_group(proc)
        raise
    _kill_group(proc)
    if proc.returncode == 127:
        raise StrategyFailed(f"the coordinator command was not found: {command[:80]}")
    if proc.returncode != 0:
        last = (err.strip() or out.strip()).splitlines()[-1:] or [""]
        said = f": {last[0][:120]}" if last[0] else ""
        raise StrategyFailed(f"the coordinator exited {proc.returncode}{said}")
    return out


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.communicate(timeout=5)

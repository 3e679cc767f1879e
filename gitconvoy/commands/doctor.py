"""`git convoy doctor`: is everything that makes the convoy move by itself in place?

Checks, each one line (ok / warn / fail) that says what to do next: hooks installed and
current, merge driver registered and routed, state ref present and every file valid, the
remote's copy of the state in sync (as of the last fetch, no network), recent hook errors,
dispatch commands that hooks started detached and that failed, check worktrees left by a
killed refinery, and the configuration (rigs, their targets and dispatch commands, the
watch list).
Exit 1 when any check fails; warnings alone exit 0.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import click

from gitconvoy import hookrun
from gitconvoy.commands.io import json_option, open_store, print_json, say
from gitconvoy.errors import ConvoyError
from gitconvoy.git import hookinstall, localconfig, revs, settings, watch
from gitconvoy.git.gitcli import run_git
from gitconvoy.land import targetchecks
from gitconvoy.state.model import Rig
from gitconvoy.state.snapshot import Snapshot
from gitconvoy.state.store import Store


@dataclass
class Check:
    name: str
    level: str  # ok | warn | fail
    message: str


def check_hooks(store: Store) -> Check:
    found = hookinstall.status(store)
    states = {h.name: h.state for h in found.hooks}
    if all(s == "current" for s in states.values()):
        return Check("hooks", "ok", f"{len(states)} hooks installed and current in "
                     f"{found.directory}")
    if not any(h.installed or h.state == "disabled" for h in found.hooks):
        return Check("hooks", "warn", f"no hooks installed in {found.directory}: the feeder "
                     "runs only on 'git convoy feed'; run 'git convoy hooks install'")
    bad = ", ".join(f"{n} {s}" for n, s in states.items() if s != "current")
    return Check("hooks", "fail", f"hooks in {found.directory} need attention ({bad}): "
                 "run 'git convoy hooks install'")


def check_merge_driver(store: Store) -> Check:
    driver = settings.merge_driver_registered(store)
    if driver is None:
        return Check("merge driver", "warn", "merge driver 'convoy' not registered: git "
                     "merges of the state branch give conflict markers; run "
                     "'git convoy hooks install'")
    if driver != settings.MERGE_DRIVER:
        return Check("merge driver", "warn", f"merge.convoy.driver is {driver!r}, expected "
                     f"{settings.MERGE_DRIVER!r}: run 'git convoy hooks install'")
    if store.exists():
        res = run_git(["cat-file", "-p", f"{store.state_commit()}:.gitattributes"],
                      git_dir=store.common_dir, check=False)
        if res.code != 0 or "merge=convoy" not in res.out:
            return Check("merge driver", "warn", f"registered, but {store.ref} has no "
                         ".gitattributes routing *.yaml to merge=convoy")
    return Check("merge driver", "ok", f"registered: {driver}")


def check_state(store: Store) -> Check:
    if not store.exists():
        return Check("state", "fail", f"{store.ref} does not exist: run 'git convoy init' "
                     "(or 'git convoy sync' to take the remote's)")
    snap = store.snapshot()
    if snap.errors:
        names = "; ".join(e.message for e in snap.errors[:3])
        more = f" (and {len(snap.errors) - 3} more)" if len(snap.errors) > 3 else ""
        return Check("state", "fail", f"{len(snap.errors)} broken state file(s): {names}{more}")
    lock = os.path.join(store.common_dir, *store.ref.split("/")) + ".lock"
    if os.path.exists(lock):  # left by a process killed while writing (docs/reliability.md)
        return Check("state", "warn", f"{lock} exists: a write to {store.ref} was interrupted "
                     "or is running; if no git is running, delete that file")
    return Check("state", "ok", f"{store.ref} at {(snap.commit or '')[:10]}: "
                 f"{len(snap.beads)} beads, {len(snap.convoys)} convoys, all files valid")


def _counts(store: Store, local: str, remote: str) -> tuple[int, int]:
    res = run_git(["rev-list", "--left-right", "--count", f"{local}...{remote}"],
                  git_dir=store.common_dir)
    ahead, behind = res.out.split()
    return int(ahead), int(behind)


def check_remote(store: Store) -> Check:
    remote = revs.default_remote(store)
    if store.config_get(f"remote.{remote}.url") is None:
        return Check("remote", "ok", f"no remote '{remote}': the state is local to this clone")
    candidates = [revs.remote_tracking_ref(store, remote), f"refs/convoy/remote/{remote}"]
    tips = [(ref, store.head_of(ref)) for ref in candidates]
    known = [(ref, tip) for ref, tip in tips if tip]
    local = store.state_commit()
    if not known:
        return Check("remote", "warn", f"{remote} has no state branch as of the last fetch: "
                     "run 'git convoy sync' to publish it")
    if local is None:
        return Check("remote", "warn", f"{remote} has a state branch and this clone has none: "
                     "run 'git convoy sync'")
    ref, tip = known[0]
    ahead, behind = _counts(store, local, tip or "")
    if ahead == 0 and behind == 0:
        return Check("remote", "ok", f"in sync with {ref} (as of the last fetch)")
    if behind == 0:
        return Check("remote", "warn", f"{ahead} state commit(s) not on {remote} yet: run "
                     "'git convoy sync'")
    if ahead == 0:
        return Check("remote", "warn", f"{behind} state commit(s) on {remote} not here yet: "
                     "run 'git convoy sync'")
    return Check("remote", "warn", f"diverged from {ref} ({ahead} here, {behind} there): run "
                 "'git convoy sync'")


def check_errors(store: Store) -> Check:
    count, last = hookrun.recent_errors(store)
    if not count:
        return Check("hook errors", "ok", "none recorded")
    path = hookrun.errors_log(store)
    return Check("hook errors", "warn", f"{count} recorded in {path}, last: {last[-1]} "
                 "('git convoy doctor --clear-errors' empties the log)")


def check_dispatches(store: Store) -> Check:
    """Dispatch commands that hooks started detached (gitconvoy.flow.detached) and that
    failed, for beads still live: the bead, the exit status, the log."""
    from gitconvoy.flow import detached

    runs = detached.runs(store)
    beads = store.snapshot().beads if store.exists() else {}
    bad = [(b, r.problem()) for b, r in sorted(runs.items())
           if r.problem() and not (b in beads and beads[b].done)]
    running = sum(1 for r in runs.values() if r.state == "running")
    if not bad:
        return Check("dispatch", "ok", f"no detached dispatch command failed ({running} "
                     "running)")
    items = "; ".join(f"{b}: {p}" for b, p in bad)
    return Check("dispatch", "warn", f"{len(bad)} detached dispatch command(s) failed: "
                 f"{items} (the next feed hands a hooked bead back; 'git convoy doctor "
                 "--clear-errors' forgets these)")


def check_worktrees(store: Store) -> list[Check]:
    """Temporary check worktrees whose refinery is gone (killed during a check)."""
    from gitconvoy.land import checks

    return [Check("check worktree", "warn", f"{s.line()}: the next 'git convoy refinery "
                  "run' prunes it") for s in checks.stale_worktrees(store)]


def _command(found: localconfig.Found, what: str, default: str) -> str:
    if not found.value:
        return default
    return f"{what} {found.value!r} from {found.source}"


def check_config_ref(store: Store) -> Check:
    """Which branch's `.convoy/config.toml` (and `.convoy/formulas/`) this clone trusts."""
    try:
        ref = localconfig.config_ref(store)
    except ConvoyError as exc:
        return Check("config", "fail", exc.message)
    if ref.branch is None:
        return Check("config", "ok", f"trusted config: none ({ref.why}); commands come from "
                     "git config only")
    return Check("config", "ok", f"trusted config: {localconfig.CONFIG_FILE} on {ref.branch} "
                 f"({ref.why})")


def check_rig(store: Store, rig: Rig) -> list[Check]:
    out: list[Check] = []
    remote = revs.default_remote(store)
    owned = localconfig.state_owned(store, rig.target)
    if owned:
        out.append(Check("config", "warn", f"rig {rig.name}: target {owned}: nothing is "
                         "dispatched from or lands on it; fix the rig with 'git convoy rig "
                         "update'"))
    elif not (store.head_of(f"refs/heads/{rig.target}")
              or store.head_of(f"refs/remotes/{remote}/{rig.target}")):
        out.append(Check("config", "warn", f"rig {rig.name}: target branch {rig.target!r} "
                         "does not exist here"))
    try:
        dispatch = localconfig.rig_found(store, rig.name, "dispatch")
    except ConvoyError as exc:
        return out + [Check("config", "fail", f"rig {rig.name}: {exc.message}")]
    how = _command(dispatch, "dispatch", "default dispatch (branch only)")
    parked = ", parked" if rig.parked else ""
    out.append(Check("config", "ok", f"rig {rig.name}: target {rig.target}, capacity "
                     f"{rig.capacity}{parked}, {how}"))
    return out


def check_targets(store: Store, rigs: dict[str, Rig]) -> list[Check]:
    """What guards each target: its own check, the checks of its rigs, or every check."""
    names = {r.target for r in rigs.values() if not localconfig.state_owned(store, r.target)}
    names |= localconfig.target_check_branches(store)
    out = []
    for target in sorted(names):
        try:
            plan = targetchecks.checks_for(store, rigs, target, None)
        except ConvoyError as exc:
            out.append(Check("config", "fail", f"target {target}: {exc.message}"))
            continue
        level = "warn" if plan.why.startswith("no check names") else "ok"
        out.append(Check("config", level, f"target {target}: {plan.describe()}"))
    return out


def check_coordinator(store: Store, snap: Snapshot) -> list[Check]:
    """The coordinator command and where it is set, when a convoy needs it or one is set."""
    users = sorted(c.id for c in snap.convoys.values()
                   if c.strategy == "coordinator" and c.status != "closed")
    try:
        found = localconfig.coordinator_found(store)
    except ConvoyError as exc:
        return [Check("config", "fail", f"coordinator: {exc.message}")]
    if found.value:
        return [Check("config", "ok", f"coordinator: {_command(found, 'command', '')}")]
    if users:
        return [Check("config", "warn", f"convoy {', '.join(users[:3])} uses the coordinator "
                      "strategy but no coordinator command is set, so it is fed as blocks: "
                      "git config convoy.coordinator '<command>'")]
    return []


def check_config(store: Store) -> list[Check]:
    out: list[Check] = []
    if not store.exists():
        return out
    snap = store.snapshot()
    out.append(check_config_ref(store))
    if out[-1].level == "fail":
        return out
    if not snap.config.rigs:
        out.append(Check("config", "warn", "no rigs: add one with 'git convoy rig add NAME "
                         "--target BRANCH' so beads can be dispatched"))
    for rig in sorted(snap.config.rigs.values(), key=lambda r: r.name):
        out += check_rig(store, rig)
    out += check_targets(store, snap.config.rigs)
    out += check_coordinator(store, snap)
    if os.path.exists(os.path.join(watch.convoy_dir(store), watch.WATCH_FILE)):
        wanted = watch.watch_patterns(store.ref, snap)
        if watch.read_watch(store) != wanted:
            out.append(Check("config", "warn", "the hooks' watch list is stale (it refreshes "
                             "on the next hook); 'git convoy hooks install' rewrites it now"))
    return out


def check_refinery(store: Store) -> Check:
    """The refinery's anomalies (gitconvoy.refinery.anomalies), each with its command."""
    from gitconvoy.land import refinery

    found = refinery.anomalies(store, store.snapshot())
    if not found:
        return Check("refinery", "ok", "no anomalies in the merge queue")
    items = "; ".join(f"{a['kind']} {a['mr'] or a['bead']} → {a['command']}" for a in found)
    return Check("refinery", "warn", f"{len(found)} anomal{'y' if len(found) == 1 else 'ies'}"
                 f": {items} (details: git convoy refinery status)")


def run_checks(store: Store) -> list[Check]:
    checks = [check_hooks(store), check_merge_driver(store), check_state(store)]
    if store.exists() and not store.snapshot().errors:
        checks.append(check_remote(store))
    checks.append(check_errors(store))
    checks += check_worktrees(store)
    if store.exists() and not store.snapshot().errors:
        checks.append(check_dispatches(store))
        checks += check_config(store)
        checks.append(check_refinery(store))
    return checks


@click.command()
@json_option
@click.option("--clear-errors", is_flag=True,
              help="Empty the hook errors log and forget failed detached dispatches first.")
def doctor(as_json: bool, clear_errors: bool) -> int:
    """Check hooks, merge driver, state ref, remote, hook errors and config (exit 1 on a
    failed check)."""
    store = open_store(adopt=False)
    if clear_errors:
        path = hookrun.errors_log(store)
        if path and os.path.exists(path):
            os.remove(path)
        from gitconvoy.flow import detached

        detached.forget_problems(store)
    checks = run_checks(store)
    failed = any(c.level == "fail" for c in checks)
    if as_json:
        print_json({"ok": not failed, "checks": [asdict(c) for c in checks]})
    else:
        for check in checks:
            say(f"{check.level:<5} {check.name}: {check.message}")
    return 1 if failed else 0

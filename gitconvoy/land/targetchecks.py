"""Which checks guard a landing on a target branch (DESIGN §3, SECURITY.md).

The state chooses the rig of every piece of work, so a check that followed the rig let any
state writer land on `main` around it: a new rig with no check, or the checked rig moved to
another target. Checks belong to targets. For a landing on branch T through rig R:

1. T's own check: `git config convoy.target.T.check` (and `.timeout`), or `check` under
   `[target."T"]` in `.convoy/config.toml` on the trusted branch. Set but empty: T lands
   unchecked, by the local user's explicit choice.
2. Else the rig checks that guard T (protected by default): R's check and that of every rig
   the state says targets T.
3. Else, when any rig check is configured at all (git config or the trusted file, whatever
   rigs the state lists), every one of them: renaming or moving rigs in the state cannot
   route work around a check (fail closed). Step 1 with an empty value opts a target out.
4. Else nothing runs: no check is configured anywhere.

Several checks all run, in a fixed order, identical commands once; the first that fails
rejects the landing. (Refusing them as ambiguous would block legitimate work on a target
that two checked rigs share; running all never lets less through.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gitconvoy.git import localconfig
from gitconvoy.land import checks
from gitconvoy.state.model import Rig
from gitconvoy.state.store import Store

REFINERY_KEY = "convoy.refinery"  # .check/.timeout: the check of landings without a rig


@dataclass(frozen=True)
class TargetCheck:
    command: str
    timeout: float
    source: str


@dataclass(frozen=True)
class CheckPlan:
    """The checks a landing on `target` runs, and the rule (1–4 above) that chose them."""

    target: str
    checks: tuple[TargetCheck, ...]
    why: str

    @property
    def timeout(self) -> float:
        return max((c.timeout for c in self.checks), default=checks.DEFAULT_TIMEOUT)

    def describe(self) -> str:
        if not self.checks:
            return self.why
        listed = "; ".join(f"{c.command!r} from {c.source}" for c in self.checks)
        return f"{self.why}: {listed}"


def _rig_check(store: Store, name: str, found: localconfig.Found) -> TargetCheck:
    timeout = checks.parse_timeout(localconfig.rig_found(store, name, "timeout").value)
    return TargetCheck(found.value or "", timeout, found.source)


def _refinery_check(store: Store) -> TargetCheck | None:
    command = store.config_get(f"{REFINERY_KEY}.check")
    if not command:
        return None
    return TargetCheck(command, checks.parse_timeout(store.config_get(f"{REFINERY_KEY}.timeout")),
                       f"{REFINERY_KEY}.check (local git config)")


def _unique(found: list[TargetCheck]) -> tuple[TargetCheck, ...]:
    seen: set[str] = set()
    out = []
    for check in found:
        if check.command not in seen:
            seen.add(check.command)
            out.append(check)
    return tuple(out)


def checks_for(store: Store, rigs: Mapping[str, Rig], target: str,
              rig: Rig | None) -> CheckPlan:
    """The checks for a landing on `target` through `rig` (as the state names them)."""
    own = localconfig.target_found(store, target, "check")
    if own.value is not None:
        if not own.value.strip():
            return CheckPlan(target, (), f"{target} lands unchecked ({own.source} is empty)")
        timeout = checks.parse_timeout(localconfig.target_found(store, target, "timeout").value)
        return CheckPlan(target, (TargetCheck(own.value, timeout, own.source),),
                     f"{target}'s own check")
    configured = localconfig.rig_checks(store)
    default = _refinery_check(store)
    names = sorted({r.name for r in rigs.values() if r.target == target}
                   | ({rig.name} if rig is not None else set()))
    guarding = [_rig_check(store, n, configured[n]) for n in names if n in configured]
    if rig is None and default is not None:
        guarding.append(default)
    if guarding:
        return CheckPlan(target, _unique(guarding), f"the checks of the rigs that land on {target}")
    everything = [_rig_check(store, n, f) for n, f in configured.items()]
    everything += [default] if default is not None else []
    if everything:
        return CheckPlan(target, _unique(everything),
                     f"no check names {target}, so every configured check runs (choose with "
                     f"git config convoy.target.{target}.check)")
    return CheckPlan(target, (), "no check configured")


def run(store: Store, plan: CheckPlan, candidate: str, *, label: str,
        env: dict[str, str]) -> checks.CheckResult:
    """Run every check of `plan` on `candidate`; the first failure is the result."""
    passed: list[checks.CheckResult] = []
    for check in plan.checks:
        result = checks.run_check(store, check.command, candidate, label=label,
                                  timeout=check.timeout, env=env)
        if not result.passed:
            if len(plan.checks) > 1:
                result.detail = f"{result.detail} [{check.source}]"
            return result
        passed.append(result)
    if len(passed) == 1:
        return passed[0]
    seconds = sum(r.seconds for r in passed)
    return checks.CheckResult(True, f"{len(passed)} checks passed in {seconds:.1f}s",
                              passed[-1].log if passed else None, seconds)


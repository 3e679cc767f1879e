"""Settings that decide what runs and what guards a target, read only from places the local
user controls (DESIGN §3, SECURITY.md).

Anyone who can push the state ref or a work branch writes what the state says, including the
names of branches (a rig's target, an epic's base). So a command is never looked up on a
branch the state names. It comes from exactly two places:

1. git config (`git config convoy.rig.app.dispatch ./start-worker.sh`; any scope the user
   owns: `-c`, the repository, global);
2. `.convoy/config.toml` committed on the ONE trusted branch, `git config convoy.configRef`
   (default: the repository's default branch, see `config_ref`), reviewed like code:

       [rig.app]
       dispatch = "./start-worker.sh"
       check = "pytest -q"
       [target.main]
       check = "make test"
       [review]
       command = "./reviewer.sh"

`lookup(store, git_key, *toml_path)` is the one way to read such a setting; a new command
key (notify, coordinator, …) calls it with its git key and its TOML path and gets the same
rule and a `source` that `doctor` can show.
"""

from __future__ import annotations

import os
import shlex
import tomllib
from dataclasses import dataclass
from typing import Any

import pygit2

from gitconvoy.errors import ConvoyError
from gitconvoy.git import revs
from gitconvoy.git.gitcli import main_worktree, run_git
from gitconvoy.state.model import Rig
from gitconvoy.state.store import Store

CONFIG_FILE = ".convoy/config.toml"
RIG_KEYS = ("dispatch", "check", "timeout", "worktree", "delete-branch", "formula")
WORK_TEMPLATE = "convoy/{id}"  # flow.dispatch.BRANCH_TEMPLATE (a lower layer cannot import it)
INTEGRATION_TEMPLATE = "integration/{epic}-{slug}"  # land.integration.DEFAULT_TEMPLATE


@dataclass(frozen=True)
class Found:
    """A setting's value (None when unset) and where it came from, for `doctor`."""

    value: str | None
    source: str = ""


@dataclass(frozen=True)
class ConfigRef:
    """The trusted branch (None: no such branch here) and why it is the one."""

    branch: str | None
    why: str


# --- which branches the state (or a worker) writes --------------------------------------


def state_branch(store: Store) -> str | None:
    return store.ref.removeprefix("refs/heads/") if store.ref.startswith("refs/heads/") \
        else None


def state_owned(store: Store, branch: str) -> str | None:
    """Why `branch` belongs to the state (the state branch or its folder), or None."""
    state = state_branch(store)
    if state is None:
        return None
    if branch == state:
        return f"{branch} is the state branch"
    folder = state.rpartition("/")[0]
    if folder and branch.startswith(folder + "/"):
        return f"{branch} is under {folder}/, the state branch's namespace"
    return None


def state_tips(store: Store) -> tuple[str, ...]:
    """The state branch's tips here and as last fetched: history that is never work."""
    refs = (store.ref, revs.remote_tracking_ref(store, revs.default_remote(store)))
    return tuple(dict.fromkeys(t for t in (store.head_of(r) for r in refs) if t))


def _prefix(template: str) -> str:
    return template.split("{", 1)[0]


def work_branch(store: Store, branch: str) -> str | None:
    """Why `branch` is a work branch (named like dispatched or integration branches)."""
    for key, default, kind in (("convoy.branchTemplate", WORK_TEMPLATE, "a work branch"),
                               ("convoy.integration.template", INTEGRATION_TEMPLATE,
                                "an integration branch")):
        prefix = _prefix(store.config_get(key) or default)
        if prefix and branch.startswith(prefix):
            return f"{branch} is named like {kind} ({key})"
    return None


def untrusted(store: Store, branch: str) -> str | None:
    """Why config committed on `branch` cannot be trusted, or None. Decided by names and
    local config only: what the state says must not move a branch in or out of trust."""
    return state_owned(store, branch) or work_branch(store, branch)


# --- the trusted branch -----------------------------------------------------------------


def _symbolic_target(store: Store, name: str) -> str | None:
    try:
        ref = store.repo.references.get(name)
    except (pygit2.GitError, ValueError):
        return None
    if ref is None or ref.type != pygit2.enums.ReferenceType.SYMBOLIC:
        return None
    return str(ref.target)


def _default_candidates(store: Store) -> list[tuple[str, str]]:
    remote = revs.default_remote(store)
    out = []
    remote_head = _symbolic_target(store, f"refs/remotes/{remote}/HEAD")
    if remote_head and remote_head.startswith(f"refs/remotes/{remote}/"):
        out.append((remote_head.removeprefix(f"refs/remotes/{remote}/"), f"{remote}'s HEAD"))
    out += [("main", "the default branch"), ("master", "the default branch")]
    head = _symbolic_target(store, "HEAD")
    if head and head.startswith("refs/heads/"):
        out.append((head.removeprefix("refs/heads/"), "the checked-out branch"))
    return out


def config_ref(store: Store) -> ConfigRef:
    """`git config convoy.configRef`, else the first of: the branch the remote's HEAD names
    (as recorded by clone or `git remote set-head`), `main`, `master`, the checked-out branch
    — that exists here as a local branch and that the state does not write. A configRef
    naming such a branch is an error, not a fallback."""
    chosen = store.config_get("convoy.configRef")
    if chosen:
        branch = chosen.removeprefix("refs/heads/")
        why = untrusted(store, branch)
        if why or branch.startswith("refs/"):
            raise ConvoyError(
                f"convoy.configRef = {chosen!r}: {why or 'not a local branch'}, which others "
                "can write; set it to a branch you review, e.g. git config convoy.configRef "
                "main")
        return ConfigRef(branch, "convoy.configRef")
    for branch, why in _default_candidates(store):
        if not untrusted(store, branch) and store.head_of(f"refs/heads/{branch}"):
            return ConfigRef(branch, f"convoy.configRef unset: {why}")
    return ConfigRef(None, "convoy.configRef unset and no default branch here")


def read_config_file(store: Store, branch: str) -> dict[str, Any]:
    """`.convoy/config.toml` as committed on local `branch` (empty when absent). Only for
    the trusted branch, or for showing a user the file of a branch they named."""
    tip = store.head_of(f"refs/heads/{branch}")
    if tip is None:
        return {}
    tree = store.repo[tip].peel(pygit2.Tree)
    try:
        blob = store.repo[tree[CONFIG_FILE].id]
    except KeyError:
        return {}
    try:
        return tomllib.loads(blob.data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConvoyError(f"{CONFIG_FILE} on {branch}: {exc}") from None


def trusted_file(store: Store) -> tuple[ConfigRef, dict[str, Any]]:
    ref = config_ref(store)
    return ref, read_config_file(store, ref.branch) if ref.branch else {}


# --- the one lookup ---------------------------------------------------------------------


def _scalar(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ConvoyError(f"{where} must be a string, not a {type(value).__name__}")


def lookup(store: Store, git_key: str, *toml_path: str) -> Found:
    """A setting that may run or guard something: git config `git_key`, else the trusted
    `.convoy/config.toml` at `toml_path` (`"rig", "app", "dispatch"`). Nothing else."""
    local = store.config_get(git_key)
    if local is not None:
        return Found(local, f"{git_key} (local git config)")
    if not toml_path:
        return Found(None)
    ref, data = trusted_file(store)
    node: Any = data
    for part in toml_path:
        node = node.get(part) if isinstance(node, dict) else None
    if node is None:
        return Found(None)
    where = f"{CONFIG_FILE} on {ref.branch}"
    dotted = ".".join(f'"{p}"' if "/" in p or "." in p else p for p in toml_path)
    return Found(_scalar(node, f"{where}: {dotted}"), f"{where} ({ref.why})")


def rig_found(store: Store, rig_name: str, key: str) -> Found:
    return lookup(store, f"convoy.rig.{rig_name}.{key}", "rig", rig_name, key)


def rig_setting(store: Store, rig: Rig, key: str) -> str | None:
    """A rig's setting (dispatch, check, timeout, worktree, delete-branch, formula)."""
    return rig_found(store, rig.name, key).value


def target_found(store: Store, branch: str, key: str) -> Found:
    """A target branch's own setting (check, timeout): it guards every landing on it."""
    return lookup(store, f"convoy.target.{branch}.{key}", "target", branch, key)


def review_found(store: Store, key: str) -> Found:
    """The review gate's settings: enabled (git config `convoy.review`), command, formula."""
    git_key = "convoy.review" if key == "enabled" else f"convoy.review.{key}"
    return lookup(store, git_key, "review", key)


def coordinator_found(store: Store, key: str = "command") -> Found:
    """The coordinator strategy's settings: command (git config `convoy.coordinator`),
    timeout (`convoy.coordinator.timeout`); `[coordinator]` in the trusted file."""
    git_key = "convoy.coordinator" if key == "command" else f"convoy.coordinator.{key}"
    return lookup(store, git_key, "coordinator", key)


def _configured(store: Store, kind: str, key: str) -> set[str]:
    """Names `X` that have `convoy.<kind>.X.<key>` in git config or `[<kind>."X"] <key>` in
    the trusted file — found from the user's config alone, whatever the state lists."""
    res = run_git(["config", "--get-regexp", rf"^convoy\.{kind}\..*\.{key}$"],
                  git_dir=store.common_dir, check=False)
    names = {line.split(" ", 1)[0][len(f"convoy.{kind}."):-len(f".{key}")]
             for line in res.out.splitlines()}
    _, data = trusted_file(store)
    sections = data.get(kind)
    if isinstance(sections, dict):
        names |= {n for n, section in sections.items()
                  if isinstance(section, dict) and key in section}
    return names


def rig_checks(store: Store) -> dict[str, Found]:
    """Every rig check the local user configured, by rig name."""
    found = {name: rig_found(store, name, "check")
             for name in sorted(_configured(store, "rig", "check"))}
    return {name: f for name, f in found.items() if f.value}


def target_check_branches(store: Store) -> set[str]:
    """Branches with a check of their own (an empty one included: "lands unchecked")."""
    return _configured(store, "target", "check")


# --- where a command runs --------------------------------------------------------------


def command_dir(store: Store) -> str:
    """Where a dispatch or notify command runs, and so what a relative path in it means: the
    top level of the main worktree, whichever worktree the command or hook was started in (a
    linked worktree may be a worker's, on a branch of its making, or lack an untracked
    script). A bare repository has no worktree: its own folder, as before."""
    if os.path.normpath(store.repo.path) == os.path.normpath(store.common_dir):  # not linked
        return (store.repo.workdir or store.common_dir).rstrip("/") or "/"
    top = main_worktree(store.common_dir)
    if top is None or not os.path.isdir(top):  # bare, or the main worktree was removed
        return (store.repo.workdir or store.common_dir).rstrip("/") or "/"
    return top


_SHELL_SIGNS = set("\"'\\$`=;&|<>()*?[{~")


def anchored(command: str, top: str) -> str:
    """`command` with its program made absolute when it is a relative path (`./start.sh`,
    `tools/w.sh`): for a command that runs somewhere else (a bead's own worktree) and must
    still mean the file under `top`. A bare name (found on PATH), an absolute path or a
    first word with shell syntax in it is left as written."""
    stripped = command.lstrip()
    word = stripped.split(None, 1)[0] if stripped else ""
    if "/" not in word or word.startswith("/") or _SHELL_SIGNS & set(word):
        return command
    return shlex.quote(os.path.normpath(os.path.join(top, word))) + stripped[len(word):]

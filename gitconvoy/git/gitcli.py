"""The only module that runs the `git` binary.

Remotes go through the git CLI so credential helpers, ssh config, insteadOf and the user's
transport settings behave as they expect (libgit2 runs none of them). Output that is parsed
is produced under LC_ALL=C.
"""

from __future__ import annotations

import functools
import os
import random
import re
import subprocess
import time
from dataclasses import dataclass

from gitconvoy.errors import ConvoyError

# What `git rev-parse --local-env-vars` printed on git 2.39; used if asking git fails.
_FALLBACK_LOCAL_VARS = (
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_CONFIG", "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT", "GIT_OBJECT_DIRECTORY", "GIT_DIR", "GIT_WORK_TREE",
    "GIT_IMPLICIT_WORK_TREE", "GIT_GRAFT_FILE", "GIT_INDEX_FILE", "GIT_NO_REPLACE_OBJECTS",
    "GIT_REPLACE_REF_BASE", "GIT_PREFIX", "GIT_INTERNAL_SUPER_PREFIX", "GIT_SHALLOW_FILE",
    "GIT_COMMON_DIR",
)


@functools.lru_cache(maxsize=1)
def local_env_vars() -> tuple[str, ...]:
    """Variables that tie git to one repository (GIT_DIR, GIT_INDEX_FILE, …)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--local-env-vars"], capture_output=True, text=True,
            check=True, env={k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return _FALLBACK_LOCAL_VARS
    return tuple(out.split()) or _FALLBACK_LOCAL_VARS


def clean_env(*, other_repo: bool, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a git child; without the repository-local variables when the
    child works on another repository (a hook's GIT_DIR would otherwise point it at ours)."""
    env = dict(os.environ)
    if other_repo:
        for name in local_env_vars():
            env.pop(name, None)
    env["LC_ALL"] = "C"
    env.pop("LANGUAGE", None)
    env["CONVOY_IN_HOOK"] = "1"  # our own git calls must not wake the hooks' feeder
    env.update(extra or {})
    return env


@dataclass
class GitResult:
    code: int
    out: str
    err: str

    @property
    def first_error(self) -> str:
        """The most telling line of git's stderr, for a one-line message."""
        lines = [ln.strip() for ln in self.err.splitlines() if ln.strip()]
        for ln in lines:
            if ln.startswith(("fatal:", "error:")):
                return ln
        return lines[-1] if lines else f"exit code {self.code}"


def run_git(args: list[str], cwd: str | None = None, env: dict[str, str] | None = None,
            check: bool = True, *, git_dir: str | None = None,
            other_repo: bool = False) -> GitResult:
    """Run git; `git_dir` pins the repository, `other_repo` strips our repository's env."""
    argv = ["git"]
    if git_dir:
        argv.append(f"--git-dir={git_dir}")
    argv.extend(args)
    try:
        proc = subprocess.run(
            argv, cwd=cwd, capture_output=True, text=True,
            env=clean_env(other_repo=other_repo, extra=env), stdin=subprocess.DEVNULL,
        )
    except OSError as exc:
        raise ConvoyError(f"cannot run git: {exc.strerror}") from None
    result = GitResult(proc.returncode, proc.stdout, proc.stderr)
    if check and result.code != 0:
        raise ConvoyError(f"git {args[0]} failed: {result.first_error}")
    return result


def main_worktree(git_dir: str) -> str | None:
    """The top level of the repository's main worktree, as git lists it first; None for a
    bare repository (it has none) or when git cannot say."""
    res = run_git(["worktree", "list", "--porcelain"], git_dir=git_dir, check=False)
    block = res.out.split("\n\n", 1)[0].splitlines() if res.code == 0 else []
    if not block or not block[0].startswith("worktree ") or "bare" in block[1:]:
        return None
    return block[0][len("worktree "):]


@functools.lru_cache(maxsize=1)
def git_version() -> tuple[int, int, int]:
    """The git binary's version, asked once per process: (2, 39, 5); (0, 0, 0) when git
    cannot say, so a feature check fails safe."""
    res = run_git(["version"], check=False, other_repo=True)
    return parse_version(res.out) if res.code == 0 else (0, 0, 0)


def parse_version(text: str) -> tuple[int, int, int]:
    """`git version 2.39.5`, `… 2.45.1.windows.1`, `… 2.39.3 (Apple Git-146)` → numbers."""
    found = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    if found is None:
        return (0, 0, 0)
    return (int(found.group(1)), int(found.group(2)), int(found.group(3) or 0))


FETCH_LOCK_TRIES = 8  # 0.6–1.4 s of waiting in all before a lock that stays is reported


def fetch_ref(git_dir: str, remote: str, ref: str, into: str,
              env: dict[str, str] | None = None) -> bool:
    """Fetch the remote's `ref` into our private ref `into`; False when the remote lacks it.

    Another process of this clone (a worker's sync, a hook, a claim) fetching the same ref
    at the same moment makes git refuse our local ref update ("cannot lock ref …: is at X
    but expected Y", or its lock file exists): a local race, so the fetch is tried again
    (bounded; a lock left by a crash is then reported like any other failure)."""
    for attempt in range(1, FETCH_LOCK_TRIES + 1):
        res = run_git(
            ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--no-auto-maintenance",
             remote, f"+{ref}:{into}"],
            git_dir=git_dir, check=False, env=env,
        )
        if res.code == 0:
            return True
        if "couldn't find remote ref" in res.err:
            return False
        if "cannot lock ref" not in res.err or attempt == FETCH_LOCK_TRIES:
            break
        time.sleep(random.uniform(0.02 * attempt, 0.05 * attempt))
    raise ConvoyError(f"cannot fetch {ref} from {remote}: {res.first_error}")


@dataclass
class PushOutcome:
    pushed: bool
    rejected: bool
    message: str


# A lost race shows as a rejection; some servers (dulwich) drop the connection instead when
# another push holds the ref's lock. Both are worth a new round: its fetch notices a dead remote.
_REJECTED = ("[rejected]", "non-fast-forward", "fetch first", "stale info",
             "cannot lock ref", "failed to update ref", "[remote rejected]",
             "hung up unexpectedly")


def push_commit(git_dir: str, remote: str, commit: str, ref: str,
                env: dict[str, str] | None = None) -> PushOutcome:
    """Push `commit` to the remote's `ref` without force: the remote refuses a non-descendant,
    which is the remote half of the compare-and-swap. A hook that declines is not a race."""
    res = run_git(["push", "--quiet", "--porcelain", "--no-verify", remote, f"{commit}:{ref}"],
                  git_dir=git_dir, check=False, env=env)
    if res.code == 0:
        # Some servers (dulwich's, seen here) answer "ok" for a push whose ref update lost its
        # own compare-and-swap. Trust only what the remote shows: anything else is a lost race,
        # and the caller fetches, merges and pushes again (harmless if our commit is in).
        try:
            shown = ls_remote(git_dir, remote, ref)
        except ConvoyError:
            shown = None
        if shown != commit:
            return PushOutcome(False, True, f"the remote shows {ref} at {shown or 'nothing'}")
        return PushOutcome(True, False, "")
    text = res.out + res.err
    if any(mark in text for mark in _REJECTED) and "declined" not in text:
        return PushOutcome(False, True, res.first_error)
    return PushOutcome(False, False, res.first_error)


def ls_remote(git_dir: str, remote: str, ref: str) -> str | None:
    """The remote's commit for `ref`, or None; one round trip, no objects transferred."""
    res = run_git(["ls-remote", "--quiet", remote, ref], git_dir=git_dir, check=False)
    if res.code != 0:
        raise ConvoyError(f"cannot list {ref} on {remote}: {res.first_error}")
    for line in res.out.splitlines():
        sha, _, name = line.partition("\t")
        if name == ref:
            return sha
    return None

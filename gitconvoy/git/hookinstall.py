"""Install, uninstall and inspect the hook shims.

Rules (DESIGN §12 "Hook installation"):
- the hooks folder is the one git uses: `core.hooksPath` if set, else the common dir's hooks/
  (linked worktrees share it);
- a hook file we did not create keeps its content and runs first: our shim is a marked block
  appended to it, and uninstall removes exactly that block, leaving the file byte-identical;
- a file we created starts with CREATED_HEADER and is deleted again on uninstall;
- installing twice writes nothing; an outdated block is replaced in place;
- a hook file in another language is left alone and reported (a shell block cannot chain it).

The planning (`plan_install`, `strip_block`, `hook_state`) is pure text work; only
`install`, `uninstall` and `status` read and write files.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from gitconvoy.errors import ConvoyError
from gitconvoy.git import settings, watch
from gitconvoy.git.gitcli import run_git
from gitconvoy.state.store import DEFAULT_REF, Store

HOOKS: dict[str, str] = {
    "post-merge": "post.sh",
    "post-rewrite": "post.sh",
    "post-checkout": "post.sh",
    "post-commit": "post.sh",
    "reference-transaction": "reference-transaction.sh",
    "prepare-commit-msg": "trailer.sh",
}
# `hooks install --server`, on the bare repository clients push to.
SERVER_HOOKS: dict[str, str] = {"post-receive": "post-receive.sh"}
BEGIN = "# >>> gitconvoy"
END = "# <<< gitconvoy <<<\n"
JOINED = " (newline added)"
CREATED_HEADER = "#!/bin/sh\n# created by 'git convoy hooks install'; uninstall deletes it\n"
MANIFEST = "hooks-installed"
SHELLS = frozenset({"sh", "bash", "dash", "ash", "ksh", "mksh", "zsh", "busybox"})

_BLOCK_RE = re.compile(
    r"^# >>> gitconvoy(?P<joined> \(newline added\))? >>>.*?^# <<< gitconvoy <<<\n?",
    re.MULTILINE | re.DOTALL,
)


# --- templates --------------------------------------------------------------------------


def template_dir() -> Path:
    """hooks/ shipped in the wheel as gitconvoy/_data/hooks, or the source tree's hooks/."""
    shipped = resources.files("gitconvoy").joinpath("_data", "hooks")
    if shipped.is_dir():
        return Path(str(shipped))
    source = Path(__file__).resolve().parents[2] / "hooks"  # gitconvoy/git/ -> top
    if source.is_dir():
        return source
    raise ConvoyError("the hook templates are missing from this installation: reinstall gitconvoy")


def render_block(name: str, python: str | None = None, state_ref: str = DEFAULT_REF) -> str:
    """The block for hook `name`, calling this interpreter directly (no PATH or shim lookup)."""
    template = HOOKS.get(name) or SERVER_HOOKS[name]
    text = (template_dir() / template).read_text(encoding="utf-8")
    interpreter = python if python is not None else sys.executable
    text = text.replace("@HOOK@", name).replace("@PYTHON@", shlex.quote(interpreter))
    text = text.replace("@STATE_REF@", shlex.quote(state_ref))
    return text if text.endswith("\n") else text + "\n"


# --- pure text planning -----------------------------------------------------------------


@dataclass(frozen=True)
class HookState:
    """What one hook file holds, as far as we are concerned."""

    name: str
    path: str
    state: str  # missing | absent | current | outdated | foreign | disabled
    created: bool = False

    @property
    def installed(self) -> bool:
        return self.state in ("current", "outdated")


def find_block(text: str) -> re.Match[str] | None:
    return _BLOCK_RE.search(text)


def strip_block(text: str) -> str:
    """The file as it was before we appended (the newline we added goes too)."""
    found = find_block(text)
    if found is None:
        return text
    start = found.start()
    if found.group("joined") and start > 0 and text[start - 1] == "\n":
        start -= 1
    return text[:start] + text[found.end():]


def is_shell_script(text: str) -> bool:
    """Hooks without a shebang are run by sh; otherwise the interpreter must be a shell."""
    if not text.startswith("#!"):
        return "\0" not in text[:1024]
    words = text[2:].split("\n", 1)[0].split()
    if not words:
        return False
    prog = os.path.basename(words[0])
    if prog == "env" and len(words) > 1:
        prog = os.path.basename(words[1])
    return prog in SHELLS


def plan_install(existing: str | None, block: str) -> str | None:
    """New file content, or None when nothing needs writing (already current)."""
    if existing is None:
        return CREATED_HEADER + block
    found = find_block(existing)
    if found is not None:
        current = found.group(0)
        joined = bool(found.group("joined"))
        wanted = _mark_joined(block) if joined else block
        if current.rstrip("\n") == wanted.rstrip("\n"):
            return None
        return existing[: found.start()] + wanted + existing[found.end():]
    if existing == "" or existing.endswith("\n"):
        return existing + block
    return existing + "\n" + _mark_joined(block)


def _mark_joined(block: str) -> str:
    """Record in the begin marker that we added the newline the file lacked."""
    return block.replace(BEGIN, BEGIN + JOINED, 1)


def classify(name: str, path: str, text: str | None, executable: bool, block: str) -> HookState:
    if text is None:
        return HookState(name, path, "absent")
    created = text.startswith(CREATED_HEADER)
    found = find_block(text)
    if found is not None:
        current = plan_install(text, block) is None
        state = "current" if current else "outdated"
        if not executable:
            state = "disabled"
        return HookState(name, path, state, created)
    if not is_shell_script(text):
        return HookState(name, path, "foreign")
    return HookState(name, path, "missing")


# --- files ------------------------------------------------------------------------------


def hooks_dir(cwd: str | None = None) -> str:
    """The folder git runs hooks from, as git resolves it (core.hooksPath included)."""
    where = cwd or os.getcwd()
    res = run_git(["rev-parse", "--git-path", "hooks"], cwd=where)
    return os.path.normpath(os.path.join(where, res.out.strip()))


def _read(path: str) -> str | None:
    """The hook's text; a binary (not UTF-8) comes back with a NUL, i.e. not a shell script."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            return fh.read()
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        return "\0"


def _write(path: str, text: str, *, new: bool) -> None:
    """Rewrite in place (keeps the mode, owner and any symlink of a file we did not create)."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    if new:
        os.chmod(path, 0o755)


def _manifest_path(store: Store) -> str:
    return os.path.join(watch.convoy_dir(store), MANIFEST)


def _manifest(store: Store) -> list[str]:
    """The hook folders we installed into; lines that are not folders (a file of any bytes
    after a crash) are dropped, and the next install rewrites the file."""
    try:
        with open(_manifest_path(store), "rb") as fh:
            raw = fh.read()
    except OSError:
        return []
    lines = raw.decode("utf-8", errors="replace").splitlines()
    return [line for line in lines if line.strip() and "\ufffd" not in line
            and line.isprintable() and os.path.isdir(line)]


def _save_manifest(store: Store, dirs: list[str]) -> None:
    path = _manifest_path(store)
    if not dirs:
        if os.path.exists(path):
            os.remove(path)
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("".join(f"{d}\n" for d in sorted(set(dirs))))


def hook_states(directory: str, python: str | None = None, names: dict[str, str] = HOOKS,
                state_ref: str = DEFAULT_REF) -> list[HookState]:
    states = []
    for name in names:
        path = os.path.join(directory, name)
        text = _read(path)
        executable = text is not None and os.access(path, os.X_OK)
        block = render_block(name, python, state_ref)
        states.append(classify(name, path, text, executable, block))
    return states


def install(store: Store, directory: str | None = None) -> list[str]:
    """Install every shim, the settings and the watch list; lines saying what changed."""
    directory = directory or hooks_dir()
    done = _install_blocks(store, directory, HOOKS)
    _save_manifest(store, [*_manifest(store), directory])
    done += settings.install_settings(store)
    patterns = watch.write_watch(store)
    watch.record_seen(store, patterns)
    return done


def install_server(store: Store, directory: str | None = None) -> list[str]:
    """On a bare repository: the post-receive shim that lands MRs its clients queue."""
    if not store.repo.is_bare:
        raise ConvoyError("hooks install --server is for the bare repository clients push to; "
                          "in a clone, use 'git convoy hooks install'")
    directory = directory or hooks_dir(store.repo.path)
    done = _install_blocks(store, directory, SERVER_HOOKS)
    _save_manifest(store, [*_manifest(store), directory])
    return done


def _install_blocks(store: Store, directory: str, names: dict[str, str]) -> list[str]:
    os.makedirs(directory, exist_ok=True)
    done: list[str] = []
    for state in hook_states(directory, names=names, state_ref=store.ref):
        path = state.path
        if state.state == "current":
            continue
        if state.state == "foreign":
            done.append(
                f"skipped {path}: not a shell script, so a block cannot be appended; "
                f"call 'git convoy hook {state.name} \"$@\"' from it yourself"
            )
            continue
        if state.state == "disabled":
            done.append(f"skipped {path}: not executable, so git ignores it; chmod +x it")
            continue
        existing = _read(path)
        if existing is not None and not os.access(path, os.X_OK):
            done.append(f"skipped {path}: not executable, so git ignores it; chmod +x it or "
                        "remove it, then install again")
            continue
        new_text = plan_install(existing, render_block(state.name, None, store.ref))
        if new_text is None:
            continue
        _write(path, new_text, new=existing is None)
        verb = {"absent": "created", "missing": "appended a block to",
                "outdated": "updated the block in"}[state.state]
        done.append(f"{verb} {path}")
    return done


def uninstall(store: Store, directory: str | None = None) -> list[str]:
    """Remove our blocks (and files we created) wherever we installed; settings and runtime
    files too."""
    directories = [directory or hooks_dir(), *_manifest(store)]
    done: list[str] = []
    seen: set[str] = set()
    for folder in directories:
        if folder in seen:
            continue
        seen.add(folder)
        for name in [*HOOKS, *SERVER_HOOKS]:
            path = os.path.join(folder, name)
            text = _read(path)
            if text is None or find_block(text) is None:
                continue
            rest = strip_block(text)
            if text.startswith(CREATED_HEADER) and rest == CREATED_HEADER:
                os.remove(path)
                done.append(f"removed {path}")
            else:
                _write(path, rest, new=False)
                done.append(f"removed the gitconvoy block from {path}")
    _save_manifest(store, [])
    done += settings.uninstall_settings(store)
    for runtime in (watch.WATCH_FILE, watch.SEEN_FILE, watch.FEED_DUE_FILE, watch.ERRORS_FILE,
                    watch.INFLIGHT_FILE, watch.WORK_BRANCHES_FILE):
        path = os.path.join(watch.convoy_dir(store), runtime)
        if os.path.exists(path):
            os.remove(path)
    return done


@dataclass
class Status:
    directory: str
    hooks: list[HookState]
    settings_current: bool
    included: bool
    merge_driver: str | None
    watch_present: bool
    other_dirs: list[str]

    @property
    def current(self) -> bool:
        return (all(h.state == "current" for h in self.hooks) and self.settings_current
                and self.included and self.merge_driver == settings.MERGE_DRIVER
                and self.watch_present)

    def to_dict(self) -> dict[str, object]:
        return {
            "directory": self.directory,
            "current": self.current,
            "hooks": {h.name: {"path": h.path, "state": h.state, "created": h.created}
                      for h in self.hooks},
            "settings_current": self.settings_current,
            "included": self.included,
            "merge_driver": self.merge_driver,
            "watch_present": self.watch_present,
            "other_dirs": self.other_dirs,
        }


def status(store: Store, directory: str | None = None) -> Status:
    directory = directory or hooks_dir()
    others = [d for d in _manifest(store) if d != directory]
    return Status(
        directory=directory,
        hooks=hook_states(directory, state_ref=store.ref),
        settings_current=settings.settings_current(store),
        included=settings.included(store),
        merge_driver=settings.merge_driver_registered(store),
        watch_present=os.path.exists(os.path.join(watch.convoy_dir(store), watch.WATCH_FILE)),
        other_dirs=others,
    )

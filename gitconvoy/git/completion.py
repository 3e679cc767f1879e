"""Words for shell completion (bead, epic, convoy and rig names), fast enough for a TAB.

A TAB press must not pay for pygit2 (about 0.1 s to import) or for parsing the state, so the
names live in a small text file beside the read cache, `.git/convoy/cache/complete-ids.tsv`,
whose first line names the state commit it was made from. Two `git` calls (the `convoy.ref`
setting and `rev-parse`) tell whether it is still current; only when the state moved is the
state read (through the store and its cache) and the file written again. Losing the file
only costs one slow TAB; what it holds is filtered again when read, so an edited file
cannot send control sequences to the terminal.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Iterable

from gitconvoy.git.gitcli import clean_env

FILE = "complete-ids.tsv"
HEADER = "# gitconvoy completion words v1 "
DEFAULT_REF = "refs/heads/convoy/state"
BEAD_KINDS = ("task", "bug", "feature", "chore", "epic", "decision")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _git(args: list[str]) -> tuple[int, str]:
    try:
        proc = subprocess.run(["git", *args], capture_output=True, text=True,
                              env=clean_env(other_repo=False), stdin=subprocess.DEVNULL)
    except OSError:
        return 127, ""
    return proc.returncode, proc.stdout


def state_position() -> tuple[str, str | None] | None:
    """(the common git folder, the state commit or None), or None outside a repository."""
    code, out = _git(["config", "--get", "convoy.ref"])
    ref = out.strip() if code == 0 and out.strip() else DEFAULT_REF
    if not ref.startswith("refs/"):
        ref = f"refs/heads/{ref}"
    code, out = _git(["rev-parse", "--git-common-dir", "--revs-only", ref])
    lines = out.split()
    if code != 0 or not lines:
        return None
    return lines[0], (lines[1] if len(lines) > 1 else None)


def _path(common_dir: str) -> str:
    return os.path.join(common_dir, "convoy", "cache", FILE)


def _read(common_dir: str, commit: str) -> list[str] | None:
    try:
        with open(_path(common_dir), encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError):
        return None
    head, _, body = text.partition("\n")
    return body.splitlines() if head == HEADER + commit else None


def _clean(text: str) -> str:
    return " ".join(_UNSAFE.sub(" ", text).split())


def _lines_from_state() -> tuple[str, list[str]] | None:
    """(state commit, one `kind<TAB>name<TAB>description` line per name), read in full."""
    from gitconvoy.state.store import Store

    try:
        store = Store.open()
        commit = store.state_commit()
        if commit is None:
            return None
        snap = store.snapshot()
        beads, convoys, rigs = snap.beads, snap.convoys, snap.config.rigs
    except Exception:  # a completion never fails the shell: no words instead
        return None
    out = []
    for bead_id in sorted(beads):
        bead = beads[bead_id]
        if bead.status != "tombstone":
            out.append((bead.type, bead_id, f"{bead.type}, {bead.status}: {bead.title}"))
    for convoy_id in sorted(convoys):
        convoy = convoys[convoy_id]
        out.append(("convoy", convoy_id, f"{convoy.status}: {convoy.title}"))
    for name in sorted(rigs):
        out.append(("rig", name, f"rig, target {rigs[name].target}"))
    # a name a shell could not take as one word (or that would reach the terminal as a
    # control sequence) is left out rather than offered changed
    return commit, [f"{kind}\t{name}\t{_clean(text)}" for kind, name, text in out
                    if name and not _UNSAFE.search(name) and len(name.split()) == 1]


def _write(common_dir: str, commit: str, lines: list[str]) -> None:
    path = _path(common_dir)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(HEADER + commit + "\n" + "".join(line + "\n" for line in lines))
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def words(kinds: Iterable[str], prefix: str = "", describe: bool = False) -> list[str]:
    """The names of these kinds (`bead` is every bead type) that start with `prefix`;
    with `describe`, each as `name<TAB>description`."""
    position = state_position()
    if position is None or position[1] is None:
        return []
    common_dir, commit = position
    lines = _read(common_dir, commit)
    if lines is None:
        fresh = _lines_from_state()
        if fresh is None:
            return []
        commit, lines = fresh
        _write(common_dir, commit, lines)
    wanted = set(kinds)
    if "bead" in wanted:
        wanted.update(BEAD_KINDS)
    out = []
    for line in lines:
        kind, _, rest = line.partition("\t")
        name, _, text = rest.partition("\t")
        if kind in wanted and name.startswith(prefix) and not _UNSAFE.search(name):
            out.append(f"{name}\t{_clean(text)}" if describe else name)
    return out

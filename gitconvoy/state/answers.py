"""The answers of the read commands (`ready`, `blocked`, `bead list`), kept per state commit,
so a warm read needs neither pygit2 nor YAML nor the graph.

An answer is a pure function of the state commit (and of this gitconvoy's code), so the full
read that computes it with gitconvoy.plan.graph stores it, keyed by that commit: the text
the command prints without options, and the beads in printed order, one JSON row each, which
are decoded only for the options that need them (`--json`, filters). A later read finds the
commit with gitconvoy.state.reffiles and serves what is stored for it. Nothing is patched
or recomputed here: the rules live in one place.

`<common dir>/convoy/cache/<name>.answer`, untrusted input like the snapshot cache:

    gitconvoy-answer sha256:<hex of everything after this line>
    <key>                       format, command, package version, code stamp
    <commit>
    <rows> <a> <b> <c>          counts of rows and of the bytes of the three texts
    <a bytes: stderr before> <b bytes: stdout> <c bytes: stderr after>
    [[<bead row>, <extra>], …]  one JSON list, the beads in printed order

The code stamp is the size and time of the modules that decide an answer, so an edited
checkout never serves what its code would no longer print. A changed byte, a cut-off write,
another key or commit is a miss: the caller takes the full path, which writes the file
again. Rows are type-checked as they become beads (gitconvoy.state.rows). A state whose
beads JSON cannot carry exactly (a date in a dispatch) gets no answer file.

The text part is read with bytes operations only: a warm `ready` imports hashlib and
nothing else beyond what Python starts with (JSON and the model load only for rows).
"""

from __future__ import annotations

import hashlib
import os

from gitconvoy import __version__
from gitconvoy.state.reffiles import Place, repository_config_files, write_atomically

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: nothing heavy is imported on the warm path
    from collections.abc import Callable
    from typing import Any

    from gitconvoy.state.model import Bead
    from gitconvoy.state.snapshot import Snapshot
    from gitconvoy.state.store import Store

FORMAT = 1
MAGIC = b"gitconvoy-answer sha256:"
NAMES = ("ready", "blocked", "beads")
MAX_BYTES = 1 << 30  # far above any state under the caps; a bigger file is not read
# Modules whose code decides what an answer holds (package-relative).
DECIDING = ("plan/graph.py", "state/model.py", "state/rows.py", "state/answers.py",
            "render/text.py", "render/shapes.py", "commands/beads.py",
            "commands/readout.py", "commands/quick.py")


class Miss(Exception):
    """The file holds no answer this process can serve."""


def code_stamp() -> str:
    """Size and modification time of the deciding modules: a developer's edit is a miss."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parts = []
    for rel in DECIDING:
        try:
            st = os.stat(os.path.join(package, rel))
            parts.append(f"{rel}:{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            parts.append(f"{rel}:-")
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


def answer_key(name: str) -> bytes:
    return f"{FORMAT} {name} {__version__} {code_stamp()}".encode("utf-8", "surrogateescape")


def answer_file(common_dir: str, name: str) -> str:
    if name not in NAMES:
        raise ValueError(f"no stored answer for {name!r}")
    return os.path.join(common_dir, "convoy", "cache", f"{name}.answer")


class Answer:
    """One command's answer at one commit: its plain texts, and its rows still undecoded."""

    __slots__ = ("commit", "before", "out", "after", "count", "_rows")

    def __init__(self, commit: str, texts: tuple[str, str, str], count: int,
                 rows: bytes) -> None:
        self.commit = commit
        self.before, self.out, self.after = texts
        self.count = count
        self._rows = rows

    def rows(self, limit: int = 0) -> list[tuple[Bead, Any]]:
        """The first `limit` (0: every) beads with their extras, each row checked (Miss when
        one is not a bead)."""
        import json

        from gitconvoy.state.model import Bead
        from gitconvoy.state.rows import CacheMiss, forget_deps, shape_of

        forget_deps()
        shape = shape_of(Bead)
        try:
            decoded = json.loads(self._rows)
            if type(decoded) is not list or len(decoded) != self.count:
                raise Miss("expected a list of rows")
            out = []
            for item in decoded[:limit] if limit else decoded:
                if type(item) is not list or len(item) != 2:
                    raise Miss("expected [row, extra]")
                out.append((shape.decode(item[0]), item[1]))
        except (CacheMiss, ValueError, TypeError, RecursionError) as exc:
            raise Miss(str(exc)) from None
        return out


def decode(data: bytes, name: str, commit: str) -> Answer:
    """The answer a file holds for `commit`, or Miss."""
    head, _, body = data.partition(b"\n")
    if head != MAGIC + hashlib.sha256(body).hexdigest().encode("ascii"):
        raise Miss("digest mismatch")
    parts = body.split(b"\n", 3)
    if len(parts) != 4:
        raise Miss("cut off")
    key, stored_commit, sizes, rest = parts
    if key != answer_key(name):
        raise Miss("written for another command or gitconvoy")
    if stored_commit != commit.encode("ascii"):
        raise Miss("written for another state commit")
    numbers = sizes.split(b" ")
    if len(numbers) != 4 or not all(n.isdigit() for n in numbers):
        raise Miss("expected four counts")
    count, a, b, c = (int(n) for n in numbers)
    if len(rest) < a + b + c:
        raise Miss("cut off")
    try:
        texts = (rest[:a].decode("utf-8"), rest[a:a + b].decode("utf-8"),
                 rest[a + b:a + b + c].decode("utf-8"))
    except UnicodeDecodeError:
        raise Miss("texts are not UTF-8") from None
    return Answer(commit, texts, count, rest[a + b + c:])


def load(common_dir: str, name: str, commit: str) -> Answer | None:
    """The stored answer of command `name` at `commit`, or None when there is none to trust."""
    try:
        with open(answer_file(common_dir, name), "rb") as fh:
            if os.fstat(fh.fileno()).st_size > MAX_BYTES:
                return None
            data = fh.read()
        return decode(data, name, commit)
    except (OSError, Miss, ValueError):
        return None


def encode(name: str, commit: str, texts: tuple[str, str, str], beads: list[Bead],
           extras: list[Any] | None = None) -> bytes | None:
    """The whole file, or None when JSON would not carry a row exactly (a date or an integer
    key in a bead's dispatch)."""
    import json

    from gitconvoy.state.model import Bead
    from gitconvoy.state.reffiles import is_object_id
    from gitconvoy.state.rows import shape_of

    if not is_object_id(commit.encode("ascii")):
        return None
    shape = shape_of(Bead)
    rows = [[shape.encode(b), extras[n] if extras is not None else None]
            for n, b in enumerate(beads)]
    if not all(shape.exact(row) for row, _ in rows):
        return None
    try:
        text = json.dumps(rows, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return None
    before, out, after = (t.encode("utf-8") for t in texts)
    body = b"\n".join([answer_key(name), commit.encode("ascii"),
                       b"%d %d %d %d" % (len(rows), len(before), len(out), len(after)),
                       before + out + after + text.encode("ascii")])
    return MAGIC + hashlib.sha256(body).hexdigest().encode("ascii") + b"\n" + body


def remember(store: Store, name: str, snap: Snapshot, beads: list[Bead],
             texts: Callable[[], tuple[str, str, str]], extras: list[Any] | None = None) -> None:
    """After a full read: keep its answer for the commit it read (`texts()` gives what the
    command prints without options), and the state ref's name for this worktree, so the
    next read of the same commit is served from files."""
    commit = snap.commit
    if commit is None:
        return
    remember_ref(store)
    keep(store.common_dir, name, commit, beads, texts, extras)


def keep(common_dir: str, name: str, commit: str, beads: list[Bead],
         texts: Callable[[], tuple[str, str, str]], extras: list[Any] | None = None) -> None:
    """Store the answer of command `name` at `commit`, unless it is stored already."""
    if load(common_dir, name, commit) is not None:
        return
    try:
        data = encode(name, commit, texts(), beads, extras)
    except (TypeError, ValueError, RecursionError, UnicodeError):
        data = None
    if data is not None:
        write_atomically(answer_file(common_dir, name), data)


def _libgit2_config_files(place: Place) -> list[str]:
    """The config files libgit2 reads for this repository (it ignores GIT_CONFIG_GLOBAL and
    GIT_CONFIG_SYSTEM; they are read too, in case a later libgit2 does not)."""
    import pygit2
    from pygit2.enums import ConfigLevel, Option

    files = []
    for level, name in ((ConfigLevel.PROGRAMDATA, "config"), (ConfigLevel.SYSTEM, "gitconfig"),
                        (ConfigLevel.XDG, "config"), (ConfigLevel.GLOBAL, ".gitconfig")):
        for folder in (pygit2.option(Option.GET_SEARCH_PATH, level) or "").split(os.pathsep):
            if folder:
                files.append(os.path.join(folder, name))
    files += [p for p in (os.environ.get("GIT_CONFIG_GLOBAL"),
                          os.environ.get("GIT_CONFIG_SYSTEM")) if p]
    return files + repository_config_files(place)


def remember_ref(store: Store) -> None:
    """Record the ref name for this worktree, when the files say the same repository the
    store opened (otherwise a later read could not find it the same way anyway)."""
    from gitconvoy.state import reffiles

    if not reffiles.plain_environment():
        return
    place = reffiles.find_repository(os.getcwd())
    if place is None or os.path.realpath(place.git_dir) != os.path.realpath(store.repo.path) \
            or os.path.realpath(place.common_dir) != os.path.realpath(store.common_dir):
        return
    if reffiles.recall(place) == store.ref:
        return  # remembered, and nothing it depends on changed

    def resolve() -> tuple[str | None, tuple[str | None, ...]]:
        import pygit2

        from gitconvoy.state.store import Store

        try:
            fresh = Store(pygit2.Repository(store.repo.path))
        except pygit2.GitError:
            return None, ()
        return fresh.ref, tuple(fresh.config_get(key) for key in reffiles.IDENT_KEYS)

    reffiles.record(place, _libgit2_config_files(place), resolve)

"""The state commit read from the files under .git, without pygit2 (a warm read's first step).

Finding the repository (`.git` folder or `gitdir:` file, `commondir` for linked worktrees)
and reading a ref (its loose file, else `packed-refs`) is simple. Knowing *which* ref is
not: `convoy.ref` may come from the system, XDG, global, repository or worktree config, or
a file one of them includes. So the answer is remembered: a read that opened the store
(pygit2) records the ref name it used with a digest of every config file libgit2 reads and
every file they include, and the environment that chose those files. A later read uses the
name only while the same files hold the same bytes. Bytes, not times: a config edited
twice within one clock tick is still seen.

Anything unusual is "do not know", and the caller takes the full path: GIT_DIR, `git -c`,
any other GIT_* variable that is not known to be harmless, a folder on the way up that
looks like a git dir (a bare repository, the inside of .git), a filesystem boundary, a
repository of another owner, a symbolic, per-worktree or malformed ref, a reftable, a
conditional include other than `gitdir:`, an include path with quotes or escapes.

The remembered file is untrusted input like every cache (a digest line, then one line per
git dir); a file forged with a right digest can at worst name another ref, which anyone who
can write .git can do by editing its config.
"""

from __future__ import annotations

import hashlib
import os
import stat

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: collections.abc would import collections at run time
    from collections.abc import Callable

DEFAULT_REF = "refs/heads/convoy/state"  # the state ref when no config sets convoy.ref
MAGIC = b"gitconvoy-refs sha256:"
FORMAT = 2  # 2: the identity keys' values too
MAX_ENTRIES = 32  # worktrees remembered at once (the oldest is dropped)
MAX_INCLUDE_DEPTH = 10  # libgit2's limit

# Read to choose the config files libgit2 reads: recorded, and must be equal to use a record.
RECORDED_ENV = ("HOME", "XDG_CONFIG_HOME", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM",
                "GIT_CONFIG_NOSYSTEM")
# GIT_* variables that change neither where the repository is, nor its config, nor its refs.
# Any other (GIT_DIR, GIT_COMMON_DIR, GIT_CONFIG_PARAMETERS, GIT_CEILING_DIRECTORIES, …) means
# the full path.
HARMLESS_GIT_ENV = frozenset({
    "GIT_EXEC_PATH", "GIT_SSL_CAINFO", "GIT_SSL_CAPATH", "GIT_SSL_NO_VERIFY", "GIT_PAGER",
    "GIT_EDITOR", "GIT_SEQUENCE_EDITOR", "GIT_ASKPASS", "GIT_SSH", "GIT_SSH_COMMAND",
    "GIT_TERMINAL_PROMPT", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_AUTHOR_DATE",
    "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "GIT_COMMITTER_DATE", "GIT_INDEX_FILE",
    "GIT_MERGE_AUTOEDIT", "GIT_PREFIX", "GIT_PS1_SHOWDIRTYSTATE", "GIT_PS1_SHOWUNTRACKEDFILES",
    *RECORDED_ENV,
})
_HEX = b"0123456789abcdef"
_REF_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/-")
_PER_WORKTREE = ("refs/worktree/", "refs/bisect/", "refs/rewritten/")
# The config values a state commit's author, committer and `created_by` come from
# (gitconvoy.state.identity): remembered with the ref name, under the same config digest.
IDENT_KEYS = ("user.name", "user.email", "author.name", "author.email", "committer.name",
              "committer.email")

# This module is on the warm path: it imports nothing beyond what Python starts with and
# hashlib (no re, json, typing or dataclasses: each costs milliseconds to import).


class Place:
    """A repository as git finds it from a folder: its git dir and the common dir linked
    worktrees share (the same folder for the main worktree)."""

    __slots__ = ("git_dir", "common_dir")

    def __init__(self, git_dir: str, common_dir: str) -> None:
        self.git_dir = git_dir
        self.common_dir = common_dir

    def __repr__(self) -> str:
        return f"Place({self.git_dir!r}, {self.common_dir!r})"


def plain_environment() -> bool:
    """True when no variable that moves the repository, its config or its refs is set."""
    return not any(name.startswith("GIT_") and name not in HARMLESS_GIT_ENV
                   for name in os.environ)


def is_object_id(raw: bytes) -> bool:
    return len(raw) in (40, 64) and not raw.strip(_HEX)


def _looks_like_git_dir(folder: str) -> bool:
    return os.path.lexists(os.path.join(folder, "HEAD"))


def _owned(path: str) -> bool:
    """libgit2 refuses a repository of another user (safe.directory): do not guess."""
    try:
        return os.stat(path).st_uid == os.geteuid()
    except OSError:
        return False


def _gitlink(dotgit: str, folder: str) -> str | None:
    try:
        with open(dotgit, "rb") as fh:
            raw = fh.read(4097)
    except OSError:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(raw) > 4096 or not text.startswith("gitdir: "):
        return None
    target = text[len("gitdir: "):].strip()
    if not target or "\n" in target:
        return None
    return os.path.normpath(os.path.join(folder, target))


def _common_dir(git_dir: str) -> str | None:
    path = os.path.join(git_dir, "commondir")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(4097)
    except FileNotFoundError:
        return git_dir
    except OSError:
        return None
    try:
        rel = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None
    if not rel or "\n" in rel or len(raw) > 4096:
        return None
    return os.path.normpath(os.path.join(git_dir, rel))


def _valid_git_dir(path: str) -> bool:
    return (os.path.isfile(os.path.join(path, "HEAD"))
            and os.path.isdir(os.path.join(path, "objects"))
            and os.path.isdir(os.path.join(path, "refs"))) or (
        os.path.isfile(os.path.join(path, "HEAD"))
        and os.path.isfile(os.path.join(path, "commondir")))


def find_repository(start: str) -> Place | None:
    """The repository git would find from `start` (walking up), or None when unsure."""
    here = os.path.abspath(start)
    try:
        device = os.stat(here).st_dev
    except OSError:
        return None
    while True:
        if _looks_like_git_dir(here):
            return None  # inside a git dir or a bare repository: leave it to libgit2
        dotgit = os.path.join(here, ".git")
        try:
            mode = os.lstat(dotgit).st_mode
        except FileNotFoundError:
            mode = None
        except OSError:
            return None
        if mode is not None:
            if stat.S_ISDIR(mode):
                git_dir: str | None = dotgit
            elif stat.S_ISREG(mode):
                git_dir = _gitlink(dotgit, here)
            else:
                return None
            if git_dir is None or not _valid_git_dir(git_dir):
                return None
            common = _common_dir(git_dir)
            if common is None or not os.path.isdir(os.path.join(common, "refs")):
                return None
            if not (_owned(here) and _owned(git_dir) and _owned(common)):
                return None
            return Place(git_dir, common)
        parent = os.path.dirname(here)
        if parent == here:
            return None
        try:
            if os.stat(parent).st_dev != device:
                return None
        except OSError:
            return None
        here = parent


def valid_ref_name(ref: object) -> bool:
    """A ref this module can read as a file under the common dir."""
    return (isinstance(ref, str) and ref.startswith("refs/") and len(ref) > 5
            and ref[5] not in "./-" and _REF_CHARS.issuperset(ref) and ".." not in ref
            and "//" not in ref and "/." not in ref
            and not ref.endswith(("/", ".lock", ".")) and not ref.startswith(_PER_WORKTREE))


def read_ref(place: Place, ref: str) -> str | None:
    """The commit a ref points at, from its loose file or packed-refs; None when it is
    missing, symbolic, malformed or stored in a way this module does not read."""
    if not valid_ref_name(ref) or os.path.lexists(os.path.join(place.common_dir, "reftable")):
        return None
    loose = os.path.join(place.common_dir, ref)
    try:
        if os.path.islink(loose):
            return None  # a symbolic ref of the old kind: leave it to libgit2
        with open(loose, "rb") as fh:
            raw = fh.read(200)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raw = None
    except OSError:
        return None
    if raw is not None:
        raw = raw.removesuffix(b"\n")
        return raw.decode("ascii") if is_object_id(raw) else None
    try:
        with open(os.path.join(place.common_dir, "packed-refs"), "rb") as fh:
            packed = b"\n" + fh.read()
    except OSError:
        return None
    end = b" " + ref.encode("ascii") + b"\n"
    at = packed.find(end)
    while at >= 0:  # `<id> <ref>` on a line of its own
        start = packed.rfind(b"\n", 0, at) + 1
        if is_object_id(packed[start:at]):
            return packed[start:at].decode("ascii")
        at = packed.find(end, at + 1)
    return None


# --- which config files libgit2 reads, and their bytes -------------------------------------


def _include_paths(path: str, text: str, home: str | None) -> list[str] | None:
    """The files a config file includes (`include.path`, `includeIf "gitdir:…".path`),
    whatever the condition says (an extra file only costs a miss); None when unsure."""
    import re

    found: list[str] = []
    including = False
    for raw in text.removeprefix("\ufeff").splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            end = line.find("]")
            if end < 0:
                return None
            header = line[1:end].strip()
            name, _, sub = header.partition(" ")
            lowered = name.lower()
            if lowered.startswith("include"):
                after = line[end + 1:].strip()
                if after and after[0] not in "#;":
                    return None
                plain = lowered == "include" and not sub
                by_dir = lowered == "includeif" and sub.strip().startswith(('"gitdir:',
                                                                           '"gitdir/i:'))
                if not (plain or by_dir):
                    return None  # onbranch:, hasconfig:, …: depends on more than bytes
                including = True
            else:
                including = False
            continue
        if not including:
            continue
        key, eq, value = line.partition("=")
        if key.strip().lower() != "path":
            continue
        value = re.split(r"[#;]", value, maxsplit=1)[0].strip()
        if not eq or not value or '"' in value or "\\" in value:
            return None
        if value.startswith("~/"):
            if not home:
                return None
            value = os.path.join(home, value[2:])
        elif value.startswith("~"):
            return None
        found.append(os.path.normpath(os.path.join(os.path.dirname(path), value)))
    return found


def _read_config(path: str) -> bytes | None | bool:
    """A config file's bytes, None when it is absent, False when it cannot be read."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        return False


def config_digest(paths: list[str], home: str | None) -> tuple[list[str], str] | None:
    """Every file read for these config files (includes followed) and a SHA-256 of their
    bytes (absence counts too); None when unsure."""
    got = _config_bytes(paths, home)
    return None if got is None else (got[0], got[1])


def _config_bytes(paths: list[str], home: str | None) -> tuple[list[str], str, list[bytes]] | None:
    """`config_digest`, and the bytes of every file that exists."""
    seen: list[str] = []
    found: list[bytes] = []
    digest = hashlib.sha256()
    todo = [(p, 0) for p in paths]
    while todo:
        path, depth = todo.pop(0)
        if path in seen:
            continue
        seen.append(path)
        data = _read_config(path)
        if data is False:
            return None
        digest.update(path.encode("utf-8", "surrogateescape") + b"\0")
        if data is None:
            digest.update(b"-\0")
            continue
        assert isinstance(data, bytes)
        found.append(data)
        digest.update(b"+%d\0" % len(data) + data)
        if b"include" not in data.lower():
            continue
        try:
            included = _include_paths(path, data.decode("utf-8"), home)
        except UnicodeDecodeError:
            return None
        if included is None or (included and depth >= MAX_INCLUDE_DEPTH):
            return None
        todo.extend((p, depth + 1) for p in included)
    return seen, digest.hexdigest(), found


def repository_config_files(place: Place) -> list[str]:
    return [os.path.join(place.common_dir, "config"),
            os.path.join(place.git_dir, "config.worktree")]


def libgit2_config_files(place: Place) -> list[str] | None:
    """The config files libgit2 reads for this repository on a POSIX system, found as it
    finds them (its search path: /etc, then $XDG_CONFIG_HOME/git or ~/.config/git, then
    ~; a test holds this to pygit2's own answer), and GIT_CONFIG_GLOBAL and
    GIT_CONFIG_SYSTEM in case a later libgit2 reads them; None without a HOME."""
    home = os.environ.get("HOME")
    if not home:
        return None
    xdg = os.environ.get("XDG_CONFIG_HOME")
    files = ["/etc/gitconfig",
             os.path.join(xdg, "git", "config") if xdg else
             os.path.join(home, ".config", "git", "config"),
             os.path.join(home, ".gitconfig")]
    files += [p for p in (os.environ.get("GIT_CONFIG_GLOBAL"),
                          os.environ.get("GIT_CONFIG_SYSTEM")) if p]
    return files + repository_config_files(place)


def _sets_a_convoy_key(data: bytes) -> bool | None:
    """Whether a config file opens a `[convoy]` section (any subsection, any case): the
    only place convoy.ref can be set. None when a header line does not read plainly."""
    if b"convoy" not in data.lower():
        return False
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return None
    for raw in text.splitlines():
        line = raw.strip()
        if line.endswith("\\"):
            return None  # a continued value: what follows is not a line of its own
        if not line.startswith("["):
            continue
        end = line.find("]")
        if end < 0:
            return None
        name = line[1:end].strip().split()[0] if line[1:end].strip() else ""
        if name.partition(".")[0].partition('"')[0].lower() == "convoy":
            return True
    return False


def unconfigured_ref(place: Place) -> str | None:
    """The state ref without pygit2, when no config file libgit2 reads (includes followed)
    has a `[convoy]` section: then convoy.ref is unset and the ref is the default. None
    when one has, or when unsure: a full read resolves it."""
    if not plain_environment():
        return None
    files = libgit2_config_files(place)
    if files is None:
        return None
    got = _config_bytes(list(dict.fromkeys(files)), os.environ.get("HOME"))
    if got is None or any(_sets_a_convoy_key(data) is not False for data in got[2]):
        return None
    return DEFAULT_REF


# --- the remembered resolutions -----------------------------------------------------------
# One line per git dir, every string hex-encoded (paths may hold any byte), no JSON:
#   <git dir> <ref> <config digest> <files asked for> <env values,…> <files read,…>
#   <identity values,…>


class Entry:
    """What one full read found: the ref name for a git dir, the identity config values
    (IDENT_KEYS), and what they depended on."""

    __slots__ = ("git_dir", "ref", "digest", "start", "env", "files", "idents")

    def __init__(self, git_dir: str, ref: str, digest: str, start: int,
                 env: tuple[str | None, ...], files: tuple[str, ...],
                 idents: tuple[str | None, ...]) -> None:
        self.git_dir, self.ref, self.digest = git_dir, ref, digest
        self.start, self.env, self.files, self.idents = start, env, files, idents

    def line(self) -> bytes:
        return " ".join([_hex(self.git_dir), _hex(self.ref), self.digest, str(self.start),
                         _values(self.env), ",".join(_hex(f) for f in self.files),
                         _values(self.idents)]).encode("ascii")

    @classmethod
    def parse(cls, line: bytes) -> Entry:
        """The entry of one line; ValueError when it is not one."""
        git_dir, ref, digest, start, env, files, idents = line.decode("ascii").split(" ")
        if not start.isdigit() or not is_object_id(digest.encode("ascii")):
            raise ValueError("not an entry")
        values = _unvalues(idents)
        if len(values) != len(IDENT_KEYS):
            raise ValueError("not an entry")
        return cls(_unhex(git_dir), _unhex(ref), digest, int(start), _unvalues(env),
                   tuple(_unhex(f) for f in files.split(",")) if files else (), values)

    def key(self) -> tuple[object, ...]:
        return (self.git_dir, self.ref, self.digest, self.start, self.env, self.files,
                self.idents)

    def ident(self, key: str) -> str | None:
        """A remembered identity value (a key of IDENT_KEYS), as config_get would give it."""
        return self.idents[IDENT_KEYS.index(key)] if key in IDENT_KEYS else None


def _values(values: tuple[str | None, ...]) -> str:
    return ",".join("-" if v is None else _hex(v) for v in values)


def _unvalues(text: str) -> tuple[str | None, ...]:
    return tuple(None if v == "-" else _unhex(v) for v in text.split(","))


def _hex(text: str) -> str:
    return text.encode("utf-8", "surrogateescape").hex()


def _unhex(text: str) -> str:
    return bytes.fromhex(text).decode("utf-8", "surrogateescape")


def refs_file(common_dir: str) -> str:
    return os.path.join(common_dir, "convoy", "cache", "refs")


def _environment() -> tuple[str | None, ...]:
    return tuple(os.environ.get(name) for name in RECORDED_ENV)


def _load_entries(common_dir: str) -> list[Entry]:
    try:
        with open(refs_file(common_dir), "rb") as fh:
            data = fh.read(1 << 20)
    except OSError:
        return []
    head, _, body = data.partition(b"\n")
    if head != MAGIC + hashlib.sha256(body).hexdigest().encode("ascii"):
        return []
    lines = body.split(b"\n")
    if lines[0] != b"%d" % FORMAT or lines[-1] != b"":
        return []
    try:
        return [Entry.parse(line) for line in lines[1:-1]]
    except (ValueError, UnicodeDecodeError):
        return []


def recall(place: Place) -> str | None:
    """The state ref's name a full read used here, if nothing it depended on changed."""
    entry = recall_entry(place)
    return entry.ref if entry is not None else None


def recall_entry(place: Place) -> Entry | None:
    """What a full read remembered here, if nothing it depended on changed."""
    if not plain_environment():
        return None
    git_dir = os.path.realpath(place.git_dir)
    for entry in _load_entries(place.common_dir):
        if entry.git_dir != git_dir or entry.env != _environment():
            continue
        if not valid_ref_name(entry.ref) or entry.start > len(entry.files):
            return None
        # The recorded list starts with the files libgit2 was asked for; includes follow.
        got = config_digest(list(entry.files[:entry.start]), os.environ.get("HOME"))
        if got is None or tuple(got[0]) != entry.files or got[1] != entry.digest:
            return None
        return entry
    return None


def record(place: Place, config_files: list[str],
           resolve: Callable[[], tuple[str | None, tuple[str | None, ...]]]) -> None:
    """Remember the state ref's name and the identity values for this git dir:
    `config_files` are the files libgit2 reads, `resolve()` reads (name, IDENT_KEYS' values)
    afresh. They are kept only if the files held the same bytes before and after they were
    read, so no edit can slip between."""
    if not plain_environment():
        return
    config_files = list(dict.fromkeys(config_files))  # once each: `start` counts them
    home = os.environ.get("HOME")
    before = config_digest(config_files, home)
    ref, idents = resolve()
    after = config_digest(config_files, home)
    if before is None or before != after or not valid_ref_name(ref) \
            or len(idents) != len(IDENT_KEYS):
        return
    assert isinstance(ref, str)
    git_dir = os.path.realpath(place.git_dir)
    entry = Entry(git_dir, ref, before[1], len(config_files), _environment(),
                  tuple(before[0]), idents)
    entries = _load_entries(place.common_dir)
    if any(e.key() == entry.key() for e in entries):
        return
    entries = [e for e in entries if e.git_dir != git_dir][-(MAX_ENTRIES - 1):] + [entry]
    body = b"%d\n" % FORMAT + b"".join(e.line() + b"\n" for e in entries)
    write_atomically(refs_file(place.common_dir),
                     MAGIC + hashlib.sha256(body).hexdigest().encode("ascii") + b"\n" + body)


def write_atomically(path: str, data: bytes) -> None:
    """Complete or absent, never half written; a cache that cannot be written costs speed."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError:
        if os.path.exists(tmp):
            os.unlink(tmp)


def state_commit(start: str | None = None) -> tuple[Place, str] | None:
    """Where the state ref points for a command run in `start` (the current folder), read
    without pygit2; None whenever a full read is needed to know."""
    found = state_entry(start)
    return (found[0], found[2]) if found is not None else None


def state_entry(start: str | None = None) -> tuple[Place, Entry, str] | None:
    """The repository, what is remembered for it, and the state commit (as state_commit)."""
    if not plain_environment():
        return None
    place = find_repository(os.getcwd() if start is None else start)
    if place is None:
        return None
    entry = recall_entry(place)
    if entry is None:
        return None
    commit = read_ref(place, entry.ref)
    return (place, entry, commit) if commit is not None else None

"""Git objects read and written as files under .git/objects, without pygit2.

A `bead create` spends most of its time importing pygit2 (about 90 ms here, more than the
120 ms a create may take): the write itself touches a commit, five small trees, the
convoy.yaml blob and one new file. This module reads such objects from loose files and
version-2 pack indexes (offset and ref deltas included) and writes new ones as loose files,
in the formats git documents (gitformat-pack, gitrepository-layout), so a quick create
(gitconvoy/state/quickwrite.py) needs nothing heavier than zlib and hashlib.

A read with no cache (gitconvoy.state.treeload) reads every file of the state tree through
`read_bulk`: packs first, each index loaded once into a table (a lookup is a dict get, not a
search), a whole object inflated in one zlib call, about 4 µs a blob where pygit2 takes 9
(and 90 ms to import).

Anything unusual is "not here" (KeyError) or `Unsure`, never a guess: alternates, SHA-256
repositories, a shared repository's permissions, a damaged pack. The caller then takes the
full path through pygit2, which knows all of git.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import re
import struct
import zlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

# git's object type numbers, as packs store them (pygit2.GIT_OBJECT_*; a test keeps them equal).
COMMIT, TREE, BLOB, TAG = 1, 2, 3, 4
_NAMES = {COMMIT: b"commit", TREE: b"tree", BLOB: b"blob", TAG: b"tag"}
_TYPES = {name: number for number, name in _NAMES.items()}
_OFS_DELTA, _REF_DELTA = 6, 7
MAX_DELTA_CHAIN = 10_000  # git's own chains stop at 4,095 (pack.depth)
TREE_MODE, FILE_MODE = 0o40000, 0o100644
# A pack index with more objects than this is searched, not loaded whole into a table for a
# bulk read: a table costs ~0.1 µs an object to build, a search ~2 µs a lookup (a state
# inside a big project's pack).
DICT_MAX = 1 << 20


class Unsure(Exception):
    """This repository keeps objects in a way this module does not read: use pygit2."""


class Entry:
    """One tree entry, with the attributes of pygit2's that state reads use."""

    __slots__ = ("name", "id", "filemode")

    def __init__(self, name: str, oid: str, filemode: int) -> None:
        self.name, self.id, self.filemode = name, oid, filemode

    @property
    def type_str(self) -> str:
        if self.filemode == TREE_MODE:
            return "tree"
        return "commit" if self.filemode == 0o160000 else "blob"


class Tree:
    """A tree object's entries in their stored order; `tree["a/b/c"]` walks subtrees."""

    def __init__(self, objects: ObjectFiles, oid: str, entries: list[Entry]) -> None:
        self.objects, self.id, self.entries = objects, oid, entries
        self._by_name = {e.name: e for e in entries}

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, path: str) -> bool:
        try:
            self[path]
        except KeyError:
            return False
        return True

    def __getitem__(self, path: str) -> Entry:
        head, _, rest = path.partition("/")
        entry = self._by_name[head]
        if not rest:
            return entry
        if entry.filemode != TREE_MODE:
            raise KeyError(path)
        return self.objects.tree(entry.id)[rest]


class ObjectFiles:
    """The object database of one repository, as files."""

    def __init__(self, objects_dir: str) -> None:
        self.dir = objects_dir
        info = os.path.join(objects_dir, "info")
        if os.path.exists(os.path.join(info, "alternates")):
            raise Unsure("alternates")
        self._packs: list[_Pack] | None = None
        self.odb = self  # pygit2's `repo.odb`: state reads call read_header/read on it
        self.written: list[str] = []

    # --- reading ---------------------------------------------------------------------------

    def read(self, oid: str) -> tuple[int, bytes]:
        """(type, bytes) of an object; KeyError when this database does not hold it."""
        if not isinstance(oid, str) or len(oid) != 40:
            raise KeyError(oid)
        loose = os.path.join(self.dir, oid[:2], oid[2:])
        try:
            with open(loose, "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            raw = None
        except OSError as exc:
            raise Unsure(f"{loose}: {exc}") from None
        if raw is not None:
            return _loose(raw, oid)
        binary = bytes.fromhex(oid)
        for pack in self.packs():
            found = pack.find(binary)
            if found is not None:
                return pack.read_at(found, self)
        raise KeyError(oid)

    def read_header(self, oid: str) -> tuple[int, int]:
        """(type, size) without inflating the object: the state is untrusted, and a file's
        size is checked against its cap before it is read (a few KB of zlib can stand for a
        gigabyte). Loose: the first bytes of the stream; packed: the entry's header, and for
        a delta the target size at the head of its data and the type at the chain's end."""
        if not isinstance(oid, str) or len(oid) != 40:
            raise KeyError(oid)
        loose = os.path.join(self.dir, oid[:2], oid[2:])
        try:
            with open(loose, "rb") as fh:
                raw = fh.read(4096)
        except FileNotFoundError:
            raw = None
        except OSError as exc:
            raise Unsure(f"{loose}: {exc}") from None
        if raw is not None:
            try:
                head = zlib.decompressobj().decompress(raw, 64)
            except zlib.error:
                raise Unsure(f"loose object {oid} does not inflate") from None
            kind, _, size = head.partition(b"\0")[0].partition(b" ")
            if kind not in _TYPES or not size.isdigit() or b"\0" not in head:
                raise Unsure(f"loose object {oid} has a bad header")
            return _TYPES[kind], int(size)
        binary = bytes.fromhex(oid)
        for pack in self.packs():
            found = pack.find(binary)
            if found is not None:
                try:
                    return pack.header_at(found, self)
                except IndexError:
                    raise Unsure(f"{pack.base}.pack: an object runs past its end") from None
        raise KeyError(oid)

    def tree(self, oid: str) -> Tree:
        kind, data = self.read(oid)
        if kind != TREE:
            raise KeyError(oid)
        return Tree(self, oid, parse_tree(data))

    def commit_tree(self, oid: str) -> str:
        """The tree id of a commit."""
        kind, data = self.read(oid)
        if kind != COMMIT or not data.startswith(b"tree ") or data[45:46] != b"\n":
            raise Unsure(f"{oid} is not a commit")
        return data[5:45].decode("ascii")

    def read_bulk(self, oid: bytes, limit: int = -1) -> tuple[int, bytes]:
        """`read` for a reader of thousands of objects: the id as 20 bytes, packs first
        through each index's table, the header read and a whole object inflated inline;
        Unsure when the object is over `limit` bytes (-1: any size), which for a whole object
        is known before it is inflated. KeyError when this database does not hold it."""
        for pack in self.packs():
            at = pack.table()(oid)
            if at is None:
                continue
            data = pack._data()
            try:
                byte = data[at]
                kind = (byte >> 4) & 7
                size = byte & 15
                shift = 4
                pos = at + 1
                while byte & 0x80:
                    byte = data[pos]
                    pos += 1
                    size |= (byte & 0x7F) << shift
                    shift += 7
            except IndexError:
                raise Unsure(f"{pack.base}.pack: an object header past its end") from None
            if kind not in _NAMES:  # a delta: its chain applied by read_at
                kind, content = pack.read_at(at, self)
                if 0 <= limit < len(content):
                    raise Unsure(f"{oid.hex()} is {len(content)} bytes, over {limit}")
                return kind, content
            if 0 <= limit < size:
                raise Unsure(f"{oid.hex()} is {size} bytes, over {limit}")
            # A stream is never longer than its content and zlib's framing (stored blocks).
            try:
                out = zlib.decompress(pack.view()[pos:pos + size + 64 + (size >> 8)])
            except zlib.error:
                out = b""
            return kind, out if len(out) == size else pack._inflate(pos, size)
        kind, content = self.read(oid.hex())  # loose
        if 0 <= limit < len(content):
            raise Unsure(f"{oid.hex()} is {len(content)} bytes, over {limit}")
        return kind, content

    def packs(self) -> list[_Pack]:
        if self._packs is None:
            folder = os.path.join(self.dir, "pack")
            try:
                names = sorted(os.listdir(folder))
            except FileNotFoundError:
                names = []
            self._packs = [_Pack(os.path.join(folder, n[:-4])) for n in names
                           if n.endswith(".idx") and n[:-4] + ".pack" in names]
        return self._packs

    # --- writing ---------------------------------------------------------------------------

    def write(self, kind: int, data: bytes) -> str:
        """Store one object as a loose file (complete or absent: written under a temporary
        name, then linked into place) and return its id."""
        header = _NAMES[kind] + b" %d\0" % len(data)
        oid = hashlib.sha1(header + data).hexdigest()
        folder = os.path.join(self.dir, oid[:2])
        path = os.path.join(folder, oid[2:])
        if os.path.exists(path):
            return oid
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f"tmp_obj_{os.getpid()}_{oid[2:10]}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            os.write(fd, zlib.compress(header + data))
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # the same bytes, written by another process meanwhile
        finally:
            os.unlink(tmp)
        self.written.append(oid)
        return oid


def parse_tree(data: bytes) -> list[Entry]:
    entries: list[Entry] = []
    at, end = 0, len(data)
    while at < end:
        space = data.index(b" ", at)
        nul = data.index(b"\0", space)
        if nul + 21 > end:
            raise Unsure("a tree cut short")
        mode = int(data[at:space], 8)
        name = data[space + 1:nul].decode("utf-8", "surrogateescape")
        entries.append(Entry(name, data[nul + 1:nul + 21].hex(), mode))
        at = nul + 21
    return entries


_ENTRY = re.compile(rb"([0-7]{5,6}) ([^\0]+)\0(.{20})", re.DOTALL)
_ENTRIES = re.compile(rb"(?:[0-7]{5,6} [^\0]+\0.{20})*+", re.DOTALL)


def tree_entries(data: bytes) -> list[tuple[bytes, bytes, bytes]]:
    """`parse_tree` for a bulk read: (mode, name, 20-byte id) as written (`40000`,
    `100644`, …), by two regular expressions; Unsure for a tree that is not all entries."""
    if _ENTRIES.fullmatch(data) is None:
        raise Unsure("a tree that does not parse")
    return _ENTRY.findall(data)


def tree_bytes(entries: list[Entry]) -> bytes:
    """A tree object in git's order: by name, a folder's name compared as if it ended in '/'."""
    def key(e: Entry) -> bytes:
        name = e.name.encode("utf-8", "surrogateescape")
        return name + b"/" if e.filemode == TREE_MODE else name

    return b"".join(b"%o %s\0" % (e.filemode, e.name.encode("utf-8", "surrogateescape"))
                    + bytes.fromhex(e.id) for e in sorted(entries, key=key))


def _loose(raw: bytes, oid: str) -> tuple[int, bytes]:
    try:
        data = zlib.decompress(raw)
    except zlib.error:
        raise Unsure(f"loose object {oid} does not inflate") from None
    nul = data.find(b"\0")
    kind, _, size = data[:nul].partition(b" ")
    if kind not in _TYPES or not size.isdigit() or int(size) != len(data) - nul - 1:
        raise Unsure(f"loose object {oid} has a bad header")
    return _TYPES[kind], data[nul + 1:]


class _Pack:
    """One pack and its version-2 index, mapped into memory when first asked."""

    def __init__(self, base: str) -> None:
        self.base = base
        self._idx: mmap.mmap | None = None
        self._pack: mmap.mmap | None = None
        self._view: memoryview | None = None
        self._table: Callable[[bytes], int | None] | None = None
        self._count = 0

    def _open(self) -> mmap.mmap:
        if self._idx is None:
            with open(self.base + ".idx", "rb") as fh:
                idx = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            if idx[:8] != b"\xfftOc\x00\x00\x00\x02" or len(idx) < 8 + 1024:
                raise Unsure(f"{self.base}.idx is not a version-2 pack index")
            self._count = int.from_bytes(idx[8 + 1020:8 + 1024], "big")
            if len(idx) < 8 + 1024 + self._count * 28:
                raise Unsure(f"{self.base}.idx is cut short")
            self._idx = idx
        return self._idx

    def find(self, binary: bytes) -> int | None:
        """The pack offset of an object, by binary search within its first byte's range."""
        idx = self._open()
        first = binary[0]
        lo = int.from_bytes(idx[8 + 4 * (first - 1):8 + 4 * first], "big") if first else 0
        hi = int.from_bytes(idx[8 + 4 * first:8 + 4 * first + 4], "big")
        names = 8 + 1024
        while lo < hi:
            mid = (lo + hi) // 2
            found = idx[names + 20 * mid:names + 20 * mid + 20]
            if found < binary:
                lo = mid + 1
            elif found > binary:
                hi = mid
            else:
                return self._offset(idx, mid)
        return None

    def table(self) -> Callable[[bytes], int | None]:
        """A lookup for many reads: the whole index as a dict (built once), or `find` for
        an index too big to load whole."""
        if self._table is None:
            idx = self._open()
            count = self._count
            if count > DICT_MAX:
                self._table = self.find
            else:
                names = 8 + 1024
                ids = [idx[at:at + 20] for at in range(names, names + 20 * count, 20)]
                offsets = struct.unpack_from(f">{count}I", idx, names + 24 * count)
                if any(o & 0x80000000 for o in offsets):  # a pack over 2 GiB
                    offsets = tuple(self._offset(idx, n) for n in range(count))
                self._table = dict(zip(ids, offsets, strict=True)).get
        return self._table

    def view(self) -> memoryview:
        if self._view is None:
            self._view = memoryview(self._data())
        return self._view

    def _offset(self, idx: mmap.mmap, position: int) -> int:
        table = 8 + 1024 + self._count * 24
        small = int.from_bytes(idx[table + 4 * position:table + 4 * position + 4], "big")
        if not small & 0x80000000:
            return small
        large = table + 4 * self._count + 8 * (small & 0x7FFFFFFF)
        return int.from_bytes(idx[large:large + 8], "big")

    def _data(self) -> mmap.mmap:
        if self._pack is None:
            with open(self.base + ".pack", "rb") as fh:
                self._pack = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            if self._pack[:4] != b"PACK":
                raise Unsure(f"{self.base}.pack is not a pack")
        return self._pack

    def read_at(self, offset: int, objects: ObjectFiles) -> tuple[int, bytes]:
        """The object at `offset`, its delta chain applied (bases first); Unsure for one
        whose header or delta runs past its end (a damaged pack)."""
        try:
            return self._read_at(offset, objects)
        except IndexError:
            raise Unsure(f"{self.base}.pack: an object runs past its end") from None

    def _read_at(self, offset: int, objects: ObjectFiles) -> tuple[int, bytes]:
        deltas: list[bytes] = []
        for _ in range(MAX_DELTA_CHAIN):
            kind, size, at = self._header(offset)
            if kind in _NAMES:
                data = self._inflate(at, size)
                for delta in reversed(deltas):
                    data = apply_delta(data, delta)
                return kind, data
            if kind == _OFS_DELTA:
                pack = self._data()
                byte = pack[at]
                back = byte & 0x7F
                at += 1
                while byte & 0x80:
                    byte = pack[at]
                    back = ((back + 1) << 7) | (byte & 0x7F)
                    at += 1
                deltas.append(self._inflate(at, size))
                offset -= back
            elif kind == _REF_DELTA:
                base = self._data()[at:at + 20].hex()
                deltas.append(self._inflate(at + 20, size))
                kind, data = objects.read(base)
                for delta in reversed(deltas):
                    data = apply_delta(data, delta)
                return kind, data
            else:
                raise Unsure(f"{self.base}.pack: object type {kind} at {offset}")
        raise Unsure(f"{self.base}.pack: a delta chain longer than {MAX_DELTA_CHAIN}")

    def header_at(self, offset: int, objects: ObjectFiles) -> tuple[int, int]:
        """(type, size) of the object at `offset`, inflating only a delta's first bytes."""
        size: int | None = None
        for _ in range(MAX_DELTA_CHAIN):
            kind, stored, at = self._header(offset)
            if kind in _NAMES:
                return kind, stored if size is None else size
            if kind == _OFS_DELTA:
                pack = self._data()
                byte = pack[at]
                back = byte & 0x7F
                at += 1
                while byte & 0x80:
                    byte = pack[at]
                    back = ((back + 1) << 7) | (byte & 0x7F)
                    at += 1
                size = self._target_size(at) if size is None else size
                offset -= back
            elif kind == _REF_DELTA:
                size = self._target_size(at + 20) if size is None else size
                return objects.read_header(self._data()[at:at + 20].hex())[0], size
            else:
                raise Unsure(f"{self.base}.pack: object type {kind} at {offset}")
        raise Unsure(f"{self.base}.pack: a delta chain longer than {MAX_DELTA_CHAIN}")

    def _target_size(self, at: int) -> int:
        """The size a delta makes: its second varint, in the first bytes of its stream."""
        try:
            head = zlib.decompressobj().decompress(self._data()[at:at + 256], 32)
        except zlib.error:
            raise Unsure(f"{self.base}.pack: a delta does not inflate") from None
        try:
            _, pos = _varint(head, 0)
            return _varint(head, pos)[0]
        except IndexError:
            raise Unsure(f"{self.base}.pack: a delta header cut short") from None

    def _header(self, offset: int) -> tuple[int, int, int]:
        pack = self._data()
        byte = pack[offset]
        kind, size, shift, at = (byte >> 4) & 7, byte & 15, 4, offset + 1
        while byte & 0x80:
            byte = pack[at]
            size |= (byte & 0x7F) << shift
            shift += 7
            at += 1
        return kind, size, at

    def _inflate(self, at: int, size: int) -> bytes:
        pack = self._data()
        inflater = zlib.decompressobj()
        out = b""
        chunk = max(size + 64, 4096)
        while not inflater.eof and at < len(pack):
            try:
                out += inflater.decompress(pack[at:at + chunk], size + 1 - len(out))
            except zlib.error:
                raise Unsure(f"{self.base}.pack: an object does not inflate") from None
            at += chunk
            if len(out) > size:
                break
            if inflater.unconsumed_tail:
                raise Unsure(f"{self.base}.pack: an object larger than it says")
        if len(out) != size or not inflater.eof:
            raise Unsure(f"{self.base}.pack: an object does not inflate to its size")
        return out


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def apply_delta(base: bytes, delta: bytes) -> bytes:
    """A git delta (gitformat-pack, "Deltified representation") applied to its base."""
    source_size, at = _varint(delta, 0)
    target_size, at = _varint(delta, at)
    if source_size != len(base):
        raise Unsure("a delta for a base of another size")
    out = bytearray()
    end = len(delta)
    while at < end:
        op = delta[at]
        at += 1
        if op & 0x80:
            offset = size = 0
            for bit in range(4):
                if op & (1 << bit):
                    offset |= delta[at] << (8 * bit)
                    at += 1
            for bit in range(3):
                if op & (0x10 << bit):
                    size |= delta[at] << (8 * bit)
                    at += 1
            size = size or 0x10000
            if offset + size > len(base):
                raise Unsure("a delta copies beyond its base")
            out += base[offset:offset + size]
        elif op:
            out += delta[at:at + op]
            at += op
        else:
            raise Unsure("a delta with a reserved opcode")
    if len(out) != target_size:
        raise Unsure("a delta that does not make its stated size")
    return bytes(out)

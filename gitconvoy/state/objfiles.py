"""Git objects read straight from the files under .git, without pygit2: a cold read's walk.

A read with no cache opens every file of the state tree. Through pygit2 that costs its
import (~90 ms) and ~9 µs a blob; here a blob is one dict lookup in the pack index and one
zlib call, and importing this module costs nothing beyond zlib. It reads what `git gc`
and the store leave: loose objects, and packs with a version 2 index (SHA-1), whole or
deltified (offset and reference deltas).

It is an accelerator like gitconvoy.state.reffiles, never a second authority: anything it
does not read exactly raises Unreadable, and the caller takes the full path (pygit2). So
do a repository it does not know how to read in full (alternates, another hash, an index
version it does not know), an object it cannot find, and one that does not inflate to the
size its header gives.
"""

from __future__ import annotations

import mmap
import os
import re
import struct
import zlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

COMMIT, TREE, BLOB, TAG = 1, 2, 3, 4
_OFS_DELTA, _REF_DELTA = 6, 7
MAX_CHAIN = 10_000  # deltas on deltas: git writes at most 50; a loop in a bad pack stops here
_BASES = 256  # inflated delta bases kept while reading (a chain is read newest first)
_IDX_MAGIC = b"\377tOc\x00\x00\x00\x02"
# A pack index with more objects than this is searched, not loaded whole: a dict costs
# ~0.1 µs an object to build, a search ~2 µs a lookup (a state inside a big project's pack).
DICT_MAX = 1 << 20


class Unreadable(Exception):
    """Not read here: the caller reads the state through pygit2 instead."""


def _mapped(path: str) -> mmap.mmap:
    """A file's bytes, paged in as they are read (a project's pack may be gigabytes)."""
    with open(path, "rb") as fh:
        try:
            return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            raise Unreadable(f"{path}: empty") from None


class _Pack:
    """One pack and its index. Ids are found through a dict built on first use, or, in a
    pack too big to index whole for one read, by a binary search of the index."""

    __slots__ = ("idx", "count", "fanout", "ids_at", "offsets_at", "large_at", "find",
                 "data", "view", "path")

    def __init__(self, idx_path: str, pack_path: str) -> None:
        idx = _mapped(idx_path)
        if idx[:8] != _IDX_MAGIC or len(idx) < 8 + 1024 + 40:
            raise Unreadable(f"{idx_path}: not a version 2 pack index")
        self.fanout = struct.unpack_from(">256I", idx, 8)
        self.count = count = self.fanout[255]
        self.ids_at = 8 + 1024
        self.offsets_at = self.ids_at + count * 24  # after the ids and their CRCs
        self.large_at = self.offsets_at + count * 4
        if len(idx) < self.large_at + 40:
            raise Unreadable(f"{idx_path}: cut off")
        self.idx = idx
        self.data = _mapped(pack_path)
        self.view = memoryview(self.data)
        if self.data[:4] != b"PACK" or self.data[4:8] not in (b"\0\0\0\2", b"\0\0\0\3"):
            raise Unreadable(f"{pack_path}: not a pack of version 2 or 3")
        self.path = pack_path
        # find(oid): where the object lies in the pack, or None when it does not hold it
        self.find: Callable[[bytes], int | None] = self._first_find

    def _first_find(self, oid: bytes) -> int | None:
        """Build the table (or settle on searching the index), then find."""
        self.find = self._search if self.count > DICT_MAX else self._build().get
        return self.find(oid)

    def _build(self) -> dict[bytes, int]:
        idx, ids_at = self.idx, self.ids_at
        ids = [idx[at:at + 20] for at in range(ids_at, ids_at + self.count * 20, 20)]
        offsets = struct.unpack_from(f">{self.count}I", idx, self.offsets_at)
        if any(o & 0x80000000 for o in offsets):  # a pack over 2 GiB
            offsets = tuple(self._real(o) for o in offsets)
        return dict(zip(ids, offsets, strict=True))

    def _search(self, oid: bytes) -> int | None:
        idx, ids_at = self.idx, self.ids_at
        first = oid[0]
        lo = self.fanout[first - 1] if first else 0
        hi = self.fanout[first]
        while lo < hi:
            mid = (lo + hi) // 2
            at = ids_at + mid * 20
            found = idx[at:at + 20]
            if found == oid:
                return self._real(struct.unpack_from(">I", idx, self.offsets_at + mid * 4)[0])
            if found < oid:
                lo = mid + 1
            else:
                hi = mid
        return None

    def _real(self, offset: int) -> int:
        """An offset of the index's 32-bit table, or of its 64-bit one for big packs."""
        if not offset & 0x80000000:
            return offset
        at = self.large_at + (offset & 0x7FFFFFFF) * 8
        if at + 8 > len(self.idx) - 40:
            raise Unreadable(f"{self.path}: a large offset outside the index")
        return int.from_bytes(self.idx[at:at + 8], "big")


class ObjectFiles:
    """The object database of one repository, read from its files."""

    def __init__(self, objects_dir: str, packs: list[_Pack]) -> None:
        self.objects_dir = objects_dir
        self.packs = packs
        self._bases: dict[tuple[int, int], tuple[int, bytes]] = {}

    @classmethod
    def open(cls, common_dir: str) -> ObjectFiles:
        """The objects of the repository whose common git dir is `common_dir`."""
        objects_dir = os.path.join(common_dir, "objects")
        if os.path.exists(os.path.join(objects_dir, "info", "alternates")):
            raise Unreadable("objects borrowed from another repository (alternates)")
        pack_dir = os.path.join(objects_dir, "pack")
        try:
            names = sorted(os.listdir(pack_dir))
        except FileNotFoundError:
            names = []
        except OSError as exc:
            raise Unreadable(str(exc)) from None
        packs = []
        for name in names:
            if name.endswith(".idx") and name.startswith("pack-"):
                pack = os.path.join(pack_dir, name[:-4] + ".pack")
                try:
                    packs.append(_Pack(os.path.join(pack_dir, name), pack))
                except FileNotFoundError:
                    continue  # an index whose pack is gone (being replaced): libgit2 skips it
                except (OSError, ValueError, TypeError) as exc:
                    raise Unreadable(str(exc)) from None
        return cls(objects_dir, packs)

    def read(self, oid: bytes, limit: int = -1) -> tuple[int, bytes]:
        """(type, content) of the object with this 20-byte id; Unreadable when it is
        missing, damaged, or bigger than `limit` bytes (-1: any size)."""
        for pack in self.packs:
            at = pack.find(oid)
            if at is None:
                continue
            data = pack.data
            try:  # a whole object's header, inline: a cold read asks 10,000s of times
                byte = data[at]
                kind = (byte >> 4) & 7
                if kind not in _NAMES:
                    return self._delta(pack, at, limit)
                size = byte & 15
                shift = 4
                pos = at + 1
                while byte & 0x80:
                    byte = data[pos]
                    pos += 1
                    size |= (byte & 0x7F) << shift
                    shift += 7
            except IndexError:
                raise Unreadable(f"{pack.path}: an object header runs past its end") from None
            if 0 <= limit < size:
                raise Unreadable(f"{pack.path}: the object at {at} is {size} bytes")
            # A stream is never longer than its content and zlib's framing (stored blocks).
            try:
                out = zlib.decompress(pack.view[pos:pos + size + 64 + (size >> 8)])
            except zlib.error:
                out = b""
            return kind, out if len(out) == size else _inflate(pack, pos, size)
        return self._loose(oid, limit)

    def _loose(self, oid: bytes, limit: int) -> tuple[int, bytes]:
        name = oid.hex()
        try:
            with open(os.path.join(self.objects_dir, name[:2], name[2:]), "rb") as fh:
                raw = fh.read()
        except OSError:
            raise Unreadable(f"object {name} not found") from None
        inflater = zlib.decompressobj()
        try:
            head = inflater.decompress(raw, 64)
            end = head.find(b"\0")
            if end < 0:
                raise Unreadable(f"object {name}: no header")
            kind_name, _, size_text = head[:end].partition(b" ")
            kind = _KINDS.get(kind_name)
            if kind is None or not size_text.isdigit():
                raise Unreadable(f"object {name}: unknown header")
            size = int(size_text)
            if 0 <= limit < size:
                raise Unreadable(f"object {name}: {size} bytes, over {limit}")
            body = head[end + 1:] + inflater.decompress(inflater.unconsumed_tail)
        except zlib.error:
            raise Unreadable(f"object {name}: does not inflate") from None
        if len(body) != size or not inflater.eof:
            raise Unreadable(f"object {name}: not {size} bytes")
        return kind, body

    def _delta(self, pack: _Pack, at: int, limit: int) -> tuple[int, bytes]:
        """A deltified object: its chain walked down to a whole base (or one inflated
        already), then each delta applied back up."""
        chain: list[bytes] = []
        while True:
            cached = self._bases.get((id(pack), at))
            if cached is not None:
                kind, content = cached
                break
            if len(chain) > MAX_CHAIN:
                raise Unreadable(f"{pack.path}: a delta chain without end at {at}")
            kind, size, pos = _header(pack.data, at)
            if kind == _OFS_DELTA:
                back, pos = _back_offset(pack.data, pos)
                chain.append(_inflate(pack, pos, -1))
                if not 0 < back < at:
                    raise Unreadable(f"{pack.path}: a delta base outside the pack at {at}")
                at -= back
                continue
            if kind == _REF_DELTA:
                base = bytes(pack.data[pos:pos + 20])
                chain.append(_inflate(pack, pos + 20, -1))
                found = next(((p, p.find(base)) for p in self.packs
                              if p.find(base) is not None), None)
                if found is None:
                    kind, content = self._loose(base, -1)
                    break
                pack, at = found  # type: ignore[assignment]
                continue
            if kind not in _NAMES:
                raise Unreadable(f"{pack.path}: an object of type {kind} at {at}")
            content = _inflate(pack, pos, size)
            if len(self._bases) >= _BASES:
                self._bases.clear()
            self._bases[(id(pack), at)] = (kind, content)
            break
        while chain:
            content = apply_delta(content, chain.pop(), limit)
        return kind, content


_KINDS = {b"commit": COMMIT, b"tree": TREE, b"blob": BLOB, b"tag": TAG}
_NAMES = {v: k for k, v in _KINDS.items()}


def _header(data: bytes, at: int) -> tuple[int, int, int]:
    """A packed object's type and size, and where its data starts."""
    try:
        byte = data[at]
        kind = (byte >> 4) & 7
        size = byte & 15
        shift = 4
        at += 1
        while byte & 0x80:
            byte = data[at]
            at += 1
            size |= (byte & 0x7F) << shift
            shift += 7
    except IndexError:
        raise Unreadable("an object header runs past the pack") from None
    return kind, size, at


def _back_offset(data: bytes, at: int) -> tuple[int, int]:
    try:
        byte = data[at]
        at += 1
        back = byte & 0x7F
        while byte & 0x80:
            byte = data[at]
            at += 1
            back = ((back + 1) << 7) | (byte & 0x7F)
    except IndexError:
        raise Unreadable("a delta offset runs past the pack") from None
    return back, at


def _inflate(pack: _Pack, at: int, size: int) -> bytes:
    """The zlib stream at `at`, which must inflate to `size` bytes (-1: a delta, any)."""
    if size >= 0:
        try:
            out = zlib.decompress(pack.view[at:at + size + 64 + (size >> 8)])
        except zlib.error:
            out = None
        if out is not None and len(out) == size:
            return out
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(pack.view[at:])
    except zlib.error:
        raise Unreadable(f"{pack.path}: the object at {at} does not inflate") from None
    if not inflater.eof or (size >= 0 and len(out) != size):
        raise Unreadable(f"{pack.path}: the object at {at} is cut off or not {size} bytes")
    return out


def _varint(delta: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = delta[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def apply_delta(base: bytes, delta: bytes, limit: int = -1) -> bytes:
    """git's delta format: the base's size, the result's size, then copies from the base
    and inserted bytes."""
    try:
        base_size, at = _varint(delta, 0)
        size, at = _varint(delta, at)
        if base_size != len(base):
            raise Unreadable("a delta for another base")
        if 0 <= limit < size:
            raise Unreadable(f"{size} bytes, over {limit}")
        parts = []
        end = len(delta)
        while at < end:
            op = delta[at]
            at += 1
            if op & 0x80:
                offset = length = 0
                for bit, shift in ((1, 0), (2, 8), (4, 16), (8, 24)):
                    if op & bit:
                        offset |= delta[at] << shift
                        at += 1
                for bit, shift in ((16, 0), (32, 8), (64, 16)):
                    if op & bit:
                        length |= delta[at] << shift
                        at += 1
                length = length or 0x10000
                if offset + length > base_size:
                    raise Unreadable("a delta copies past its base")
                parts.append(base[offset:offset + length])
            elif op:
                parts.append(delta[at:at + op])
                at += op
            else:
                raise Unreadable("a delta with a zero instruction")
    except IndexError:
        raise Unreadable("a delta runs past its end") from None
    out = b"".join(parts)
    if len(out) != size:
        raise Unreadable("a delta that does not give its size")
    return out


_ENTRY = re.compile(rb"([0-7]{5,6}) ([^\0]+)\0(.{20})", re.DOTALL)
_ENTRIES = re.compile(rb"(?:[0-7]{5,6} [^\0]+\0.{20})*+", re.DOTALL)


def tree_entries(data: bytes) -> list[tuple[bytes, bytes, bytes]]:
    """(mode, name, 20-byte id) of each entry of a tree object, in its order; modes and
    names as written (`40000`, `100644`, …)."""
    if _ENTRIES.fullmatch(data) is None:
        raise Unreadable("a tree this reader does not take")
    return _ENTRY.findall(data)


def commit_tree(data: bytes) -> bytes:
    """The 20-byte id of a commit's tree (its first header line)."""
    if not data.startswith(b"tree ") or data[45:46] != b"\n":
        raise Unreadable("a commit without a tree line")
    try:
        return bytes.fromhex(data[5:45].decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise Unreadable("a commit with a bad tree id") from None

"""Big writes go to one pack file, not to thousands of loose objects.

libgit2 writes every new object as a loose file: a 100,000-bead state written that way is
~104,000 files and 418 MB (a 4 KB block each), and the user's next `git commit` starts
`gc --auto` (it counts loose objects). A write of more than PACK_ABOVE files builds its
blobs and trees in memory instead and stores them as one pack with its index (pack format
version 2, no deltas: `git gc` may compress it further later), written under temporary
names in `objects/pack` and renamed into place, the index last, before the commit that
refers to them. Until the ref moves nothing refers to them, as with loose objects, so a
crash anywhere leaves at most an unreferenced pack, a pack without its index (which no
reader opens; git leaves the same when it dies there) or `tmp_*` files (which `git gc`
removes). Small writes stay loose: a pack per write would make as many files.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
import zlib
from typing import Any

import pygit2

from gitconvoy import faults

# A write of more files than this goes to a pack (a one-bead write makes ~7 objects).
PACK_ABOVE = 256

_TYPES = {"commit": 1, "tree": 2, "blob": 3}
_TREE_MODE = int(pygit2.GIT_FILEMODE_TREE)
_BLOB_MODE = int(pygit2.GIT_FILEMODE_BLOB)

Entry = tuple[bytes, int]  # (object id as 20 bytes, file mode)


class PackWriter:
    """Objects made in memory for one write, hashed as git hashes them, stored as one pack."""

    def __init__(self, objects_dir: str) -> None:
        self.folder = os.path.join(objects_dir, "pack")
        self.objects: dict[bytes, bytes] = {}  # id -> the pack entry (header + zlib data)

    def add(self, kind: str, data: bytes) -> bytes:
        header = f"{kind} {len(data)}".encode() + b"\0"
        oid = hashlib.sha1(header + data).digest()
        if oid not in self.objects:
            self.objects[oid] = _entry_header(_TYPES[kind], len(data)) + zlib.compress(data)
        return oid

    def tree(self, entries: dict[bytes, Entry]) -> bytes:
        """A tree object: entries in git's order (a folder sorts as if its name ended in
        `/`), each `<octal mode> <name>\\0<20-byte id>`."""
        names = sorted(entries, key=lambda n: n + b"/" if entries[n][1] == _TREE_MODE else n)
        body = b"".join(b"%o %s\0%s" % (entries[n][1], n, entries[n][0]) for n in names)
        return self.add("tree", body)

    def write(self) -> str:
        """Store every object as one pack in the repository; the pack's path."""
        folder = self.folder
        os.makedirs(folder, exist_ok=True)
        pack_tmp, checksum, index = self._write_pack(folder)
        idx_tmp = _temporary(folder, "tmp_idx_", _index(index, checksum))
        name = os.path.join(folder, f"pack-{checksum.hex()}")
        os.replace(pack_tmp, name + ".pack")
        faults.point("packs.before_index")
        os.replace(idx_tmp, name + ".idx")  # last: the pack is visible once its index is
        return name + ".pack"

    def _write_pack(self, folder: str) -> tuple[str, bytes, list[tuple[bytes, int, int]]]:
        digest = hashlib.sha1()
        index: list[tuple[bytes, int, int]] = []  # (id, crc32 of the entry, offset)
        fd, path = tempfile.mkstemp(prefix="tmp_pack_", dir=folder)
        with os.fdopen(fd, "wb") as fh:
            head = b"PACK" + struct.pack(">II", 2, len(self.objects))
            fh.write(head)
            digest.update(head)
            offset = len(head)
            for oid, entry in self.objects.items():
                fh.write(entry)
                digest.update(entry)
                index.append((oid, zlib.crc32(entry), offset))
                offset += len(entry)
            checksum = digest.digest()
            fh.write(checksum)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(path, 0o444)
        return path, checksum, index


def _entry_header(kind: int, size: int) -> bytes:
    """A pack entry's header: type and size, seven bits a byte after the first four."""
    out = bytearray([(kind << 4) | (size & 0x0F)])
    size >>= 4
    while size:
        out[-1] |= 0x80
        out.append(size & 0x7F)
        size >>= 7
    return bytes(out)


def _index(entries: list[tuple[bytes, int, int]], checksum: bytes) -> bytes:
    """The pack's index, version 2: fan-out table, sorted ids, CRCs, offsets, checksums."""
    entries = sorted(entries)
    fanout = [0] * 256
    for oid, _, _ in entries:
        fanout[oid[0]] += 1
    total = 0
    for byte in range(256):
        total += fanout[byte]
        fanout[byte] = total
    small: list[int] = []
    large: list[int] = []
    for _, _, offset in entries:
        if offset < 0x80000000:
            small.append(offset)
        else:
            small.append(0x80000000 | len(large))
            large.append(offset)
    body = b"".join([
        b"\xfftOc", struct.pack(">I", 2), struct.pack(">256I", *fanout),
        b"".join(oid for oid, _, _ in entries),
        struct.pack(f">{len(entries)}I", *(crc for _, crc, _ in entries)),
        struct.pack(f">{len(small)}I", *small), struct.pack(f">{len(large)}Q", *large),
        checksum,
    ])
    return body + hashlib.sha1(body).digest()


def _temporary(folder: str, prefix: str, data: bytes) -> str:
    fd, path = tempfile.mkstemp(prefix=prefix, dir=folder)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(path, 0o444)
    return path


def usable(repo: pygit2.Repository) -> bool:
    """Packs are written for SHA-1 repositories (a SHA-256 one keeps loose objects)."""
    try:
        object_format = repo.config["extensions.objectformat"]
    except (KeyError, pygit2.GitError):
        return True
    return str(object_format).lower() in ("", "sha1")


def apply_changes_packed(repo: pygit2.Repository, tree: pygit2.Tree | None,
                         changes: dict[str, bytes | None], objects_dir: str) -> pygit2.Oid:
    """`trees.apply_changes` for a big write: the same tree, its new objects in one pack
    in `objects_dir`."""
    writer = PackWriter(objects_dir)
    edits: dict[str, Entry | None] = {
        path: None if data is None else (writer.add("blob", data), _BLOB_MODE)
        for path, data in changes.items()
    }
    root = _apply(repo, writer, tree, edits)
    oid = root if root is not None else writer.tree({})
    writer.write()
    return pygit2.Oid(raw=oid)


def _apply(repo: pygit2.Repository, writer: PackWriter, tree: Any,
           edits: dict[str, Entry | None]) -> bytes | None:
    """The id of `tree` with `edits` applied (None when nothing is left in it); only the
    trees on changed paths are rewritten, as trees.apply_entries does."""
    entries: dict[bytes, Entry] = {}
    if tree is not None:
        entries = {e.raw_name: (e.id.raw, int(e.filemode)) for e in tree}
    below: dict[bytes, dict[str, Entry | None]] = {}
    for path, entry in edits.items():
        head, sep, rest = path.partition("/")
        name = head.encode()
        if sep:
            below.setdefault(name, {})[rest] = entry
        elif entry is None:
            entries.pop(name, None)
        else:
            entries[name] = entry
    for name, sub in below.items():
        existing = entries.get(name)
        subtree = repo[pygit2.Oid(raw=existing[0])] \
            if existing is not None and existing[1] == _TREE_MODE else None
        new = _apply(repo, writer, subtree, sub)
        if new is None:
            entries.pop(name, None)
        else:
            entries[name] = (new, _TREE_MODE)
    return writer.tree(entries) if entries else None

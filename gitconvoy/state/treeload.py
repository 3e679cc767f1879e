"""A full load of a state tree read from the object files (gitconvoy.state.objectfiles):
what snapshot.parse_all does through pygit2, for a read that has no cache and would
otherwise spend most of its time importing pygit2 and calling it once a file.

The walk is parse_all's: the kinds in order, each folder's entries in tree order, the same
depth limit, and every file parsed by snapshot.parse_object, so the load (objects,
their order, the broken files and their wording) is the one parse_all gives and the cache
written from it is the same file. What parse_all would name through pygit2 (a folder or a
gitlink in a file's place, a file over the size cap, an object it cannot find) is not
worded here: Unsure (or KeyError, for an object not there), and the caller reads the state
in full.
"""

from __future__ import annotations

from gitconvoy.errors import SchemaError
from gitconvoy.state import model
from gitconvoy.state.layout import KINDS, MAX_DEPTH, MAX_FILE_BYTES, kind_of_path
from gitconvoy.state.objectfiles import BLOB, TREE, ObjectFiles, Unsure, tree_entries
from gitconvoy.state.snapshot import (
    Loaded,
    missing_config,
    no_cycle_collector,
    not_a_folder,
    parse_config_bytes,
    parse_object,
)

_FOLDER = b"40000"
_FILES = (b"100644", b"100755", b"120000")  # what pygit2 reads as a blob's bytes


def _root(objects: ObjectFiles, oid: bytes) -> dict[str, tuple[bytes, bytes]]:
    """The root folder's entries by name (a name twice: not read here)."""
    found: dict[str, tuple[bytes, bytes]] = {}
    for mode, name, child in _entries(objects, oid):
        text = _name(name)
        if text in found:
            raise Unsure("a root folder with a name twice")
        found[text] = (mode, child)
    return found


def _entries(objects: ObjectFiles, oid: bytes) -> list[tuple[bytes, bytes, bytes]]:
    kind, data = objects.read_bulk(oid)
    if kind != TREE:
        raise Unsure("a folder that is not a tree")
    return tree_entries(data)


def _name(name: bytes) -> str:
    try:
        return name.decode("utf-8")
    except UnicodeDecodeError:
        raise Unsure("a file name that is not UTF-8") from None


def _blob(objects: ObjectFiles, mode: bytes, oid: bytes) -> bytes:
    if mode not in _FILES:
        raise Unsure("a gitlink in a file's place")
    kind, data = objects.read_bulk(oid, MAX_FILE_BYTES)
    if kind != BLOB:
        raise Unsure("a file that is not a blob")
    return data


def _walk(objects: ObjectFiles, oid: bytes, prefix: str, depth: int,
          out: list[tuple[str, bytes, bytes]]) -> None:
    """Every `*.yaml` entry below a folder that is not a folder, in tree order, as
    trees.walk_yaml gives them (names as pygit2 gives them, UTF-8)."""
    if depth > MAX_DEPTH:
        return
    for mode, name, child in _entries(objects, oid):
        if mode == _FOLDER:
            _walk(objects, child, f"{prefix}/{_name(name)}", depth + 1, out)
        elif name.endswith(b".yaml"):
            out.append((f"{prefix}/{_name(name)}", mode, child))
        elif mode not in _FILES and mode != b"160000":
            raise Unsure("an entry of a mode pygit2 reads otherwise")


def state_tree(objects: ObjectFiles, commit: str) -> bytes:
    """The tree id of a state commit."""
    return bytes.fromhex(objects.commit_tree(commit))


def load(objects: ObjectFiles, tree: bytes) -> Loaded:
    """Every object of the tree, parsed; Unsure or KeyError for anything parse_all would
    word through pygit2."""
    root = _root(objects, tree)
    errors: dict[str, SchemaError] = {}
    if "convoy.yaml" in root:
        config = parse_config_bytes(_blob(objects, *root["convoy.yaml"]))
    else:
        config = missing_config()
    if isinstance(config, SchemaError):
        errors["convoy.yaml"] = config
        config = model.Config()
    loaded: dict[str, dict] = {name: {} for name in KINDS}
    with no_cycle_collector():
        for name, spec in KINDS.items():
            if spec.folder not in root:
                continue
            mode, oid = root[spec.folder]
            if mode != _FOLDER:
                errors[spec.folder] = not_a_folder(name)
                continue
            files: list[tuple[str, bytes, bytes]] = []
            _walk(objects, oid, spec.folder, 0, files)
            kind = kind_of_path(f"{spec.folder}/")  # every path below starts so
            assert kind is not None
            found = loaded[name]
            for path, file_mode, blob in files:
                raw = _blob(objects, file_mode, blob)
                got = parse_object(kind, path, raw, path[path.rindex("/") + 1:-5])
                if isinstance(got, SchemaError):
                    errors[path] = got
                else:
                    found[got.id] = got
    return Loaded(tree.hex(), config, loaded, errors)

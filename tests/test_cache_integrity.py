"""The read cache in .git/convoy/cache is untrusted input, like the state branch itself.

Another process (or a disk error) can change or replace the file at any time. Whatever is
in it, a read serves exactly what a fresh parse of the state would give, or rebuilds the
cache; it never serves wrong data, never fails, and loading it never runs code.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import pickle
import random
from pathlib import Path

import pytest
from conftest import convoy, git_convoy, ok
from test_bad_input import plant

from gitconvoy.state import cache, model, rows
from gitconvoy.state.layout import object_path
from gitconvoy.state.snapshot import Loaded, parse_all
from gitconvoy.state.store import Store

SEED = int(os.environ.get("CONVOY_CACHE_SEED", "16005"))
TRIALS = int(os.environ.get("CONVOY_CACHE_TRIALS", "200"))
COMMIT = "1" * 40


def rich_state(repo: Path) -> dict[str, str]:
    """A small state that uses every kind and every kind of field the cache must carry."""
    epic = ok("bead", "create", "Checkout epic", "-t", "epic")
    one = ok("bead", "create", "Pay the invoice", "-l", "billing", "-l", "ui", "-a", "alice",
             "-d", "multi\nline description", "--parent", epic, "-p", "1")
    two = ok("bead", "create", "Refund", "--dep", one, "--dep", f"related:{epic}")
    ok("bead", "close", two, "--reason", "done")
    ok("rig", "add", "app", "--target", "main", "--prefix", "t", "--default")
    ok("create", "Checkout", one, two)
    plant(repo, "mrs/mr-1.yaml", f"id: mr-1\nbead: {one}\nbranch: convoy/{one}\n"
          f"commit: '{COMMIT}'\ntarget: main\nconflict_files: [a.py]\nretries: 2\n")
    plant(repo, "reviews/rv-1.yaml", f"id: rv-1\nepic: {epic}\nbranch: integration/x\n"
          f"base: main\ntip: '{COMMIT}'\nfindings: [no tests]\n")
    odd = "t-odd"  # YAML values JSON has no word for: a date, a tuple-like omap, an int key
    plant(repo, object_path("beads", odd), f"id: {odd}\ntitle: odd dispatch\ndispatch:\n"
          "  when: 2024-01-02\n  pairs: !!omap [{a: 1}]\n  7: seven\n")
    plant(repo, object_path("beads", "t-bad"), "id: t-bad\ntitle: x\npriority: 9\n")
    return {"epic": epic, "one": one, "two": two}


def fresh_load() -> tuple[Store, Loaded]:
    store = Store.open()
    snap = store.snapshot(fresh=True)
    source = snap._source
    assert source is not None
    return store, parse_all(source.repo, source.tree)


def assert_same(got: Loaded, want: Loaded) -> None:
    assert got.tree == want.tree
    assert got.config == want.config
    assert got.objects == want.objects
    assert {p: e.message for p, e in got.errors.items()} == \
        {p: e.message for p, e in want.errors.items()}


def cache_path(store: Store) -> Path:
    return Path(cache.cache_file(store.common_dir))


def test_every_flipped_byte_is_served_right_or_rebuilt(state_repo: Path) -> None:
    """A seeded loop: one random byte of a good cache file changed per trial. The full load
    every command uses equals a fresh parse; a command's output equals the reference."""
    rich_state(state_repo)
    store, want = fresh_load()
    path = cache_path(store)
    path.unlink(missing_ok=True)
    ok("bead", "list")  # a full read writes the cache for the tree the ref points at
    good = path.read_bytes()
    served = cache.load(store.common_dir, store.repo)
    assert served is not None  # the good file is served as it is
    assert_same(served, want)
    listing = ok("bead", "list", "--all")
    tree = store.repo.get(want.tree)
    rng = random.Random(SEED)
    for trial in range(TRIALS):
        bad = bytearray(good)
        at = rng.randrange(len(bad))
        bad[at] ^= rng.randrange(1, 256)
        path.write_bytes(bytes(bad))
        where = f"trial {trial} (seed {SEED}): byte {at} of {len(bad)}"
        try:
            got = cache.load_all(store.repo, store.common_dir, tree)
        except Exception as exc:  # noqa: BLE001 - the assertion is that nothing escapes
            pytest.fail(f"{where}: the cache raised {type(exc).__name__}: {exc}")
        assert_same(got, want)
        if trial % 10 == 0:  # the same file through a whole command
            path.write_bytes(bytes(bad))
            res = convoy("bead", "list", "--all")
            assert (res.code, res.out.strip()) == (0, listing), where


def test_doctor_survives_any_cache(state_repo: Path) -> None:
    rich_state(state_repo)
    ok("bead", "list")
    store, _ = fresh_load()
    path = cache_path(store)
    want = convoy("doctor").out
    for junk in (b"", b"\x80" * 10, b"[" * 100_000, path.read_bytes()[:100], os.urandom(4096)):
        path.write_bytes(junk)
        assert convoy("doctor").out == want


def test_a_corrupt_title_in_the_cache_is_not_written_back_by_sling(state_repo: Path) -> None:
    """The reported case: a changed byte inside a cached title was served with exit 0, and
    `sling` copied it into a new convoy's title on the state branch."""
    ok("rig", "add", "app", "--default")
    bead = ok("bead", "create", "Pay the invoice")
    ok("bead", "create", "Other")
    store, _ = fresh_load()
    path = cache_path(store)
    path.unlink(missing_ok=True)
    ok("bead", "list")
    data = path.read_bytes()
    assert data.count(b"Pay the invoice") == 1
    path.write_bytes(data.replace(b"Pay the invoice", b"Pay the invoicX"))
    assert "Pay the invoice" in ok("bead", "list")
    ok("sling", bead)
    convoys = Store.open().snapshot(fresh=True).convoys.values()
    assert [c.title for c in convoys] == ["Pay the invoice"]


class MakesMarker:
    """Unpickling this creates a folder: code run by merely loading a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


def test_a_cache_replaced_by_a_malicious_pickle_runs_nothing(state_repo: Path,
                                                             tmp_path: Path) -> None:
    bead = ok("bead", "create", "Pay the invoice")
    ok("bead", "list")
    store, _ = fresh_load()
    marker = tmp_path / "pwned"
    payload = pickle.dumps(MakesMarker(marker))
    folder = cache_path(store).parent
    for name in {cache_path(store).name, "snapshot.pickle"}:
        (folder / name).write_bytes(payload)
    assert ok("bead", "list").split()[0] == bead
    assert ok("ready").split()[0] == bead
    assert git_convoy("ready", cwd=state_repo).stdout.split()[0] == bead
    assert not marker.exists()
    assert not (folder / "snapshot.pickle").exists()  # a new cache removes the old format


def forge(path: Path, change: object) -> None:
    """Rewrite the cache with `change` applied to its payload and a matching digest: what a
    process that means harm (rather than a disk error) could write."""
    payload = json.loads(path.read_bytes().partition(b"\n")[2])
    change(payload)  # type: ignore[operator]
    body = json.dumps(payload).encode()
    path.write_bytes(cache.MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body)


def _set(where: list[object], value: object) -> object:
    def change(payload: dict) -> None:
        target: object = payload
        for step in where[:-1]:
            target = target[step]  # type: ignore[index]
        target[where[-1]] = value  # type: ignore[index]
    return change


BEAD = ["objects", "beads", 0]
FORGERIES = {
    "title not a string": _set([*BEAD, 1], 7),
    "unknown status": _set([*BEAD, 3], "pwned"),
    "priority a string": _set([*BEAD, 4], "1"),
    "short row": _set(BEAD, ["t-x", "x"]),
    "dep of an unknown type": _set([*BEAD, 10], [["t-x", "owns"]]),
    "dispatch not a mapping": _set([*BEAD, 22], [1, 2]),
    "labels of numbers": _set([*BEAD, 8], [1]),
    "deeply nested dispatch": _set([*BEAD, 22], {"a": json.loads("[" * 900 + "]" * 900)}),
    "tree id not hex": _set(["tree"], "../../etc"),
    "another tree": _set(["tree"], "0" * 40),
    "reparse a path outside": _set(["reparse"], {"beads": ["../../x"]}),
    "reparse an unknown kind": _set(["reparse"], {"secrets": ["x"]}),
    "error row short": _set(["errors"], [["beads/x.yaml"]]),
    "rig under another name": _set(["config", 2], {"app": ["other", "main", 3, False, None,
                                                            "merge", []]}),
    "config not a row": _set(["config"], {"prefix": "t"}),
    "objects missing": _set(["objects"], {}),
    "payload a list": lambda payload: payload.clear(),
}


@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_a_forged_file_with_a_right_digest_is_still_checked(state_repo: Path, name: str) -> None:
    """The digest only proves the file is what some process wrote. Rows are type-checked as
    they become objects, so a forged file is a miss (or, where it names a tree, a tree diff
    from that tree), never an exception."""
    rich_state(state_repo)
    store, want = fresh_load()
    path = cache_path(store)
    path.unlink(missing_ok=True)
    ok("bead", "list")
    forge(path, FORGERIES[name])
    got = cache.load_all(store.repo, store.common_dir, store.repo.get(want.tree))
    assert_same(got, want)
    assert convoy("bead", "list").code == 0


def test_values_json_cannot_carry_are_parsed_again_not_cached(state_repo: Path) -> None:
    """A date, an omap or an int key in a bead's dispatch would come back changed from JSON:
    that bead is listed by id and parsed from the tree, so the cache stays exact."""
    rich_state(state_repo)
    store, want = fresh_load()
    path = cache_path(store)
    path.unlink(missing_ok=True)
    ok("bead", "list")
    payload = json.loads(path.read_bytes().partition(b"\n")[2])
    assert payload["reparse"] == {"beads": ["t-odd"]}
    got = cache.load(store.common_dir, store.repo)
    assert got is not None
    assert_same(got, want)
    assert got.objects["beads"]["t-odd"].dispatch["when"] == datetime.date(2024, 1, 2)


def full(cls: type) -> object:
    """An object of a model class with every field set to a value of its type."""
    values = {"str": "s", "str | None": "o", "int": 3, "bool": True, "list[str]": ["a", "b"],
              "dict[str, Any]": {"k": [1, 2.5, None, {"x": "y"}]},
              "list[Dep]": [model.Dep("t-1", "waits-for")],
              "dict[str, Rig]": {"app": model.Rig("app", prefixes=["t"])}}
    kwargs = {f.name: values[str(f.type)] for f in dataclasses.fields(cls)}
    for (owner, field), allowed in rows.ENUMS.items():
        if owner == cls.__name__:
            kwargs[field] = sorted(allowed)[0]
    return cls(**kwargs)


@pytest.mark.parametrize("cls", [model.Bead, model.Convoy, model.MergeRequest, model.Review,
                                 model.Rig, model.Config], ids=lambda c: c.__name__)
def test_every_field_of_the_model_has_a_row_form(cls: type) -> None:
    """A field of a new type fails here (and makes saving skip the cache), not at a read."""
    shape = rows.Shape.of(cls)
    obj = full(cls)
    row = json.loads(json.dumps(shape.encode(obj)))
    assert shape.decode(row) == obj

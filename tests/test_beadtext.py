"""The bead reader of the cold read (gitconvoy.state.beadtext) reads what the generic path
reads or steps aside (issue 12).

The witness is the generic path: codec.load_yaml (PyYAML for anything non-canonical) and
Bead.from_dict. Whatever read_bead accepts must be exactly the Bead the generic path builds;
it may decline anything. Generated beads with awkward text in every field, fuzzed files,
hostile edits of real files, and a real state read through the CLI.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitconvoy.errors import ConvoyError, SchemaError
from gitconvoy.state import beadtext
from gitconvoy.state.codec import dump_yaml, load_yaml
from gitconvoy.state.model import BEAD_STATUSES, BEAD_TYPES, DEP_TYPES, Bead, Dep
from tests.conftest import convoy, git, ok
from tests.test_codec import FRAGMENTS, TEXT, VALUES, WORDS


def generic(raw: bytes) -> Bead | None:
    """The bead the generic path reads, or None when it names the file as broken."""
    try:
        return Bead.from_dict(load_yaml(raw, "beads/x.yaml"), "beads/x.yaml")
    except (SchemaError, ConvoyError):
        return None


def agrees(raw: bytes) -> Bead | None:
    """The property: read_bead declines, or gives the generic path's bead exactly."""
    fast = beadtext.read_bead(raw)
    if fast is not None:
        slow = generic(raw)
        assert slow is not None, raw
        assert fast == slow, raw
        assert [type(getattr(fast, f)) for f in Bead.ORDER] == \
            [type(getattr(slow, f)) for f in Bead.ORDER]
    return fast


def plain_bead(**fields: Any) -> bytes:
    base: dict[str, Any] = {"id": "bx-1a2b", "title": "Task 1: part 1 of epic 0",
                            "type": "task", "status": "open", "priority": 2}
    base.update(fields)
    return dump_yaml({k: base[k] for k in Bead.ORDER if k in base})


ID = st.one_of(st.sampled_from(["bx-1a2b", "a", "123", "true", "null", "x.1", "y", "a..b",
                                "-x", "a/b", "2026-11-27", ""]),
               st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,12}", fullmatch=True))
ANY = st.one_of(TEXT, TEXT, TEXT, st.integers(-3, 7), st.booleans(), st.none(), VALUES)


@st.composite
def bead_dicts(draw: Any) -> dict[str, Any]:
    """A bead's mapping in its key order: half of them well-typed (awkward text in every
    text field, so the fast reader takes many), the other half with any field wrong."""
    wild = draw(st.booleans())
    text = st.one_of(TEXT, WORDS, ANY) if wild else st.one_of(TEXT, TEXT, WORDS, ID)
    out: dict[str, Any] = {"id": draw(ID), "title": draw(text)}
    for key in Bead.ORDER[2:]:
        if draw(st.integers(0, 2)):
            continue
        if key == "type":
            out[key] = draw(st.sampled_from(BEAD_TYPES) | (ANY if wild else st.nothing()))
        elif key == "status":
            out[key] = draw(st.sampled_from(BEAD_STATUSES) | (ANY if wild else st.nothing()))
        elif key == "priority":
            out[key] = draw(st.integers(0, 4) | (ANY if wild else st.integers(-1, 5)))
        elif key in ("labels", "steps_done"):
            out[key] = draw(st.lists(st.one_of(ID, TEXT), max_size=4) | (ANY if wild else
                                                                         st.nothing()))
        elif key == "deps":
            dep = st.builds(
                lambda on, kind, inferred: {"on": on, "type": kind, **inferred},
                st.one_of(ID, TEXT) | (ANY if wild else st.nothing()),
                st.sampled_from(DEP_TYPES) | (ANY if wild else st.nothing()),
                st.sampled_from([{}, {"inferred": True}, {"inferred": False}]))
            out[key] = draw(st.lists(dep, max_size=3) | (ANY if wild else st.nothing()))
        elif key in ("dispatch", "formula_vars"):
            if wild:
                out[key] = draw(st.one_of(st.dictionaries(TEXT, TEXT, max_size=2), ANY))
        elif key in ("closed_at", "created_at", "updated_at"):
            out[key] = draw(st.just("2026-11-30T12:45:25.807200Z") | text)
        else:
            out[key] = draw(text)
    if not wild and ("closed_at" in out) != (out.get("status") == "closed"):
        out.pop("closed_at", None)
        if out.get("status") == "closed":
            out["status"] = "open"
    return out


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bead_dicts())
def test_a_generated_bead_is_read_as_the_generic_path_reads_it(value: dict[str, Any]) -> None:
    try:
        raw = dump_yaml(value)
    except Exception:  # noqa: BLE001 - a value PyYAML cannot write is no file
        return
    agrees(raw)


@settings(max_examples=800, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 3),
                          st.sampled_from(FRAGMENTS + ["\n", "\n  ", "\n- ", "'", ": "])),
                min_size=1, max_size=4))
def test_a_hostile_edit_of_a_real_file_is_read_as_the_generic_path_reads_it(
        edits: list[tuple[int, int, str]]) -> None:
    text = plain_bead(description="first line\nsecond line\n", labels=["api", "db"],
                      deps=[{"on": "bx-0aaa", "type": "blocks"},
                            {"on": "bx-0bbb", "type": "waits-for", "inferred": True}],
                      created_at="2026-11-30T12:45:25.807200Z").decode()
    for at, cut, piece in edits:
        at %= len(text) + 1
        text = text[:at] + piece + text[at + cut:]
    agrees(text.encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize("fields", [
    {},
    {"description": "one\n\ntwo\n", "acceptance": "tests pass", "assignee": "alice"},
    {"title": "word " * 40, "close_reason": "done " * 30, "status": "closed",
     "closed_at": "2026-11-30T12:45:25Z"},
    {"title": "it's 'quoted': yes # no", "labels": ["z", "a", "a"], "parent": "bx-epic"},
    {"deps": [{"on": "bx-b", "type": "blocks"}, {"on": "bx-a", "type": "related"},
              {"on": "bx-a", "type": "related", "inferred": True}]},
    {"branch": "convoy/bx-1a2b", "target": "main", "formula": "tdd.v1",
     "steps_done": ["red", "green"], "rig": "r1", "mr": "mr-1", "import_key": "gh#1"},
    {"title": "123"}, {"title": "null"}, {"title": "é中 2026-11-27"},
])
def test_the_store_layout_is_read_fast_and_exactly(fields: dict[str, Any]) -> None:
    raw = plain_bead(**fields)
    assert agrees(raw) is not None, raw.decode()


@pytest.mark.parametrize("raw", [
    b"id: bx-1a2b\ntitle: x\ntype: 'task'\n",  # a quoted enum: PyYAML's to read
    b"id: bx-1a2b\ntitle: x\npriority: 5\n",  # out of range: the generic path words it
    b"id: bx-1a2b\ntitle: x\nstatus: closed\n",  # closed without closed_at
    b"id: bx-1a2b\ntitle: x\ndispatch:\n  at: now\n",  # a mapping: left to the generic path
    b"id: bx-1a2b\ntitle: x\nbranch: -rf\n",  # not a branch name
    b"id: a/b\ntitle: x\n", b"id: bx-1a2b\ntitle: ' '\n", b"id: bx-1a2b\ntitle: 7\n",
    b"title: x\nid: bx-1a2b\n",  # another key order
    b"id: bx-1a2b\ntitle: x\ntitle: y\n", b"id: bx-1a2b\ntitle: x", b"\xef\xbb\xbfid: a\n",
    b"id: bx-1a2b\ntitle: x\nlabels:\n- a: b\n", b"id: bx-1a2b\ntitle: x\xff\n",
    b"id: bx-1a2b\ntitle: x\r\n", b"id: bx-1a2b\ntitle: x\n\n",
    b"id: bx-1a2b\ntitle: x\ndeps:\n- 'on': ' '\n  type: blocks\n",
    b"id: bx-1a2b\ntitle: x\ndescription: |\n  a\n\n",
])
def test_anything_else_is_left_to_the_generic_path(raw: bytes) -> None:
    assert agrees(raw) is None


def test_a_huge_file_that_almost_matches_is_declined() -> None:
    """Possessive patterns: a 1 MiB file of continuation lines is declined in one pass."""
    raw = b"id: bx-1a2b\ntitle: x\ndescription: a\n" + b"  b\n" * 250_000 + b"oops\n"
    assert beadtext.read_bead(raw) is None


def test_the_pattern_follows_the_model() -> None:
    """A new Bead field must be taught to the reader (or to the generic path only)."""
    assert list(beadtext._BEAD.groupindex) == [
        f for f in Bead.ORDER if f not in ("dispatch", "formula_vars")]
    assert re.compile(beadtext._DEP.pattern)  # the dep types are the model's
    assert Dep("a").type in DEP_TYPES


def test_a_state_with_fast_and_other_files_warns_and_reads_as_before(
        state_repo: Path) -> None:
    """Through the CLI on a real repository: beads in the store's layout, one hand-edited
    into another layout, one broken; the broken one is named once, the others are read."""
    ok("bead", "create", "first", "--id", "t-a1")
    ok("bead", "create", "second", "--id", "t-b2", "--dep", "t-a1", "-d", "two\nlines")
    ok("bead", "create", "third", "--id", "t-c3")
    listing = git("ls-tree", "-r", "--name-only", "convoy/state").splitlines()
    path = {name.rsplit("/", 1)[1][:-5]: name for name in listing if name.startswith("beads/")}
    index = {"GIT_INDEX_FILE": str(state_repo / ".git" / "h12.index")}
    git("read-tree", "convoy/state", env=index)
    for bead_id, text in (("t-b2", "title: second\nid: t-b2\ntype: 'task'\n"),
                          ("t-a1", "id: t-a1\ntitle: first\npriority: 9\n")):
        (state_repo / "edit.yaml").write_text(text)
        blob = git("hash-object", "-w", "edit.yaml")
        git("update-index", "--cacheinfo", f"100644,{blob},{path[bead_id]}", env=index)
    commit = git("commit-tree", git("write-tree", env=index), "-p", "convoy/state", "-m", "x")
    git("update-ref", "refs/heads/convoy/state", commit)
    result = convoy("bead", "list")
    assert result.code == 0
    assert result.err.count("warning: skipped") == 1 and "t-a1" in result.err
    assert "priority" in result.err
    assert "t-b2" in result.out and "t-c3" in result.out and "t-a1" not in result.out

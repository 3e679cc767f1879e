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
from gitconvoy.state import beadtext, codec
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
        elif key == "formula":
            out[key] = draw(st.sampled_from(["tdd.v1", "bug-fix"]) | text)
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


# --- the fast pattern: one match proves a file of the common shapes -----------------------

PIECES = st.sampled_from(FRAGMENTS + ["a", "b", "Task 1", "x: y", "it's", "é", "-", "a" * 30,
                                      "2026-11-30T12:45:25.807200Z"])
CANDIDATES = st.lists(PIECES, min_size=1, max_size=6).map("".join)


@settings(max_examples=3000, deadline=None)
@given(st.integers(2, 40), CANDIDATES)
def test_what_the_one_line_patterns_take_the_emitter_writes_so(column: int,
                                                                 written: str) -> None:
    """A plain text the plain pattern takes, and a quoted one the quoted pattern takes,
    are what written_scalar writes for their value at that column."""
    if not codec.printable(written):
        return
    fits = codec.fits_pattern(column)
    if re.fullmatch(f"{fits}{codec.plain_pattern()}\\n", written + "\n"):
        assert codec.written_scalar(written, column, 2) == " " + written
    if re.fullmatch(f"{codec.name_pattern()}\\n", written + "\n"):
        assert codec.written_scalar(written, column, 2) == " " + written
    quoted = f"'{written}'"
    if re.fullmatch(f"{fits}'{codec.quoted_pattern()}'\\n", quoted + "\n"):
        assert codec.written_scalar(written, column, 2) == " " + quoted


@settings(max_examples=2000, deadline=None)
@given(st.lists(CANDIDATES | st.just(""), min_size=1, max_size=5), st.booleans())
def test_what_the_block_pattern_takes_the_emitter_writes_so(lines: list[str],
                                                             keep: bool) -> None:
    block = ("|" if keep else "|-") + "".join(
        "\n" + (f"  {line}" if line else "") for line in "\n".join(lines).split("\n"))
    if not codec.printable(block) or not re.fullmatch(codec.literal_pattern(), block):
        return
    value = codec.literal_text(block)
    assert codec.written_scalar(value, 13, 2) == " " + block


def slow(raw: bytes) -> Bead | None:
    """read_bead with the fast pattern out of the way: every value proved on its own."""
    fast = beadtext._FAST
    try:
        beadtext._FAST = re.compile(r"(?!)")
        return beadtext.read_bead(raw)
    finally:
        beadtext._FAST = fast


COMMON = st.sampled_from(["Task 12: part 3 of epic 1", "Fix the login page", "alice", "ui",
                          "bx-1a2b", "main", "convoy/bx-1a2b", "2026-11-30T12:45:25.807200Z",
                          "done", "it's fine", "a#b c", "x:y"])
LINES = st.sampled_from(["line one\nline two\n", "one\n\n  two", "- a\n- b\n"])


@st.composite
def common_beads(draw: Any) -> dict[str, Any]:
    """Beads as the store writes them day to day (the fast pattern's share), with now and
    then a value of any text: most files are proved by the one match, some are not."""
    text = st.one_of(*[COMMON] * 12, CANDIDATES, ID)
    blocks = ("title", "description", "acceptance", "close_reason")
    store_id = st.from_regex(r"[a-z]{2}-[a-z0-9]{4,6}", fullmatch=True)
    out: dict[str, Any] = {"id": draw(store_id | store_id | ID), "title": draw(text)}
    for key in Bead.ORDER[2:]:
        if draw(st.integers(0, 2)) or key in ("dispatch", "formula_vars"):
            continue
        if key == "type":
            out[key] = draw(st.sampled_from(BEAD_TYPES))
        elif key == "status":
            out[key] = draw(st.sampled_from(BEAD_STATUSES))
        elif key == "priority":
            out[key] = draw(st.integers(0, 4))
        elif key in ("labels", "steps_done"):
            names = st.sampled_from(["ui", "db", "red", "green", "good first issue"])
            out[key] = draw(st.lists(st.one_of(names, names, names, ID, CANDIDATES),
                                     min_size=1, max_size=3))
        elif key == "formula":
            out[key] = draw(st.sampled_from(["tdd.v1", "bug-fix"]) | text)
        elif key == "deps":
            out[key] = [{"on": on, "type": kind, **({"inferred": True} if inferred else {})}
                        for on, kind, inferred in draw(st.lists(st.tuples(
                            store_id | store_id | ID, st.sampled_from(DEP_TYPES), st.booleans()),
                            min_size=1, max_size=3))]
        else:
            out[key] = draw(text | LINES if key in blocks else text)
    if "closed_at" in out or out.get("status") == "closed":
        out["status"] = "closed"
        out["closed_at"] = out.get("closed_at", "2026-11-30T12:45:25.807200Z")
    return out


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(common_beads(), bead_dicts()))
def test_the_fast_pattern_reads_what_the_value_by_value_proof_reads(
        value: dict[str, Any]) -> None:
    try:
        raw = dump_yaml({k: value[k] for k in Bead.ORDER if k in value})
    except Exception:  # noqa: BLE001 - a value PyYAML cannot write is no file
        return
    text = raw.decode("utf-8", "surrogatepass")
    if codec.printable(text) and beadtext._FAST.fullmatch(text):
        assert beadtext.read_bead(raw) == slow(raw) == generic(raw), text
    else:
        agrees(raw)


@pytest.mark.parametrize("fields", [
    {},
    {"description": "one\n\ntwo\n  indented\n", "acceptance": "tests pass",
     "assignee": "alice", "labels": ["api", "good first issue"], "parent": "bx-epic"},
    {"title": "Task 4754: part 54 of epic 47", "status": "closed", "priority": 0,
     "close_reason": "done", "closed_at": "2026-11-30T12:45:25.807200Z",
     "created_at": "2026-11-30T12:45:25.807200Z", "created_by": "bench"},
    {"deps": [{"on": "bx-a", "type": "blocks"}, {"on": "bx-b", "type": "waits-for",
                                                  "inferred": True}],
     "branch": "convoy/bx-1a2b", "target": "main", "formula": "tdd.v1",
     "steps_done": ["green", "red"], "rig": "r1", "mr": "mr-1", "import_key": "gh#1"},
    {"title": "naïve é中 — ok"}, {"title": "yes: really"}, {"description": "-"},
])
def test_the_store_layout_of_common_beads_is_proved_by_one_match(fields: dict[str, Any]) -> None:
    raw = plain_bead(**fields)
    assert beadtext._FAST.fullmatch(raw.decode()), raw.decode()
    assert agrees(raw) is not None and beadtext.read_bead(raw) == slow(raw)

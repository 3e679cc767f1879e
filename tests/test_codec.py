"""The fast YAML codec is PyYAML, faster (issue 12): the emitter writes the bytes PyYAML's
dumper writes or steps aside, and the parser reads only what PyYAML reads the same way.

The witness is always PyYAML itself (`pyyaml_dump`, `yaml.safe_load` with libyaml), never the
codec's own idea of YAML: generated values shaped like beads with every awkward kind of
text, fuzzed texts, and every file of a generated 2,000-bead state.
"""

from __future__ import annotations

import importlib.util
import string
from pathlib import Path
from typing import Any

import pygit2
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gitconvoy.state.codec import (
    NOT_CANONICAL,
    dump_yaml,
    emit_canonical,
    load_yaml,
    parse_canonical,
    pyyaml_dump,
)
from gitconvoy.state.model import Bead, Dep
from gitconvoy.state.snapshot import parse_file

BENCH = Path(__file__).resolve().parents[1] / "bench"
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def pyyaml_load(text: str) -> Any:
    return yaml.load(text, Loader=LOADER)


def same(a: Any, b: Any) -> bool:
    """Equal with equal types all the way down (True == 1 and 1 == 1.0 do not count)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


# --- generated values -------------------------------------------------------------------

# Text YAML reads as something else, or must quote, fold or escape.
FRAGMENTS = [
    "yes", "No", "null", "Null", "~", "true", "False", "on", "OFF", "y", "n", "---", "...",
    "1", "-1", "+1", "0", "007", "1.5", "1e3", "1.5e3", ".5", ".inf", "-.Inf", ".nan", "0x1F",
    "0o17", "0b101", "1_000", "12:30", "190:20:30", "2026-11-27", "2026-11-27T11:11:21Z",
    "2026-11-27 11:11:21.5 +02:00", "<<", "=", "!", "&a", "*a", "!!str", "%TAG", "@x", "`x",
    " ", "  ", ": ", ":", " #", "#", "- ", "-", "? ", "?", "'", "''", '"', "|", ">", ",",
    "[", "]", "{", "}", "\n", "\n\n", " \n", "\t", "\r", "\r\n", "\x85", "\u2028", "\u2029",
    "\ufeff", "\x00", "\x1b", "\x7f", "\x9b", "\u00a0", "é", "中文", "\ud7ff", "\ue000",
    "\ufffd", "\uffff", "😀", "\\", "\\n", "x", "word", "a b", "sh-1a2b", "bx-1a2b.3",
]
# The subset the fast path writes: printable text with single newlines (no tabs, CR, other
# controls, NEL, U+2028/2029, BOM or astral characters; PyYAML escapes those).
ESCAPED = {"\t", "\r", "\r\n", "\x85", "\u2028", "\u2029", "\ufeff", "\x00", "\x1b", "\x7f",
           "\x9b", "\uffff", "😀"}
UNESCAPED = [f for f in FRAGMENTS if f not in ESCAPED]
SAFE_CHARS = st.characters(codec="utf-8", exclude_categories=["Cc", "Cs", "Zl", "Zp"],
                           max_codepoint=0xfffd, exclude_characters="\ufeff")
AWKWARD = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4)), max_size=10,
).map("".join)
UNESCAPED_AWKWARD = st.lists(
    st.one_of(st.sampled_from(UNESCAPED), st.text(SAFE_CHARS, max_size=4)), max_size=10,
).map("".join)
# Sentences long enough to fold at column 100, in plain and in quoted form.
WORDS = st.lists(
    st.one_of(
        st.text(alphabet=string.ascii_letters + "'é中", min_size=1, max_size=12),
        st.sampled_from(["", " ", "'", ":", "-", "#", "1.5", "'quoted'", "a" * 40, "a\nb"]),
    ),
    min_size=8, max_size=30,
).map(" ".join)
# Mostly text the fast path may write, so that most generated objects exercise it.
TEXT = st.one_of(st.sampled_from(UNESCAPED), UNESCAPED_AWKWARD, UNESCAPED_AWKWARD, WORDS,
                 st.text(SAFE_CHARS, max_size=12), AWKWARD | st.text(max_size=12))
KEYS = st.one_of(st.sampled_from(Bead.ORDER), st.sampled_from(UNESCAPED),
                 st.text(SAFE_CHARS, max_size=8), st.sampled_from(Bead.ORDER),
                 st.text(SAFE_CHARS, max_size=8),
                 st.text(max_size=8) | st.text(alphabet="ab", min_size=95, max_size=110))
SCALARS = st.one_of(TEXT, st.integers(), st.booleans(), st.none(), st.just([]), st.just({}))
VALUES = st.recursive(
    st.one_of(SCALARS, SCALARS, SCALARS, st.floats(allow_nan=False)),  # floats: PyYAML's
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=10,
)


@st.composite
def bead_shaped(draw: Any) -> dict[str, Any]:
    """A mapping in a bead's key order with bead-like values, any text in any field."""
    chosen = set(draw(st.lists(st.sampled_from(Bead.ORDER), max_size=8)))
    out: dict[str, Any] = {}
    for key in (k for k in Bead.ORDER if k in chosen):
        if key == "priority":
            out[key] = draw(st.integers(0, 4))
        elif key == "labels":
            out[key] = draw(st.lists(TEXT, max_size=3))
        elif key == "deps":
            out[key] = draw(st.lists(st.fixed_dictionaries({"on": TEXT, "type": TEXT}),
                                     max_size=2))
        elif key == "dispatch":
            out[key] = draw(st.dictionaries(KEYS, VALUES, max_size=3))
        else:
            out[key] = draw(TEXT)
    out.update(draw(st.dictionaries(KEYS, VALUES, max_size=2)))
    assume(out)
    return out


def check_dump(value: dict[str, Any]) -> str | None:
    """The property: the fast text, when there is one, is PyYAML's, and reads back as
    `value` through both readers."""
    fast = emit_canonical(value)
    if fast is None:
        return None
    reference = pyyaml_dump(value)
    assert fast == reference
    assert same(pyyaml_load(reference), value)
    read = parse_canonical(fast)
    assert read is not NOT_CANONICAL
    assert same(read, value)
    return fast


@settings(max_examples=500, deadline=None)
@given(bead_shaped())
def test_bead_shaped_values_are_written_as_pyyaml_writes_them(value: dict[str, Any]) -> None:
    check_dump(value)


@settings(max_examples=1000, deadline=None)
@given(TEXT, KEYS, st.integers(0, 40))
def test_every_text_is_written_as_pyyaml_writes_it_in_every_place(
        text: str, key: str, depth: int) -> None:
    """One text as a value, a key, a list item, in a nested mapping and in a list of
    mappings, at several columns."""
    place = "k" * depth
    for value in ({key: text}, {text: key}, {place: [text, text + "x"]},
                  {"dispatch": {place: text}}, {"deps": [{"on": text, place: text}]},
                  {"a": {"b": [{"c": {place: [text]}}]}}):
        check_dump(value)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, VALUES, min_size=1, max_size=6))
def test_nested_values_are_written_as_pyyaml_writes_them(value: dict[str, Any]) -> None:
    check_dump(value)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(Bead.ORDER[1:8]), min_size=1, max_size=4), WORDS,
       st.integers(0, 60))
def test_long_lines_fold_where_pyyaml_folds_them(keys: list[str], text: str, pad: int) -> None:
    """Every text at every column: plain and quoted, top level, nested and in lists."""
    for shaped in (text, "x" * pad + " " + text, "'" + text, text + ": x"):
        nested: dict[str, Any] = {key: shaped for key in keys}
        nested["dispatch"] = {"k" * (pad % 30 + 1): shaped, "list": [shaped, {"on": shaped}]}
        assert check_dump(nested) is not None or "\n" in text


def test_shared_lists_are_left_to_pyyaml() -> None:
    """The same list twice becomes an anchor and an alias in PyYAML's output."""
    shared: list[str] = []
    assert emit_canonical({"a": shared, "b": shared}) is None
    assert dump_yaml({"a": shared, "b": shared}).decode() == "a: &id001 []\nb: *id001\n"


# --- what the store writes never falls back -------------------------------------------

PLAIN_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xd7ff, exclude_characters="\x7f"
                           + "".join(map(chr, range(0x80, 0xa0))) + "\u2028\u2029"),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(st.builds(
    Bead, id=st.from_regex(r"[a-z]{2}-[0-9a-z]{4}(\.[0-9]{1,2})?", fullmatch=True),
    title=PLAIN_TEXT.filter(str.strip),
    priority=st.integers(0, 4),
    description=st.none() | st.lists(PLAIN_TEXT.map(str.strip), max_size=4).map("\n".join),
    labels=st.lists(PLAIN_TEXT, max_size=3),
    deps=st.lists(st.builds(Dep, on=st.from_regex(r"[a-z]{2}-[0-9a-z]{4}", fullmatch=True),
                            type=st.sampled_from(["blocks", "related", "waits-for"])),
                  max_size=3),
    created_at=st.just("2026-11-27T11:11:21.364720Z"),
    dispatch=st.fixed_dictionaries({"attempts": st.integers(0, 9), "reason": PLAIN_TEXT}),
))
def test_beads_of_ordinary_text_take_the_fast_path(bead: Bead) -> None:
    """Printable text (Unicode too) with single newlines, no tabs or control characters."""
    data = bead.to_dict()
    for key in ("title", "description"):  # what a `|` block or quotes cannot carry
        assume(not data.get(key, "").endswith(" "))
    text = data.get("description", "x")
    assume(not text.startswith(("\n", " ")) and not text.endswith("\n\n") and " \n" not in text)
    assert check_dump(data) is not None


# --- reading: never differently from PyYAML -------------------------------------------


def check_load(text: str) -> None:
    """Either the fast parser declines, or it reads what PyYAML reads."""
    read = parse_canonical(text)
    if read is NOT_CANONICAL:
        return
    assert same(read, pyyaml_load(text)), text


MUTATIONS = st.sampled_from(["", " ", "  ", "\n", "\n  ", ":", ": ", "-", "- ", "'", "''", '"',
                             "#", " #", "|", "|-", "|+", ">", "[]", "{}", "~", "&a ", "*a",
                             "!!int ", "\t", "\r", "x", "1", "yes", "\ufeff", "...", "---"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bead_shaped(), st.lists(st.tuples(st.floats(0, 1), st.integers(0, 3), MUTATIONS),
                               min_size=1, max_size=3))
def test_mutated_canonical_text_is_read_as_pyyaml_reads_it(
        value: dict[str, Any], edits: list[tuple[float, int, str]]) -> None:
    text = emit_canonical(value) or pyyaml_dump(value)
    for where, cut, insert in edits:
        at = int(where * len(text))
        text = text[:at] + insert + text[at + cut:]
    check_load(text)


YAMLISH = st.lists(st.sampled_from([
    "a", "b", "on", "'on'", "x: y", "key:", "- ", "-", ": ", ":", " ", "  ", "\n", "\n  ",
    "\n- ", "'", "''", "|", "|-", "{}", "[]", "1", "-2", "true", "null", "~", "#", "\t", "é",
]), max_size=30).map("".join)


@settings(max_examples=1000, deadline=None)
@given(YAMLISH)
def test_arbitrary_text_is_read_as_pyyaml_reads_it(text: str) -> None:
    try:
        pyyaml_load(text)
    except yaml.YAMLError:
        assert parse_canonical(text) is NOT_CANONICAL
        return
    check_load(text)


@pytest.mark.parametrize("text", [
    "a: 1\n", "a: -0\n", "a: 01\n", "a: +1\n", "a: 1_0\n", "a: 0x1\n", "a: 1.0\n", "a: ~\n",
    "a: Null\n", "a: yes\n", "a: True\n", "a: 2026-01-01\n", "a: x\na: y\n", "a: 'x'\n",
    "'a': x\n", "a:\n- x\n", "a:\n  - x\n", "a: |\n  x\n\n", "a: |+\n  x\n", "a: >\n  x\n",
    "a: &x 1\n", "a: x # c\n", "a: x\n  y\n", "a: x\n   y\n", "a: 'x\n  y'\n", "---\na: 1\n",
    "a: 1\n...\n", "a: 1", "a: 1\r\n", "\ufeffa: 1\n", "a:\n", "- a\n", "a: [x]\n",
    "a: {b: 1}\n", "a: \"x\"\n", "a:  x\n", "a: x \n", "a: '' \n", "a: !!str 1\n",
])
def test_edge_texts_are_read_as_pyyaml_reads_them(text: str) -> None:
    check_load(text)


def test_anchors_still_refused_and_errors_still_named() -> None:
    from gitconvoy.errors import SchemaError

    with pytest.raises(SchemaError, match="anchors and aliases"):
        load_yaml(b"a: &x [1]\nb: *x\n", "x.yaml")
    with pytest.raises(SchemaError, match="UTF-8"):
        load_yaml(b"a: \xff\n", "x.yaml")


# --- every file of a generated state ----------------------------------------------------


def gen_state() -> Any:
    spec = importlib.util.spec_from_file_location("gen_state", BENCH / "gen_state.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def state_files(repo: pygit2.Repository, tree: pygit2.Tree, prefix: str = "") -> Any:
    for entry in tree:
        path = f"{prefix}{entry.name}"
        if entry.type_str == "tree":
            yield from state_files(repo, repo[entry.id], f"{path}/")
        elif path.endswith(".yaml"):
            yield path, entry.id, repo[entry.id].data


def test_every_file_of_a_generated_state_round_trips(tmp_path: Path) -> None:
    """2,000 beads (bench/bench_codec.py runs 10,000): each file is read by the fast path
    exactly as PyYAML reads it, and written back to the same bytes."""
    gen_state().generate(tmp_path / "repo", 2000)
    repo = pygit2.Repository(str(tmp_path / "repo"))
    tree = repo.revparse_single("refs/heads/convoy/state").peel(pygit2.Tree)
    count = 0
    for path, blob_id, raw in state_files(repo, tree):
        text = raw.decode("utf-8")
        read = parse_canonical(text)
        assert read is not NOT_CANONICAL, path
        assert same(read, pyyaml_load(text)), path
        assert dump_yaml(read) == raw == pyyaml_dump(read).encode(), path
        if path.startswith("beads/"):
            bead = parse_file(repo, path, blob_id)
            assert isinstance(bead, Bead), path
            assert dump_yaml(bead.to_dict()) == raw, path
        count += 1
    assert count > 2000


_WORDY = st.one_of(
    st.sampled_from(["yes", "Yes", "YES", "yEs", "no", "NO", "On", "oN", "off", "OFF", "null",
                     "Null", "NULL", "nULL", "true", "True", "tRUE", "False", "y", "n", "Y",
                     "N", "~", "<<", "=", ".inf", ".NaN", "0x1F", "0b101", "1_000", "12:30",
                     "2026-11-30", "2026-11-30T12:18:50.863328Z", "2026-11-30 1:2:3",
                     "3.14", "-1", "+7", "1e5", "1.5e+3", "o", "task", "T-1", "t-abc"]),
    st.text(alphabet="yesnotrufalONTRUEF0123456789.-+:_Zxe ", min_size=1, max_size=12),
    st.text(min_size=1, max_size=12),
)


@given(_WORDY)
def test_the_quick_answer_on_plain_text_is_pyyaml_s(text: str):
    """Letters first: only YAML 1.1's boolean and null spellings are not text; the store's
    time stamps are timestamps. PyYAML's resolvers are the witness."""
    from gitconvoy.state.codec import _plain_reads_as_text, _resolved_as_text

    assert _plain_reads_as_text(text) == _resolved_as_text(text), text


def test_libyaml_is_found_without_importing_pyyaml():
    import yaml

    from gitconvoy.state import codec

    assert codec._has_libyaml() == hasattr(yaml, "CSafeDumper")


def test_the_unsafe_set_is_the_complement_of_what_libyaml_writes_as_itself() -> None:
    """codec._UNSAFE is spelled positively (a negated class of wide ranges took milliseconds
    to compile): on every code point it says what the negated class says."""
    import re

    from gitconvoy.state import codec

    written = re.compile(r"[^\n\x20-\x7e\u00a0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd]")
    every = "".join(chr(c) for c in range(0x110000))
    assert codec._UNSAFE.findall(every) == written.findall(every)

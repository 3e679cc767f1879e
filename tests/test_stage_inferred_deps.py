"""An inferred dep (`stage --infer-blocks`) is a real dep with a mark: it survives every
layer a dep goes through — the model's schema, the canonical YAML, the read cache's rows,
the field merge — and the mark is checked like any field of the untrusted state."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gitconvoy.errors import SchemaError
from gitconvoy.state import rows
from gitconvoy.state.codec import dump_yaml, emit_canonical, load_yaml, pyyaml_dump
from gitconvoy.state.merge import merge_set
from gitconvoy.state.model import Bead, Dep, unique_deps

DEPS = st.lists(st.builds(Dep, on=st.from_regex(r"t-[0-9a-z]{4}", fullmatch=True),
                          type=st.sampled_from(["blocks", "related", "waits-for"]),
                          inferred=st.booleans()), max_size=5)


@settings(max_examples=100, deadline=None)
@given(DEPS)
def test_deps_round_trip_through_yaml_and_rows(deps: list[Dep]) -> None:
    bead = Bead(id="t-a1", title="A", deps=unique_deps(deps))
    data = bead.to_dict()
    text = dump_yaml(data)
    assert emit_canonical(data) == pyyaml_dump(data)  # the fast path writes PyYAML's bytes
    again = Bead.from_dict(load_yaml(text, "b.yaml"), "b.yaml")
    assert again == bead
    shape = rows.Shape.of(Bead)
    assert shape.decode(json.loads(json.dumps(shape.encode(bead)))) == bead


def test_an_inferred_dep_is_written_with_its_mark_and_a_plain_one_without() -> None:
    bead = Bead(id="t-b", title="B", deps=[Dep("t-a", "blocks", inferred=True),
                                           Dep("t-c", "blocks")])
    text = dump_yaml(bead.to_dict()).decode()
    assert "- 'on': t-a\n  type: blocks\n  inferred: true\n- 'on': t-c\n  type: blocks\n" in text


def test_a_stated_dep_wins_over_an_inferred_one_of_the_same_edge() -> None:
    """Both can meet after a merge of two clones (a set merge keeps both mappings)."""
    stated = {"on": "t-a", "type": "blocks"}
    inferred = {"on": "t-a", "type": "blocks", "inferred": True}
    merged = merge_set([], [inferred], [stated])
    bead = Bead.from_dict({"id": "t-b", "title": "B", "deps": merged}, "b.yaml")
    assert bead.deps == [Dep("t-a", "blocks")]
    assert bead.to_dict()["deps"] == [stated]


@pytest.mark.parametrize("dep, problem", [
    ({"on": "t-a", "inferred": "yes"}, "deps[0]: field 'inferred': expected true or false"),
    ({"on": "t-a", "inferred": 1}, "deps[0]: field 'inferred': expected true or false"),
    ({"on": "t-a", "why": "x"}, "field 'deps[0]': expected {on: <id>, type: <dep type>}"),
    ({"on": ["t-a"]}, "deps[0]: field 'on': expected a string"),
    ({"on": "t-a", "type": "maybe"}, "deps[0]: field 'type': expected one of"),
])
def test_a_bad_dep_field_names_the_file_and_the_field(dep: dict, problem: str) -> None:
    with pytest.raises(SchemaError) as err:
        Bead.from_dict({"id": "t-b", "title": "B", "deps": [dep]}, "beads/b.yaml")
    assert problem in str(err.value) and "beads/b.yaml" in str(err.value)


@pytest.mark.parametrize("row", [["t-a", "blocks", False], ["t-a", "blocks", "true"],
                                 ["t-a", "blocks", True, 1]])
def test_a_forged_cache_row_is_a_miss(row: list) -> None:
    with pytest.raises(rows.CacheMiss):
        rows._deps([row])

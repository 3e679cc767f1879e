"""Importing a YAML plan: the example tree, its JSON schema, re-import, and errors with lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import convoy, ok, ref_of

from gitconvoy.importers import plan as plan_module
from gitconvoy.state.store import Store

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "plan.yaml"
SCHEMA = ROOT / "docs" / "plan.schema.json"
KEY = "examples/plan.yaml"


def by_key() -> dict[str, Any]:
    snap = Store.open().snapshot(fresh=True)
    return {b.import_key.split("#", 1)[1]: b for b in snap.beads.values() if b.import_key}


def test_example_plan_imports_into_the_expected_tree(state_repo):
    out = json.loads(ok("import", str(EXAMPLE), "--json"))
    found = by_key()
    key_of = {b.id: k for k, b in found.items()}
    rows = {
        k: (b.type, b.status, b.priority, b.title, key_of.get(b.parent) if b.parent else None,
            sorted((key_of[d.on], d.type) for d in b.deps))
        for k, b in found.items()
    }
    assert rows == {
        "": ("epic", "open", 2, "Password reset by email", None, []),
        "token-store": ("epic", "open", 1, "Token store", "", []),
        "token-store/token-table": ("task", "open", 1, "Token table migration",
                                    "token-store", []),
        "token-store/issue-and-verify-tokens": (
            "task", "open", 1, "Issue and verify tokens", "token-store",
            [("token-store/token-table", "blocks")]),
        "token-store/pick-the-hashing-library": (
            "decision", "closed", 1, "Pick the hashing library", "token-store", []),
        "email-delivery": ("epic", "open", 2, "Email delivery", "", []),
        "email-delivery/email-template": ("task", "open", 2, "Email template",
                                          "email-delivery", []),
        "email-delivery/send-the-reset-email": (
            "task", "open", 2, "Send the reset email", "email-delivery",
            [("token-store/issue-and-verify-tokens", "blocks")]),
        "email-delivery/rate-limiting": ("epic", "open", 2, "Rate limiting", "email-delivery",
                                         []),
        "email-delivery/rate-limiting/per-address-limit": (
            "feature", "open", 2, "Per-address limit", "email-delivery/rate-limiting",
            [("email-delivery/email-template", "blocks")]),
        "email-delivery/rate-limiting/per-ip-limit": (
            "task", "open", 2, "Per-IP limit", "email-delivery/rate-limiting", []),
        "reset-page": ("epic", "open", 2, "Reset page", "", [("token-store", "blocks")]),
        "reset-page/reset-form": ("task", "open", 3, "Reset form", "reset-page", []),
        "reset-page/success-and-failure-messages": (
            "task", "open", 2, "Success and failure messages", "reset-page",
            [("reset-page/reset-form", "blocks")]),
    }
    assert out["root"] == found[""].id
    assert found["reset-page/reset-form"].id == "reset-form"
    store_id = found["token-store"].id
    assert found["token-store"].integration_branch == f"integration/{store_id}-token-store"
    assert found["reset-page"].integration_branch == "integration/reset-page"
    assert found["email-delivery/rate-limiting"].integration_branch is None
    assert found[""].description == "Self-service password reset, split into parallel work."
    assert all(b.import_key.startswith(f"{KEY}#") for b in found.values())
    before = ref_of(state_repo)
    again = json.loads(ok("import", str(EXAMPLE), "--json"))
    assert again["counts"] == {"create": 0, "update": 0, "same": 14, "deleted": 0}
    assert ref_of(state_repo) == before


def _on_keys(data: Any) -> Any:
    """YAML 1.1 reads a bare `on:` key as true; the importer accepts it, so does this check."""
    if isinstance(data, dict):
        return {("on" if k is True else k): _on_keys(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_on_keys(v) for v in data]
    return data


def test_example_plan_matches_the_json_schema():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(_on_keys(yaml.safe_load(EXAMPLE.read_text())), schema)


def test_schema_and_parser_accept_the_same_fields():
    schema = json.loads(SCHEMA.read_text())
    assert set(schema["properties"]) == plan_module.TOP_KEYS
    assert set(schema["$defs"]["epic"]["properties"]) == plan_module.EPIC_KEYS
    assert set(schema["$defs"]["task"]["properties"]) == plan_module.TASK_KEYS


def test_plan_deps_types_and_defaults(state_repo):
    other = ok("bead", "create", "Existing design decision", "--type", "decision")
    (state_repo / "p.yaml").write_text(
        "prefix: api\nrig: backend\ntype: chore\nlabels: [q3]\nintegration: false\n"
        "epic:\n  title: API\n  id: api-root\n  tasks:\n"
        f"    - title: Spec\n      after: {other}\n"
        "    - title: Build\n      deps:\n        - on: Spec\n          type: waits-for\n"
        "        - {on: spec, type: related}\n"
    )
    root = ok("import", "p.yaml", "--quiet")
    assert root == "api-root"
    found = by_key()
    spec, build = found["spec"], found["build"]
    assert (spec.id, spec.type, spec.rig, spec.labels) == ("api-root.1", "chore", "backend",
                                                           ["q3"])
    assert [(d.on, d.type) for d in spec.deps] == [(other, "blocks")]
    assert sorted((d.on, d.type) for d in build.deps) == [(spec.id, "related"),
                                                          (spec.id, "waits-for")]
    assert found[""].integration_branch is None


BAD_PLANS = [
    ("epic:\n  title: R\n  tasks:\n    - title: a\n      colour: red\n",
     "p.yaml:5: unknown field 'colour' in a task: expected one of acceptance, after, assignee, "
     "closed, deps, description, id, labels, priority, rig, slug, target, title, type"),
    ("epic:\n  title: R\n  tasks:\n    - title: a\n      priority: 7\n",
     "p.yaml:5: priority must be 0 (highest) to 4, got 7"),
    ("epic:\n  title: R\n  tasks:\n    - title: a\n      after: [b]\n",
     "p.yaml:5: unknown ref 'b' in 'a': expected a slug, a title or a {#custom-id} of this "
     "document, or an existing bead id"),
    ("epic:\n  title: R\n  tasks:\n    - title: a\n    - title: ''\n", "p.yaml:5: empty title"),
    ("epic:\n  title: R\n  tasks:\n    - title: a\n      deps: [{on: a2, type: sideways}]\n"
     "    - title: a2\n",
     "p.yaml:5: dep type 'sideways' is not one of blocks, related, discovered-from, "
     "waits-for, merge-blocks"),
    ("epic:\n  title: R\n  epics:\n    - title: S\n      after: T\n    - title: T\n"
     "      after: S\n",
     "p.yaml:4: dependency cycle: s (line 4) → t (line 6) → s (line 4)"),
    ("epic:\n  title: R\n  tasks:\n    - title: a\n    - title: A\n",
     "p.yaml:5: duplicate slug 'a' under 'R' (also line 4): give one of them a {#custom-id} "
     "or another title"),
    ("title: R\n", "p.yaml:1: unknown field 'title' in the plan: expected one of epic, "
     "integration, integration_template, key, labels, prefix, priority, rig, target, type"),
    ("key: k\n", "p.yaml:1: the plan needs an 'epic:' mapping (the root epic)"),
    ("- a\n", "p.yaml:1: the plan must be a mapping"),
    ("epic: &x\n  title: R\nother: *x\n",
     "p.yaml:1: YAML anchors and aliases are not allowed"),
    ("epic:\n  title: [R\n", "p.yaml:3: not valid YAML (did not find expected ',' or ']')"),
    ("epic:\n  title: R\n  integration: x\n",
     "p.yaml:2: the root epic lands on its target: an integration branch is for sub-epics"),
    ("epic:\n  title: R\n  tasks: {a: 1}\n", "p.yaml:3: tasks must be a list"),
]


@pytest.mark.parametrize(("text", "message"), BAD_PLANS)
def test_bad_plans_fail_with_one_line_and_write_nothing(state_repo, text, message):
    (state_repo / "p.yaml").write_text(text)
    before = ref_of(state_repo)
    res = convoy("import", "p.yaml")
    assert (res.code, res.err, res.out) == (1, f"error: {message}\n", "")
    assert ref_of(state_repo) == before

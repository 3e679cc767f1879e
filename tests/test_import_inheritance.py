"""What a design import inherits and keeps (importers/build.py): settings flow down the
tree and the nearest one wins; a re-import owns the deps between its own beads, not the
ones added by hand to beads elsewhere. bench/mutate.py found neither rule tested."""

from __future__ import annotations

from dataclasses import replace

from gitconvoy.importers.build import build_import
from gitconvoy.importers.prd import parse_prd
from gitconvoy.state.model import Bead, Dep

DOC = (
    "---\nprefix: web\nrig: frontend\npriority: 3\nintegration: false\n---\n"
    "# Root\n\n"
    "## Backend {rig=backend priority=1}\n\n"
    "- urgent {priority=0}\n"
    "- elsewhere {rig=ops target=release}\n"
    "- plain\n"
)


def test_the_nearest_setting_wins():
    outline = parse_prd(DOC, "d.md")
    result = build_import(outline, {}, prefix="web", actor="me", stamp="T")
    rows = {p.node.key: (p.bead.priority, p.bead.rig, p.bead.target) for p in result.items}
    assert rows == {
        "": (3, "frontend", None),
        "backend": (1, "backend", None),
        "backend/urgent": (0, "backend", None),
        "backend/elsewhere": (1, "ops", "release"),
        "backend/plain": (1, "backend", None),
    }


def test_a_reimport_keeps_deps_added_by_hand_on_beads_outside_the_document():
    doc = "---\nprefix: web\nintegration: false\n---\n# Root\n\n- first\n- second (after: first)\n"
    outline = parse_prd(doc, "d.md")
    first_run = build_import(outline, {}, prefix="web", actor="me", stamp="T")
    beads = {p.bead.id: p.bead for p in first_run.items}
    ids = {p.node.key: p.bead.id for p in first_run.items}
    outside = Bead("ops-1", "set up the database")
    second = beads[ids["second"]]
    beads[second.id] = replace(second, deps=sorted({*second.deps, Dep(outside.id, "blocks")}))
    beads[outside.id] = outside

    # the document drops 'after: first': that dep goes, the hand-made one stays
    edited = doc.replace(" (after: first)", "")
    again = build_import(parse_prd(edited, "d.md"), beads, prefix="web", actor="me",
                         stamp="T2")
    deps = {p.node.key: p.bead.deps for p in again.items}
    assert deps["second"] == [Dep(outside.id, "blocks")]

"""Settings flow down the design tree (importers/build.py): the front matter, then each
epic, then the task itself — the nearest setting wins. bench/mutate.py found that no test
set one field on both an epic and a task under it."""

from __future__ import annotations

from gitconvoy.importers.build import build_import
from gitconvoy.importers.prd import parse_prd

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

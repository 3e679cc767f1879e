"""A worker's brief (`git convoy work`) as text for people and as a prompt for an agent.

Both read the JSON shape of the brief (docs/json.md), so the three formats cannot drift.
They return lines; the command prints each through `say`, which makes anything the state put
into a field inert (a title cannot forge a line: only the breaks of multi-line fields, split
here, become lines).
"""

from __future__ import annotations

from typing import Any


def _block(text: str | None, indent: str) -> list[str]:
    if not text:
        return []
    return [f"{indent}{line}".rstrip() for line in text.rstrip("\n").split("\n")]


def _step_mark(step: dict[str, Any]) -> str:
    return "✓" if step["done"] else ("▶" if step["ready"] else "·")


def _count(steps: list[dict[str, Any]]) -> str:
    return f"{sum(s['done'] for s in steps)}/{len(steps)} done"


def brief_lines(data: dict[str, Any]) -> list[str]:
    """The brief for a person at a terminal."""
    bead = data["bead"]
    lines = [f"{bead}: {data['title']}  ({data['type']}, P{data['priority']}, "
             f"{data['status']})"]
    base = f" (from {data['base_commit'][:10]})" if data["base_commit"] else ""
    rows = [("worktree", data["worktree"]),
            ("branch", f"{data['branch']} → {data['target']}{base}"),
            ("rig", data["rig"]), ("convoy", data["convoy"])]
    lines += [f"  {name:<9} {value}" for name, value in rows if value]
    for name in ("description", "acceptance"):
        if data[name]:
            lines += [f"  {name}:", *_block(data[name], "    ")]
    if data["blockers"]:
        lines.append("  in your base (landed work of the beads this one waited for):")
        lines += [f"    {b['bead']} {b['commit'][:10]}  {b['title']}" for b in data["blockers"]]
    conflict = data["conflict"]
    if conflict:
        tip = (conflict["target_tip"] or "")[:10]
        lines.append(f"  conflict: {conflict['mr']} ({conflict['resolves']}) does not merge "
                     f"into {conflict['target']} {tip}; files:")
        lines += [f"    {f}" for f in conflict["files"]]
    formula, steps = data["formula"], data["steps"]
    if formula:
        lines.append(f"  formula   {formula['name']} v{formula['version']} "
                     f"({formula['source']})")
        lines += _block(formula["description"], "    ")
        lines.append(f"  steps ({_count(steps)}):")
        width = max(len(s["id"]) for s in steps) if steps else 0
        for s in steps:
            needs = f"  (needs {', '.join(s['needs'])})" if s["needs"] and not s["done"] \
                else ""
            lines.append(f"    {_step_mark(s)} {s['id']:<{width}}  {s['title']}{needs}")
        lines.append(f"  record a step: git convoy step done {bead} <step>")
    lines.append(f"  when the work is committed: git convoy done {bead}")
    return lines


def prompt_lines(data: dict[str, Any]) -> list[str]:
    """The brief addressed to a coding agent: what to do, where, and how to say it is done."""
    bead = data["bead"]
    lines = [f"You are a worker on bead {bead}: {data['title']}", "",
             f"Work in the git worktree {data['worktree']}, on branch {data['branch']}. "
             f"Your commits land on {data['target']} through the refinery after its checks "
             "pass: do not push to it and do not switch branches.", "",
             "## Task", *_block(data["description"] or data["title"], "")]
    if data["acceptance"]:
        lines += ["", "## Acceptance criteria", *_block(data["acceptance"], "")]
    if data["blockers"]:
        lines += ["", "## Already in your branch",
                  "The work of the beads this one waited for has landed and is in your base:"]
        lines += [f"- {b['bead']} ({b['title']}): commit {b['commit']}"
                  for b in data["blockers"]]
    conflict = data["conflict"]
    if conflict:
        lines += ["", "## Merge conflict",
                  f"Merge request {conflict['mr']} (bead {conflict['resolves']}) does not "
                  f"merge into {conflict['target']} at {conflict['target_tip']}. "
                  "Conflicting files:"]
        lines += [f"- {f}" for f in conflict["files"]]
    formula, steps = data["formula"], data["steps"]
    if formula:
        lines += ["", f"## Steps (formula {formula['name']}, {_count(steps)})",
                  *_block(formula["description"], ""),
                  "Do them in order. When a step is finished, record it with",
                  f"    git convoy step done {bead} <step id>"]
        for number, s in enumerate(steps, 1):
            state = "[x]" if s["done"] else "[ ]"
            needs = f" (after: {', '.join(s['needs'])})" if s["needs"] else ""
            lines.append(f"{number}. {state} {s['id']}: {s['title']}{needs}")
            lines += _block(s["description"], "   ")
            if s["run"]:
                lines.append(f"   suggested command: {s['run']}")
    lines += ["", "## When you are done",
              f"Commit your work on {data['branch']} (add the trailer 'Convoy-Bead: {bead}'), "
              + ("record the last step, " if formula else "")
              + f"then run: git convoy done {bead}"]
    return lines

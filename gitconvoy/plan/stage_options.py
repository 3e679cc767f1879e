"""What `stage --infer-blocks / --max-depth / --validate` decide (pure, over plain beads).

Each returns data — pairs of beads to chain, the deepest path, the capstone's bead — and
`plan_edits` turns them into the beads a stage writes, stamped with the time it is given, so
`staging.analyse` can analyse the plan as it will be and the transaction writes exactly that.
"""

from __future__ import annotations

import re
from collections import ChainMap
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from gitconvoy.plan.graph import Index
from gitconvoy.state.model import MAX_TITLE, Bead, Dep, unique_deps

VALIDATE_FORMULA = "mol-validate"
VALIDATE_LABEL = "validate"
CAPSTONE_SUFFIX = ".validate"

Beads = Mapping[str, Bead]


@dataclass(frozen=True)
class StageOptions:
    """`at`/`actor`: the time and person a stage stamps on the beads it writes (passed in,
    so the analysis reads no clock)."""

    infer_blocks: bool = False
    max_depth: int | None = None
    validate: bool = False
    at: str | None = None
    actor: str | None = None


def _natural(text: str) -> tuple[tuple[int, int | str], ...]:
    """`e.2` before `e.10`: importers' `<epic>.<n>` ids count, they do not spell."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", text) if p)


def creation_key(bead: Bead) -> tuple[bool, str, tuple[tuple[int, int | str], ...]]:
    """Creation order: the stamp, then the id (numbers as numbers); no stamp sorts last."""
    return (bead.created_at is None, bead.created_at or "", _natural(bead.id))


# --- --max-depth -----------------------------------------------------------------------


def deepest_path(beads: Beads, tree: list[tuple[int, str]]) -> list[str]:
    """The first deepest bead of the (printed) tree and the chain of parents above it, top
    first; the depth of the hierarchy is its length minus one (the root is depth 0)."""
    if not tree:
        return []
    depth, bead_id = max(tree, key=lambda row: row[0])  # max keeps the first of the deepest
    path = [bead_id]
    while len(path) <= depth:
        path.append(beads[path[-1]].parent or "")
    return path[::-1]


# --- --infer-blocks --------------------------------------------------------------------


@dataclass
class Chain:
    pairs: list[tuple[str, str]] = field(default_factory=list)  # (waits, for): waits → for
    ties: list[tuple[str, str]] = field(default_factory=list)  # pairs ordered by id only


def _stated_order(beads: Beads, index: Index, subs: list[str], members: set[str]) -> set[str]:
    """The sub-epics a person already ordered: a stated (not inferred) blocking dep runs
    between them, or between anything inside them."""
    owner: dict[str, str] = {}
    for sub in subs:
        owner[sub] = sub
        for below in index.descendants(sub):
            if below in members:
                owner[below] = sub
    ordered: set[str] = set()
    for bead_id, sub in owner.items():
        for dep in beads[bead_id].deps:
            other = owner.get(dep.on)
            if dep.blocking and not dep.inferred and other is not None and other != sub:
                ordered |= {sub, other}
    return ordered


def infer_chain(beads: Beads, members: list[str], index: Index) -> Chain:
    """Under every epic of the set, its open sub-epics that nobody ordered by hand, chained
    in creation order: each waits for the one created before it."""
    member_set = set(members)
    chain = Chain()
    for parent in members:
        if beads[parent].type != "epic":
            continue
        subs = [c for c in index.children.get(parent, ()) if c in member_set
                and beads[c].type == "epic" and not beads[c].done]
        if len(subs) < 2:
            continue
        ordered = _stated_order(beads, index, subs, member_set)
        free = sorted((s for s in subs if s not in ordered), key=lambda s: creation_key(beads[s]))
        for earlier, later in zip(free, free[1:], strict=False):
            chain.pairs.append((later, earlier))
            a, b = beads[earlier], beads[later]
            if a.created_at is None or a.created_at == b.created_at:
                chain.ties.append((later, earlier))
    return chain


# --- --validate ------------------------------------------------------------------------


def capstone_id(root: str) -> str:
    """One id per root epic, so a re-stage (or two clones staging at once) finds the same
    bead instead of adding a second one."""
    return root + CAPSTONE_SUFFIX


def capstone(beads: Beads, root: str, members: list[str], opts: StageOptions) -> Bead:
    """The root epic's validation task: a child of the root (so the root cannot close, nor
    its integration branch land, before it), blocked by every slingable task of the tree,
    carrying the root's acceptance criteria and the validate formula. An existing one keeps
    everything but gains blocking deps on tasks added to the tree since."""
    cap_id = capstone_id(root)
    work = sorted(m for m in members if m != cap_id and beads[m].slingable)
    wanted = [Dep(m, "blocks") for m in work]
    existing = beads.get(cap_id)
    if existing is not None:
        return replace(existing, deps=unique_deps([*existing.deps, *wanted]),
                       updated_at=opts.at or existing.updated_at)
    epic = beads[root]
    return Bead(
        id=cap_id, title=f"Validate: {epic.title}"[:MAX_TITLE], type="task",
        priority=epic.priority, parent=root, labels=[VALIDATE_LABEL], deps=wanted,
        description=(f"Check {root} as a whole against its acceptance criteria, once every "
                     "task of it has landed (git convoy stage --validate)."),
        acceptance=epic.acceptance, formula=VALIDATE_FORMULA, formula_vars={"epic": root},
        created_at=opts.at, created_by=opts.actor, updated_at=opts.at,
    )


def capstone_problem(beads: Beads, root: str) -> str | None:
    """Why the root's capstone id cannot be (re)used: one line naming it, else None."""
    cap_id = capstone_id(root)
    if beads[root].done:
        return f"{root} is {beads[root].status}: there is nothing left to validate"
    found = beads.get(cap_id)
    if found is None:
        return None
    if found.status == "tombstone":
        return (f"{cap_id} (the validation task of {root}) was deleted: stage without "
                "--validate, or add the task by hand")
    if found.parent != root or not found.slingable:
        article = "an" if found.type[:1] in "aeiou" else "a"
        return (f"{cap_id} is {article} {found.type} under {found.parent or 'no epic'}, not the "
                f"validation task of {root}: rename it or stage without --validate")
    return None


def grown_capstones(beads: Beads, new: list[Bead], at: str | None) -> dict[str, Bead]:
    """A living plan keeps its capstone last: a task created (or moved) under an epic whose
    capstone is not handed out yet becomes one more of its blockers. A capstone already with
    a worker is left alone (its mol-validate steps file and wait for new work by hand)."""
    out: dict[str, Bead] = {}
    for bead in new:
        if not bead.slingable or bead.id.endswith(CAPSTONE_SUFFIX):
            continue
        seen: set[str] = set()
        current = beads.get(bead.parent or "")
        while current is not None and current.id not in seen:
            seen.add(current.id)
            cap = out.get(capstone_id(current.id)) or beads.get(capstone_id(current.id))
            if cap is not None and cap.status == "open" and cap.parent == current.id \
                    and cap.slingable:
                out[cap.id] = replace(cap, deps=unique_deps([*cap.deps, Dep(bead.id)]),
                                      updated_at=at or cap.updated_at)
            current = beads.get(current.parent or "")
    return {k: v for k, v in out.items() if v.deps != beads[k].deps}


# --- the edits -------------------------------------------------------------------------


@dataclass
class Edits:
    changed: dict[str, Bead] = field(default_factory=dict)  # bead id → bead to write
    inferred: list[tuple[str, str]] = field(default_factory=list)  # (bead, on) now inferred
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (bead, on) taken away
    capstone: str | None = None
    capstone_new: bool = False
    ties: list[tuple[str, str]] = field(default_factory=list)


def plan_edits(beads: Beads, members: list[str], index: Index, root: str | None,
               opts: StageOptions) -> Edits:
    """The inferred deps to write and to take away, and the capstone: only beads that
    change are in `changed`, so a re-stage of an unchanged plan writes no bead."""
    edits = Edits()
    chain = infer_chain(beads, members, index) if opts.infer_blocks else Chain()
    edits.ties = chain.ties
    want: dict[str, set[str]] = {}
    for waits, on in chain.pairs:
        want.setdefault(waits, set()).add(on)
    added: set[tuple[str, str]] = set()
    for bead_id in members:
        bead = beads[bead_id]
        have = {d.on for d in bead.deps if d.inferred and d.type == "blocks"}
        stated = {d.on for d in bead.deps if not d.inferred and d.type == "blocks"}
        add = want.get(bead_id, set()) - have - stated
        drop = {d for d in bead.deps if d.inferred and d.on not in want.get(bead_id, set())}
        if not add and not drop:
            continue
        deps = [d for d in bead.deps if d not in drop] + [Dep(o, "blocks", True) for o in add]
        edits.changed[bead_id] = replace(bead, deps=unique_deps(deps),
                                         updated_at=opts.at or bead.updated_at)
        added |= {(bead_id, o) for o in add}
        edits.dropped += [(bead_id, d.on) for d in sorted(drop)]
    edits.inferred = [pair for pair in chain.pairs if pair in added]  # in chain order
    if opts.validate and root is not None:
        cap = capstone(ChainMap(edits.changed, beads), root, members, opts)
        old = beads.get(cap.id)
        edits.capstone, edits.capstone_new = cap.id, old is None
        if old is None or (not old.done and old.deps != cap.deps):
            edits.changed[cap.id] = cap
    return edits

"""Pure graph functions over a mapping of beads: blockers, ready, cycles.

Rules (DESIGN §4): blocking dep types are blocks, waits-for, merge-blocks; a blocker is
satisfied when closed or tombstoned; a blocking dep on an epic holds back all its descendants;
parent-child never blocks by itself; only slingable types are ever ready.

Cycles are found on a "happens-before" graph with two nodes per bead, start(X) and done(X):
  start(X) → done(X);  done(Y) → start(X) when X waits for Y;
  start(E) → start(c) for a child c of E (a child starts only once its epic may start);
  done(c) → done(E) (an epic finishes after its children).
A cycle there is a deadlock, which also catches a task blocked by its own epic.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from gitconvoy.state.model import BLOCKING_DEP_TYPES, DONE_STATUSES, SLINGABLE_TYPES, Bead

Beads = Mapping[str, Bead]


@dataclass(frozen=True)
class Blocker:
    """Why a bead cannot start: `on` is open (or missing); `via` names the ancestor epic
    whose dep it is, or None for the bead's own dep."""

    on: str
    type: str
    status: str | None
    via: str | None = None

    def describe(self) -> str:
        state = self.status or "missing"
        text = f"{self.on} ({state}, {self.type})"
        return f"{text} via epic {self.via}" if self.via else text

    def to_json(self) -> dict[str, str | None]:
        return {"on": self.on, "type": self.type, "status": self.status, "via": self.via}


class Index:
    """Children and reverse-dependency maps, each built on first use in linear time.

    `ready` needs neither map, so a `git convoy ready` at 10k beads never builds them; the
    feeder's epic roll-up needs only the children.
    """

    def __init__(self, beads: Beads, *, copy: bool = True) -> None:
        # A plain dict: lookups in the hot loops stay C-level even for a transaction's view.
        # `copy=False` keeps a transaction's view as it is, for a few lookups (a claim asks
        # for one bead's blockers: copying 100,000 beads for that cost 20 ms).
        self.beads: dict[str, Bead] = beads if type(beads) is dict or not copy \
            else dict(beads.items())  # type: ignore[assignment]
        self._children: dict[str, list[str]] | None = None
        self._waiters: dict[str, list[str]] | None = None
        self._gate: dict[str, tuple[Blocker, ...]] = {}
        self._held: dict[str, bool] = {}

    def _build_children(self) -> dict[str, list[str]]:
        children: dict[str, list[str]] = {}
        for bead in self.beads.values():
            if bead.parent and bead.status != "tombstone":
                children.setdefault(bead.parent, []).append(bead.id)
        return children

    def _build_waiters(self) -> dict[str, list[str]]:
        waiters: dict[str, list[str]] = {}
        for bead in self.beads.values():
            if bead.deps and bead.status != "tombstone":
                for dep in bead.deps:
                    if dep.type in BLOCKING_DEP_TYPES:
                        waiters.setdefault(dep.on, []).append(bead.id)
        return waiters

    def restated(self, beads: Beads) -> Index:
        """An index of `beads`, the same graph with some beads' fields changed since: it
        shares the maps this one has built when no bead was added, removed, moved to
        another parent, given other deps or tombstoned (a feeder step's writes change
        statuses, not the graph), else it builds its own. The check is one pass of identity
        comparisons, against a build's dict appends for every edge."""
        if beads is self.beads:
            return self
        fresh = Index(beads)
        if self._children is None and self._waiters is None:
            return fresh
        old = self.beads
        if len(old) != len(fresh.beads):
            return fresh
        for bead_id, bead in fresh.beads.items():
            was = old.get(bead_id)
            if was is bead:
                continue
            if was is None or was.parent != bead.parent or was.deps != bead.deps or \
                    (was.status == "tombstone") != (bead.status == "tombstone"):
                return fresh
        fresh._children, fresh._waiters = self._children, self._waiters
        return fresh

    @property
    def children(self) -> dict[str, list[str]]:
        """Each bead's children (built on first use; the roll-up needs only this map)."""
        if self._children is None:
            self._children = self._build_children()
        return self._children

    @property
    def waiters(self) -> dict[str, list[str]]:
        """The beads that wait for each bead through a blocking dep (built on first use)."""
        if self._waiters is None:
            self._waiters = self._build_waiters()
        return self._waiters

    def _has_open_blocker(self, bead: Bead) -> bool:
        beads = self.beads
        for dep in bead.deps:
            if dep.type in BLOCKING_DEP_TYPES:
                target = beads.get(dep.on)
                if target is None or target.status not in DONE_STATUSES:
                    return True
        return False

    def held_back(self, parent_id: str | None) -> bool:
        """True when this bead or any ancestor has an open blocker (memoised, loop-safe)."""
        chain: list[str] = []
        seen: set[str] = set()
        verdict = False
        current = parent_id
        while current:
            if current in self._held:
                verdict = self._held[current]
                break
            bead = self.beads.get(current)
            if bead is None or current in seen:
                break
            seen.add(current)
            chain.append(current)
            if self._has_open_blocker(bead):
                verdict = True
                break
            current = bead.parent
        # Every bead on the walked chain below a held one is held; above it we learnt nothing
        # more than "not held up to here", which is only final when the walk ended cleanly.
        for bead_id in chain:
            self._held[bead_id] = verdict
        return verdict

    def ancestors(self, bead_id: str) -> list[str]:
        """Parent, grandparent, …; stops at a parent loop instead of spinning."""
        seen: list[str] = []
        current = self.beads.get(bead_id)
        while current is not None and current.parent and current.parent not in seen:
            if current.parent == bead_id:
                break
            seen.append(current.parent)
            current = self.beads.get(current.parent)
        return seen

    def descendants(self, bead_id: str) -> list[str]:
        out: list[str] = []
        stack = list(self.children.get(bead_id, ()))
        seen = {bead_id}
        while stack:
            child = stack.pop()
            if child in seen:
                continue
            seen.add(child)
            out.append(child)
            stack.extend(self.children.get(child, ()))
        return out

    def own_blockers(self, bead: Bead, via: str | None = None) -> tuple[Blocker, ...]:
        found = []
        for dep in bead.deps:
            if not dep.blocking:
                continue
            target = self.beads.get(dep.on)
            status = target.status if target is not None else None
            if status not in DONE_STATUSES:
                found.append(Blocker(dep.on, dep.type, status, via))
        return tuple(found)

    def inherited_blockers(self, bead: Bead) -> tuple[Blocker, ...]:
        """Blockers of every ancestor, nearest first, memoised per parent.

        Each parent's answer is one walk up its own chain (stopping where a corrupt parent
        loop closes), so a loop can never leave a half-computed answer in the memo.
        """
        parent_id = bead.parent
        if not parent_id or parent_id == bead.id:
            return ()
        found = self._gate.get(parent_id)
        if found is None:
            collected: list[Blocker] = []
            seen: set[str] = set()
            current = parent_id
            while current and current not in seen:
                seen.add(current)
                ancestor = self.beads.get(current)
                if ancestor is None:
                    break
                collected.extend(self.own_blockers(ancestor, via=current))
                current = ancestor.parent
            found = self._gate[parent_id] = tuple(collected)
        return found

    def blockers(self, bead: Bead) -> tuple[Blocker, ...]:
        return self.own_blockers(bead) + self.inherited_blockers(bead)

    def is_ready(self, bead: Bead) -> bool:
        return (
            bead.status == "open" and bead.type in SLINGABLE_TYPES
            and not self._has_open_blocker(bead) and not self.held_back(bead.parent)
        )


def sort_key(bead: Bead) -> tuple[int, str, str]:
    return (bead.priority, bead.created_at or "", bead.id)


def ready_beads(beads: Beads, index: Index | None = None) -> list[Bead]:
    """Open slingable beads with no open blocker, highest priority first."""
    index = index or Index(beads)
    return sorted((b for b in beads.values() if index.is_ready(b)), key=sort_key)


def blocked_beads(
    beads: Beads, index: Index | None = None
) -> list[tuple[Bead, tuple[Blocker, ...]]]:
    """Beads that are not done and cannot start: open blockers, or status blocked (manual)."""
    index = index or Index(beads)
    out = []
    for bead in beads.values():
        if bead.done:
            continue
        found = index.blockers(bead)
        if found or bead.status == "blocked":
            out.append((bead, found))
    out.sort(key=lambda pair: sort_key(pair[0]))
    return out


# --- cycles -----------------------------------------------------------------------------

Node = tuple[str, str]  # ("start" | "done", bead id)


def _successors(node: Node, index: Index) -> Iterable[Node]:
    kind, bead_id = node
    bead = index.beads.get(bead_id)
    if kind == "start":
        yield ("done", bead_id)
        for child in index.children.get(bead_id, ()):
            yield ("start", child)
    else:
        for waiter in index.waiters.get(bead_id, ()):
            yield ("start", waiter)
        if bead is not None and bead.parent and bead.parent in index.beads:
            yield ("done", bead.parent)


def _collapse(ids: Iterable[str]) -> list[str]:
    out: list[str] = []
    for bead_id in ids:
        if not out or out[-1] != bead_id:
            out.append(bead_id)
    return out


def _path_back(start: Node, index: Index, within: Beads | None = None) -> list[str]:
    """The shortest happens-before path from `start` back to itself, as waits-for ids,
    through beads of `within` only (default: all the index holds)."""
    within = index.beads if within is None else within
    came_from: dict[Node, Node | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in _successors(node, index):
            if nxt[1] not in within:
                continue
            if nxt == start:
                walk = [start[1], node[1]]
                cur = came_from[node]
                while cur is not None:
                    walk.append(cur[1])
                    cur = came_from[cur]
                ids = _collapse(walk)  # walking back along happens-before = waits-for order
                return ids if len(ids) > 1 else ids + ids
            if nxt not in came_from:
                came_from[nxt] = node
                queue.append(nxt)
    return []


def cycle_through(beads: Beads, bead_id: str, index: Index | None = None) -> list[str]:
    """A deadlock that passes through `bead_id` (first id == last id), or [] if none."""
    index = index or Index(beads)
    return _path_back(("start", bead_id), index) or _path_back(("done", bead_id), index)


def find_cycles(beads: Beads, index: Index | None = None) -> list[list[str]]:
    """Every deadlock among `beads` (one path per strongly connected component). `index`
    may be the index of a bigger graph holding them (a snapshot's, shared with the other
    questions asked of it): only edges between `beads` count."""
    index = index or Index(beads)
    if _acyclic(beads, index):
        return []
    return [_cycle_in(comp, index, beads) for comp in _components(beads, index)]


def _components(beads: Beads, index: Index) -> list[list[Node]]:
    """The strongly connected components of more than one node (Tarjan, iterative)."""
    nodes: list[Node] = [(k, b) for b in beads if beads[b].status != "tombstone"
                         for k in ("start", "done")]
    children, waiters, known = index.children, index.waiters, index.beads

    def successors(node: Node) -> Iterator[Node]:
        """_successors within `beads`, as a list (the hot loop of a 10k-bead stage)."""
        kind, bead_id = node
        if kind == "start":
            out = [("done", bead_id)]
            out += [("start", c) for c in children.get(bead_id, ()) if c in beads]
        else:
            out = [("start", w) for w in waiters.get(bead_id, ()) if w in beads]
            bead = known.get(bead_id)
            if bead is not None and bead.parent and bead.parent in known \
                    and bead.parent in beads:
                out.append(("done", bead.parent))
        return iter(out)

    order: dict[Node, int] = {}
    low: dict[Node, int] = {}
    on_stack: set[Node] = set()
    stack: list[Node] = []
    components: list[list[Node]] = []
    counter = 0
    for root in nodes:
        if root in order:
            continue
        work = [(root, successors(root))]
        order[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in order:
                    order[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, successors(nxt)))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], order[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == order[node]:
                comp = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    comp.append(member)
                    if member == node:
                        break
                if len(comp) > 1:
                    components.append(comp)
    return components


def _acyclic(beads: Beads, index: Index) -> bool:
    """True when the happens-before graph among `beads` surely has no cycle: Kahn's count
    over numbered nodes (start = 2i, done = 2i + 1), about half the cost of the Tarjan walk
    that names the cycles, which runs only when this says False. The edges come from the
    beads of the set themselves (the same ones the index's maps hold for them), so a plan of
    200 beads in a state of 100,000 costs what those 200 do. It counts every bead of the set,
    where the walk starts only from beads that are not tombstones: a parent loop among
    tombstones alone makes this False and the walk then finds nothing, as before."""
    known = index.beads
    number = {bead_id: n for n, bead_id in enumerate(beads)}
    successors: list[list[int]] = []
    for n in range(len(number)):
        successors += ([2 * n + 1], [])  # start(x) → done(x); done(x) → …
    for bead_id, n in number.items():
        bead = known.get(bead_id)
        if bead is None:
            continue
        parent = number.get(bead.parent) if bead.parent else None
        if parent is not None and bead.parent in known:
            successors[2 * n + 1].append(2 * parent + 1)  # done(child) → done(epic)
        if bead.status == "tombstone":
            continue  # the index's maps leave tombstones out
        if parent is not None:
            successors[2 * parent].append(2 * n)  # start(epic) → start(child)
        for dep in bead.deps:
            blocker = number.get(dep.on)
            if blocker is not None and dep.type in BLOCKING_DEP_TYPES:
                successors[2 * blocker + 1].append(2 * n)  # done(blocker) → start(waiter)
    unmet = [0] * len(successors)
    for after in successors:
        for m in after:
            unmet[m] += 1
    ready = [m for m, count in enumerate(unmet) if count == 0]
    placed = 0
    while ready:
        placed += 1
        for m in successors[ready.pop()]:
            unmet[m] -= 1
            if unmet[m] == 0:
                ready.append(m)
    return placed == len(unmet)


def _cycle_in(component: list[Node], index: Index, within: Beads) -> list[str]:
    return _path_back(min(component, key=lambda n: (n[1], n[0])), index, within)


def format_cycle(ids: list[str]) -> str:
    return " → ".join(ids)

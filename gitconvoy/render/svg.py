"""A convoy or an epic drawn as a self-contained SVG: waves as columns, epics as frames.

No JavaScript and no font files: the picture is laid out here, so text is shortened by an
estimate of its width (the advance widths of DejaVu Sans Bold, the widest common sans, with
a margin) and the full title is kept in each box's `<title>` tooltip. Above `max_boxes`
beads, the largest sub-epics are folded into one box each (with counts), greedily, until
what is left fits: a 500-bead plan stays readable, and `git convoy graph SUB-EPIC` shows
the folded part in full (docs/pictures.md).

Every text from the state goes through `xml()`: control characters (which XML cannot carry
at all), bidirectional overrides and lone surrogates are shown as visible escapes, then the
markup characters are escaped.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field

from gitconvoy.plan import graph
from gitconvoy.plan.scope import Scope
from gitconvoy.render.markdown import OUTSIDE_STYLE, STATUS_STYLE
from gitconvoy.state.model import DONE_STATUSES
from gitconvoy.state.snapshot import Snapshot

MAX_BOXES = 150  # more beads than this: fold sub-epics (docs/pictures.md)

BOX_W, BOX_H = 184, 44
SUB_GAP = 10  # between the sub-columns of one wide wave
COL_GAP = 64  # between columns: room for the arrows
ROW_GAP = 10
ROWS = 16  # a column taller than this in one frame wraps into more sub-columns
HEADER = 26  # an epic frame's header band
PAD = 10  # inside a frame
INDENT = 10  # per nesting level
MARGIN = 56  # left: room for the arrows that leave and enter epic frames
MARGIN_R = 16
MIN_WIDTH = 600
SANS = "DejaVu Sans, Verdana, Geneva, sans-serif"
MONO = "DejaVu Sans Mono, Menlo, Consolas, monospace"
INFERRED_DASH = "1 3"  # dotted: an edge stage --infer-blocks wrote, not a person
EDGE_STYLE = {  # stroke, dash pattern
    "blocks": ("#57606a", ""),
    "waits-for": ("#8250df", "6 4"),
    "merge-blocks": ("#bf3989", "2 3"),
}

# --- text -------------------------------------------------------------------------------------

_UNSAFE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffe\uffff]")
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _SHORT.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def visible(text: str) -> str:
    """Control characters, bidi overrides, separators and lone surrogates as visible escapes
    (`\\x1b`, `\\n`, `\\u202e`): XML cannot carry most of them, and the rest reorder or
    hide what a reader sees."""
    return _UNSAFE.sub(_escape_char, text) if _UNSAFE.search(text) else text


def xml(text: str) -> str:
    """Text for an XML (or HTML) element or a quoted attribute."""
    out = visible(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return out.replace('"', "&quot;").replace("'", "&#39;")


# Advance widths (em) of DejaVu Sans Bold, printable ASCII from ' ' to '~'.
_ASCII_EM = [w / 100 for w in (
    35, 46, 52, 84, 70, 100, 87, 31, 46, 46, 52, 84, 38, 42, 38, 37, 70, 70, 70, 70, 70, 70,
    70, 70, 70, 70, 40, 40, 84, 84, 84, 58, 100, 77, 76, 73, 83, 68, 68, 82, 84, 37, 37, 77,
    64, 100, 84, 85, 73, 85, 77, 72, 68, 81, 77, 110, 77, 72, 73, 46, 37, 46, 84, 50, 50, 67,
    72, 59, 72, 68, 44, 72, 71, 34, 34, 67, 34, 104, 71, 69, 72, 72, 49, 60, 48, 71, 65, 92,
    65, 65, 58, 71, 37, 71, 84)]
SAFETY = 1.06  # other sans fonts (Verdana, Arial, Helvetica) are no wider than this


def _char_em(char: str, mono: bool) -> float:
    code = ord(char)
    if unicodedata.combining(char):
        return 0.0
    if unicodedata.east_asian_width(char) in ("W", "F") or code >= 0x1F000:
        return 1.3  # CJK, emoji
    if 0xFB50 <= code <= 0xFDFF or 0xFE70 <= code <= 0xFEFF:
        return 4.0  # Arabic presentation forms hold a few very wide ligatures
    if mono:
        return 0.61
    if 32 <= code < 127:
        return _ASCII_EM[code - 32]
    return 1.45  # other scripts and Latin ligatures such as Ǳ (1.42 em in DejaVu Sans)


def text_width(text: str, size: float, mono: bool = False) -> float:
    """A generous estimate of the drawn width of `text` in px."""
    return sum(_char_em(c, mono) for c in text) * size * SAFETY


def fit(text: str, size: float, width: float, mono: bool = False) -> str:
    """`text` made visible and cut with '…' so that it fits `width` px."""
    text = " ".join(visible(text).split())
    if text_width(text, size, mono) <= width:
        return text
    budget = width - text_width("…", size, mono)
    used, out = 0.0, []
    for char in text:
        used += _char_em(char, mono) * size * SAFETY
        if used > budget:
            break
        out.append(char)
    return "".join(out).rstrip() + "…"


def _style(spec: str) -> dict[str, str]:
    """`fill:#fff,stroke:#000,color:#111` (render/markdown's mermaid classes) as a dict."""
    return dict(part.split(":", 1) for part in spec.split(",") if ":" in part)


STATUS_COLOURS = {status: _style(spec) for status, spec in STATUS_STYLE.items()}
OUTSIDE_COLOURS = _style(OUTSIDE_STYLE)

# --- layout -----------------------------------------------------------------------------------


@dataclass
class Box:
    id: str
    kind: str  # bead, group (a folded epic), outside (a blocker outside the picture)
    column: str
    lane: str | None
    x: float = 0
    y: float = 0
    w: float = BOX_W
    h: float = BOX_H


@dataclass
class Frame:
    id: str
    depth: int
    x: float = 0
    y: float = 0
    w: float = 0
    h: float = 0


@dataclass
class Edge:
    src: str
    dst: str
    type: str
    count: int = 1
    satisfied: bool = False
    inferred: bool = False  # every dep it stands for was inferred by stage --infer-blocks


@dataclass
class Picture:
    width: float = 0
    height: float = 0
    boxes: dict[str, Box] = field(default_factory=dict)
    frames: dict[str, Frame] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    columns: list[tuple[str, float, float, int]] = field(default_factory=list)  # label, x, w, n
    folded: dict[str, list[str]] = field(default_factory=dict)  # group -> beads inside


class _Tree:
    """Who holds whom among the scope's members: the owner of a bead is its nearest
    ancestor that is an epic of the scope."""

    def __init__(self, snap: Snapshot, scope: Scope, index: graph.Index) -> None:
        self.order = {b: n for n, b in enumerate(scope.members)}
        epics = {b for b in scope.members if snap.beads[b].type == "epic"}
        self.epics = epics
        self.owner: dict[str, str | None] = {}
        for bead_id in scope.members:
            self.owner[bead_id] = next((a for a in index.ancestors(bead_id) if a in epics), None)
        self.children: dict[str | None, list[str]] = {}
        for bead_id in scope.members:
            self.children.setdefault(self.owner[bead_id], []).append(bead_id)
        self.weight: dict[str, int] = {}  # non-epic members under an epic
        for bead_id in reversed(scope.members):
            if bead_id in epics:
                self.weight[bead_id] = sum(
                    self.weight.get(c, 0) if c in epics else 1
                    for c in self.children.get(bead_id, ()))

    def fold(self, max_boxes: int) -> set[str]:
        """The epics drawn open (as frames); the others are one box each. Epics open level
        by level, a whole level at a time, while the boxes stay within `max_boxes`, so every
        part of the plan is shown at the same depth."""
        work = [b for b in self.order if b not in self.epics]
        if not max_boxes or len(work) <= max_boxes:
            return set(self.epics)
        opened: set[str] = set()
        level = [e for e in self.children.get(None, []) if e in self.epics]
        shown = len(self.children.get(None, []))
        while level:
            more = sum(len(self.children.get(e, [])) - 1 for e in level)
            if shown + more > max_boxes:
                break
            opened.update(level)
            shown += more
            level = [k for e in level for k in self.children.get(e, []) if k in self.epics]
        return opened

    def under(self, epic: str) -> list[str]:
        out, stack = [], list(self.children.get(epic, ()))
        while stack:
            bead_id = stack.pop()
            out.append(bead_id)
            stack.extend(self.children.get(bead_id, ()))
        return out


def _column_of(snap: Snapshot, scope: Scope, bead_id: str, wave_no: dict[str, int]) -> str:
    bead = snap.beads[bead_id]
    if bead_id in wave_no:
        return f"w{wave_no[bead_id]}"
    if bead.status in DONE_STATUSES:
        return "done"
    if bead_id in scope.waves.gated:
        return "gated"
    if not bead.slingable:
        return "decisions"
    return "cycle"


def _group_column(cols: list[str]) -> str:
    waves = [int(c[1:]) for c in cols if c.startswith("w")]
    if waves:
        return f"w{min(waves)}"
    for name in ("gated", "cycle", "decisions"):
        if name in cols:
            return name
    return "done"


def _column_order(used: set[str]) -> list[str]:
    waves = sorted((c for c in used if c.startswith("w")), key=lambda c: int(c[1:]))
    return [c for c in ("outside", "done", "decisions") if c in used] + waves + \
        [c for c in ("gated", "cycle") if c in used]


COLUMN_LABEL = {"outside": "outside", "done": "done", "decisions": "decisions",
                "gated": "gated", "cycle": "in a cycle"}


def layout(snap: Snapshot, scope: Scope, max_boxes: int = MAX_BOXES,
           index: graph.Index | None = None) -> Picture:
    """Where every box, frame and arrow goes (pure; no text is drawn here)."""
    index = index or graph.Index(snap.beads)
    tree = _Tree(snap, scope, index)
    opened = tree.fold(max_boxes)
    pic = Picture()
    wave_no = {b: n for n, wave in enumerate(scope.waves.waves, 1) for b in wave}
    unit: dict[str, str] = {}  # every member -> the box or frame that shows it

    def visit(parent: str | None) -> None:
        for kid in tree.children.get(parent, []):
            if kid in tree.epics and kid in opened:
                unit[kid] = kid
                pic.frames[kid] = Frame(kid, 0)
                visit(kid)
            elif kid in tree.epics:
                inside = tree.under(kid)
                pic.folded[kid] = inside
                unit[kid] = kid
                for bead_id in inside:
                    unit[bead_id] = kid
                cols = [_column_of(snap, scope, b, wave_no) for b in inside
                        if b not in tree.epics]
                pic.boxes[kid] = Box(kid, "group", _group_column(cols), parent)
            else:
                unit[kid] = kid
                pic.boxes[kid] = Box(kid, "bead", _column_of(snap, scope, kid, wave_no), parent)

    visit(None)
    counts: dict[tuple[str, str, str], int] = {}
    satisfied: dict[tuple[str, str, str], bool] = {}
    inferred: dict[tuple[str, str, str], bool] = {}
    for bead_id in scope.members:
        for dep in snap.beads[bead_id].blocking_deps():
            if dep.on in unit:
                src = unit[dep.on]
            else:
                src = dep.on
                if src not in pic.boxes:
                    pic.boxes[src] = Box(src, "outside", "outside", None)
            dst = unit[bead_id]
            if src == dst:
                continue
            key = (src, dst, dep.type)
            counts[key] = counts.get(key, 0) + 1
            blocker = snap.beads.get(dep.on)
            done = blocker is not None and blocker.status in DONE_STATUSES
            satisfied[key] = satisfied.get(key, True) and done
            inferred[key] = inferred.get(key, True) and dep.inferred
    pic.edges = [Edge(s, d, t, n, satisfied[(s, d, t)], inferred[(s, d, t)])
                 for (s, d, t), n in counts.items()]
    _place(snap, tree, pic)
    return pic


def _place(snap: Snapshot, tree: _Tree, pic: Picture) -> None:
    """Columns left to right, frames top to bottom, boxes in rows inside their frame."""
    cells: dict[str | None, dict[str, list[str]]] = {}
    for box in pic.boxes.values():
        cells.setdefault(box.lane, {}).setdefault(box.column, []).append(box.id)

    def key(bead_id: str) -> tuple[int, str, str]:
        bead = snap.beads.get(bead_id)
        return graph.sort_key(bead) if bead is not None else (9, "", bead_id)

    for lane in cells.values():
        for ids in lane.values():
            ids.sort(key=key)
    columns = _column_order({b.column for b in pic.boxes.values()})
    subcols = {c: max([math.ceil(len(lane.get(c, [])) / ROWS) for lane in cells.values()] + [1])
               for c in columns}
    depth: dict[str, int] = {}
    for frame_id in pic.frames:
        owner = tree.owner[frame_id]
        depth[frame_id] = 1 + (depth[owner] if owner else 0)
        pic.frames[frame_id].depth = depth[frame_id]
    deepest = max(depth.values(), default=0)
    content_x = MARGIN + PAD + deepest * INDENT if deepest else MARGIN
    x = content_x
    col_x: dict[str, float] = {}
    for col in columns:
        width = subcols[col] * BOX_W + (subcols[col] - 1) * SUB_GAP
        col_x[col] = x
        count = sum(len(lane.get(col, [])) for lane in cells.values())
        pic.columns.append((col, x, width, count))
        x += width + COL_GAP
    content_right = x - COL_GAP if columns else content_x
    # frames span at least the picture's minimum width, so a narrow plan keeps its titles
    content_right = max(content_right, MIN_WIDTH - MARGIN_R - (PAD + deepest * INDENT
                                                               if deepest else 0))
    pic.width = max(content_right + (PAD + deepest * INDENT if deepest else 0) + MARGIN_R,
                    MIN_WIDTH)

    def rows(lane: str | None) -> int:
        lane_cells = cells.get(lane, {})
        return max([math.ceil(len(ids) / subcols[c]) for c, ids in lane_cells.items()] + [0])

    def lay(lane: str | None, y: float) -> float:
        frame = pic.frames.get(lane) if lane else None
        if frame is not None:
            frame.y = y
            frame.x = content_x - PAD - (deepest - frame.depth) * INDENT
            frame.w = content_right + PAD + (deepest - frame.depth) * INDENT - frame.x
            y += HEADER + PAD
        n_rows = rows(lane)
        for col, ids in cells.get(lane, {}).items():
            per = max(n_rows, 1)
            for i, bead_id in enumerate(ids):
                box = pic.boxes[bead_id]
                box.x = col_x[col] + (i // per) * (BOX_W + SUB_GAP)
                box.y = y + (i % per) * (BOX_H + ROW_GAP)
        y += n_rows * (BOX_H + ROW_GAP)
        for kid in tree.children.get(lane, []):
            if kid in pic.frames:
                y = lay(kid, y) + ROW_GAP
        if frame is not None:
            y = max(y, frame.y + HEADER + PAD)
            frame.h = y - frame.y
        return y

    pic.height = lay(None, 0)


# --- drawing ----------------------------------------------------------------------------------


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _legend(statuses: list[str], pic: Picture, width: float) -> tuple[list[str], float]:
    """Swatches for the statuses drawn, then the arrow kinds, wrapped to `width`."""
    items: list[tuple[float, list[str]]] = []
    for status in statuses:
        colour = STATUS_COLOURS.get(status, STATUS_COLOURS["open"])
        dash = ' stroke-dasharray="3 3"' if status == "tombstone" else ""
        label = status.replace("_", " ")
        items.append((20 + text_width(label, 11), [
            f'<rect x="{{x}}" y="{{y}}" width="14" height="10" rx="2" fill="{colour["fill"]}" '
            f'stroke="{colour["stroke"]}"{dash}/>',
            f'<text x="{{tx}}" y="{{ty}}" font-size="11" fill="#1f2328">{label}</text>']))
    if any(b.kind == "outside" for b in pic.boxes.values()):
        items.append((20 + text_width("outside", 11), [
            f'<rect x="{{x}}" y="{{y}}" width="14" height="10" rx="2" '
            f'fill="{OUTSIDE_COLOURS["fill"]}" stroke="{OUTSIDE_COLOURS["stroke"]}" '
            'stroke-dasharray="4 3"/>',
            '<text x="{tx}" y="{ty}" font-size="11" fill="#1f2328">outside</text>']))
    if pic.folded:
        items.append((20 + text_width("folded epic", 11), [
            '<rect x="{x}" y="{y}" width="14" height="10" rx="2" fill="#ffffff" '
            'stroke="#6e7781" stroke-width="2.5"/>',
            '<text x="{tx}" y="{ty}" font-size="11" fill="#1f2328">folded epic</text>']))
    for dep_type, (stroke, dash) in EDGE_STYLE.items():
        if not any(e.type == dep_type for e in pic.edges):
            continue
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        items.append((30 + text_width(dep_type, 11), [
            f'<path d="M{{x}} {{my}} h20" stroke="{stroke}" stroke-width="1.5"{dashes} '
            f'fill="none" marker-end="url(#gc-arrow-{dep_type})"/>',
            f'<text x="{{tx2}}" y="{{ty}}" font-size="11" fill="#1f2328">{dep_type}</text>']))
    lines, x, y = [], 16.0, 0.0
    for item_w, parts in items:
        if x + item_w > width - 16 and x > 16:
            x, y = 16.0, y + 18
        for part in parts:
            lines.append(part.format(x=_num(x), y=_num(y), tx=_num(x + 19), ty=_num(y + 9.5),
                                     my=_num(y + 5), tx2=_num(x + 29)))
        x += item_w + 14
    return lines, (y + 18 if items else 0)


def _anchor(pic: Picture, unit: str, out: bool) -> tuple[float, float, float]:
    """The point an arrow leaves or enters, and the direction its handle points."""
    if unit in pic.frames:
        frame = pic.frames[unit]
        return frame.x, frame.y + HEADER / 2, -1.0
    box = pic.boxes[unit]
    if out:
        return box.x + box.w, box.y + box.h / 2, 1.0
    return box.x, box.y + box.h / 2, -1.0


def _edge_path(pic: Picture, edge: Edge, top: float) -> str:
    x0, y0, d0 = _anchor(pic, edge.src, True)
    x3, y3, _ = _anchor(pic, edge.dst, False)
    if d0 > 0 and x3 <= x0:  # same column (or backwards): leave on the left, bulge left
        box = pic.boxes[edge.src]
        x0, d0 = box.x, -1.0
    reach = max(30.0, abs(x3 - x0) / 2) if d0 > 0 else 36.0
    x1 = x0 + d0 * reach
    x2 = x3 - (max(30.0, abs(x3 - x0) / 2) if d0 > 0 else 36.0)

    def clamp(x: float) -> float:
        return min(max(x, 4.0), pic.width - 4.0)

    return (f"M{_num(x0)} {_num(y0 + top)} C{_num(clamp(x1))} {_num(y0 + top)} "
            f"{_num(clamp(x2))} {_num(y3 + top)} {_num(x3)} {_num(y3 + top)}")


def _box(snap: Snapshot, scope: Scope, pic: Picture, box: Box, top: float,
         wave_no: dict[str, int]) -> list[str]:
    bead = snap.beads.get(box.id)
    x, y = box.x, box.y + top
    if box.kind == "outside":
        colour = OUTSIDE_COLOURS
        title = bead.title if bead is not None else "missing"
        status = bead.status if bead is not None else "missing"
        tip = f"{box.id}: {title}\noutside this picture, {status}"
        right = status
    else:
        assert bead is not None
        colour = STATUS_COLOURS.get(bead.status, STATUS_COLOURS["open"])
        title, status = bead.title, bead.status
        where = (f"wave {wave_no[box.id]}" if box.id in wave_no
                 else "gated" if box.id in scope.waves.gated else box.column)
        tip = f"{box.id}: {title}\n{bead.type}, {status}, P{bead.priority}, {where}"
        right = f"P{bead.priority}"
    out = [f'<g class="{box.kind} st-{xml(status)}" data-id="{xml(box.id)}" '
           f'data-status="{xml(status)}">']
    if box.kind == "group":
        inside = [snap.beads[b] for b in pic.folded[box.id] if snap.beads[b].slingable]
        closed = sum(b.status == "closed" for b in inside)
        flying = sum(b.status in ("hooked", "in_progress") for b in inside)
        right = f"{closed}/{len(inside)}"
        tip += f"\nfolded: {len(pic.folded[box.id])} beads, {closed}/{len(inside)} closed, " \
               f"{flying} in flight"
        out.append(f'<rect x="{_num(x + 3)}" y="{_num(y + 3)}" width="{BOX_W}" '
                   f'height="{BOX_H}" rx="4" fill="{colour["fill"]}" stroke="{colour["stroke"]}"/>')
    out.append(f"<title>{xml(tip)}</title>")
    dash = ' stroke-dasharray="5 4"' if box.kind == "outside" else ""
    wide = "2.5" if box.kind == "group" else "1.2"
    w = BOX_W - (3 if box.kind == "group" else 0)
    h = BOX_H - (3 if box.kind == "group" else 0)
    out.append(f'<rect class="box" x="{_num(x)}" y="{_num(y)}" width="{w}" height="{h}" rx="4" '
               f'fill="{colour["fill"]}" stroke="{colour["stroke"]}" stroke-width="{wide}"{dash}/>')
    right_text = fit(right, 9.5, 70)
    right_w = text_width(right_text, 9.5)
    ink = colour.get("color", "#1f2328")
    out.append(f'<text x="{_num(x + 8)}" y="{_num(y + 16)}" font-family="{MONO}" '
               f'font-size="10.5" font-weight="bold" fill="{ink}">'
               f'{xml(fit(box.id, 10.5, w - 16 - right_w - 6, mono=True))}</text>')
    out.append(f'<text x="{_num(x + w - 8)}" y="{_num(y + 15)}" font-size="9.5" '
               f'text-anchor="end" fill="{ink}">{xml(right_text)}</text>')
    out.append(f'<text x="{_num(x + 8)}" y="{_num(y + 33)}" font-size="11" fill="{ink}">'
               f'{xml(fit(title, 11, w - 16))}</text>')
    out.append("</g>")
    return out


def _frame(snap: Snapshot, pic: Picture, tree_under: dict[str, list[str]], frame: Frame,
           top: float) -> list[str]:
    bead = snap.beads[frame.id]
    colour = STATUS_COLOURS.get(bead.status, STATUS_COLOURS["open"])
    work = [snap.beads[b] for b in tree_under[frame.id] if snap.beads[b].slingable]
    closed = sum(b.status == "closed" for b in work)
    right = f"{closed}/{len(work)} closed"
    right_w = text_width(right, 10)
    x, y = frame.x, frame.y + top
    id_text = fit(frame.id, 11, frame.w / 2, mono=True)
    id_w = text_width(id_text, 11, mono=True)
    title = fit(bead.title, 11.5, max(frame.w - 16 - id_w - 10 - right_w - 12, 0))
    tip = f"{frame.id}: {bead.title}\nepic, {bead.status}, {closed}/{len(work)} closed"
    return [
        f'<g class="epic st-{xml(bead.status)}" data-id="{xml(frame.id)}" '
        f'data-status="{xml(bead.status)}">',
        f"<title>{xml(tip)}</title>",
        f'<rect class="frame" x="{_num(x)}" y="{_num(y)}" width="{_num(frame.w)}" '
        f'height="{_num(frame.h)}" '
        f'rx="6" fill="#ffffff" fill-opacity="0.55" stroke="{colour["stroke"]}" '
        'stroke-width="1.5"/>',
        f'<rect class="header" x="{_num(x)}" y="{_num(y)}" width="{_num(frame.w)}" '
        f'height="{HEADER}" rx="6" fill="{colour["fill"]}" stroke="{colour["stroke"]}" '
        'stroke-width="1.5"/>',
        f'<text x="{_num(x + 8)}" y="{_num(y + 17)}" font-family="{MONO}" font-size="11" '
        f'font-weight="bold" fill="{colour.get("color", "#1f2328")}">{xml(id_text)}</text>',
        f'<text x="{_num(x + 8 + id_w + 10)}" y="{_num(y + 17)}" font-size="11.5" '
        f'font-weight="bold" fill="{colour.get("color", "#1f2328")}">{xml(title)}</text>',
        f'<text x="{_num(x + frame.w - 8)}" y="{_num(y + 17)}" font-size="10" '
        f'text-anchor="end" fill="{colour.get("color", "#1f2328")}">{xml(right)}</text>',
        "</g>",
    ]


def headline(scope: Scope) -> str:
    """One line under the title: status and progress."""
    p = scope.progress
    parts = [scope.status.replace("_", " "), f"{p.get('closed', 0)}/{p.get('total', 0)} closed",
             f"{p.get('in_flight', 0)} in flight", f"{len(scope.waves.waves)} wave(s) left"]
    if scope.waves.gated:
        parts.append(f"{len(scope.waves.gated)} gated")
    return " · ".join(parts)


def render_svg(snap: Snapshot, scope: Scope, max_boxes: int = MAX_BOXES, *,
               standalone: bool = True, index: graph.Index | None = None) -> str:
    """The picture as SVG text; `standalone` adds the XML declaration (leave it out to
    inline the picture in HTML)."""
    index = index or graph.Index(snap.beads)
    pic = layout(snap, scope, max_boxes, index)
    width = pic.width
    statuses = [s for s in STATUS_STYLE if any(
        snap.beads[b].status == s for b in scope.members if b in snap.beads)]
    legend, legend_h = _legend(statuses, pic, width)
    heading = fit(f"{scope.kind.capitalize()} {scope.id}: {scope.title}", 15, width - 32)
    sub = headline(scope)
    if pic.folded:
        sub += f" · {len(pic.folded)} sub-epic(s) folded (more than {max_boxes} beads)"
    sub = fit(sub, 11, width - 32)
    legend_top = 52
    col_top = legend_top + legend_h + 8
    top = col_top + 24
    height = top + pic.height + 16
    out = []
    if standalone:
        out.append('<?xml version="1.0" encoding="UTF-8"?>')
    out += [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="gitconvoy-graph" '
        f'viewBox="0 0 {_num(width)} {_num(height)}" width="{_num(width)}" '
        f'height="{_num(height)}" font-family="{SANS}" role="img" '
        f'aria-label="{xml(scope.kind)} {xml(scope.id)}">',
        f"<title>{xml(scope.kind)} {xml(scope.id)}: {xml(scope.title)}</title>",
        "<defs>",
    ]
    for dep_type, (stroke, _) in EDGE_STYLE.items():
        out.append(f'<marker id="gc-arrow-{dep_type}" viewBox="0 0 10 10" refX="9" refY="5" '
                   'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
                   f'<path d="M0 1 L10 5 L0 9 z" fill="{stroke}"/></marker>')
    out.append("</defs>")
    out.append(f'<rect class="background" x="0" y="0" width="{_num(width)}" '
               f'height="{_num(height)}" fill="#ffffff"/>')
    out.append(f'<text class="heading" x="16" y="24" font-size="15" font-weight="bold" '
               f'fill="#1f2328">{xml(heading)}</text>')
    out.append(f'<text class="headline" x="16" y="42" font-size="11" fill="#57606a">'
               f"{xml(sub)}</text>")
    out.append(f'<g class="legend" transform="translate(0 {_num(legend_top)})">')
    out += legend
    out.append("</g>")
    out.append('<g class="columns">')
    for n, (col, x, w, count) in enumerate(pic.columns):
        label = f"wave {col[1:]}" if col.startswith("w") else COLUMN_LABEL[col]
        label = fit(f"{label} ({count})", 11, w)
        shade = "#f6f8fa" if n % 2 == 0 else "#eef1f4"
        out.append(f'<rect x="{_num(x - 8)}" y="{_num(col_top)}" width="{_num(w + 16)}" '
                   f'height="{_num(height - col_top - 8)}" rx="4" fill="{shade}"/>')
        out.append(f'<text x="{_num(x + w / 2)}" y="{_num(col_top + 16)}" font-size="11" '
                   f'font-weight="bold" text-anchor="middle" fill="#57606a">{xml(label)}</text>')
    out.append("</g>")
    tree_under = {f: _under(snap, scope, f, index) for f in pic.frames}
    out.append('<g class="frames">')
    for frame in sorted(pic.frames.values(), key=lambda f: f.depth):
        out += _frame(snap, pic, tree_under, frame, top)
    out.append("</g>")
    out.append('<g class="edges" fill="none">')
    for edge in pic.edges:
        stroke, dash = EDGE_STYLE.get(edge.type, EDGE_STYLE["blocks"])
        dash = INFERRED_DASH if edge.inferred else dash
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        faint = ' stroke-opacity="0.35"' if edge.satisfied else ""
        many = f" ({edge.count} deps)" if edge.count > 1 else ""
        how = " (inferred by stage)" if edge.inferred else ""
        out.append(f'<path class="dep{" inferred" if edge.inferred else ""}" '
                   f'data-from="{xml(edge.src)}" data-to="{xml(edge.dst)}" '
                   f'data-type="{edge.type}" d="{_edge_path(pic, edge, top)}" stroke="{stroke}" '
                   f'stroke-width="{1.4 if edge.count == 1 else 2.4}"{dashes}{faint} '
                   f'marker-end="url(#gc-arrow-{edge.type})">'
                   f"<title>{xml(edge.dst)} {edge.type} {xml(edge.src)}{many}{how}</title></path>")
    out.append("</g>")
    wave_no = {b: n for n, wave in enumerate(scope.waves.waves, 1) for b in wave}
    out.append('<g class="beads">')
    for box in pic.boxes.values():
        out += _box(snap, scope, pic, box, top, wave_no)
    out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _under(snap: Snapshot, scope: Scope, epic: str, index: graph.Index) -> list[str]:
    members = set(scope.members)
    return [d for d in index.descendants(epic) if d in members]

"""Text views for people: one line per bead, aligned and short; and `inert`, which every
line printed for people goes through."""

from __future__ import annotations

import re

from gitconvoy.state.model import Bead, when

# What a terminal (or a pager, or a log viewer) acts on instead of showing: the C0 controls
# (TAB, LF, CR and ESC, which starts CSI and OSC sequences, among them), DEL, the C1 controls
# (U+009B is a one-character CSI), the Unicode line and paragraph separators, the
# bidirectional embeddings, overrides and isolates that reorder what is shown ("Trojan
# Source"), and lone surrogates (which cannot be printed at all).
UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _SHORT.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def inert(text: str) -> str:
    """`text` with every character a terminal would act on shown as a visible escape
    (`\\x1b`, `\\r`, `\\n`, `\\x9b`, `\\u202e`); printable Unicode is kept as it is, and so is
    a backslash (text output is for people: `--json` carries the exact strings)."""
    if UNSAFE.search(text) is None:
        return text
    return UNSAFE.sub(_escape, text)


# In a whole document (SVG, dot, HTML, a shell script) line breaks and tabs are its own.
DOCUMENT_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e"
                             r"\u2066-\u2069\ud800-\udfff]")


def inert_document(text: str) -> str:
    """A document whose renderer escaped its fields: newlines and tabs stand, any other
    character a terminal would act on is shown as an escape (a second line of defence)."""
    if DOCUMENT_UNSAFE.search(text) is None:
        return text
    return DOCUMENT_UNSAFE.sub(_escape, text)


def bead_line(bead: Bead) -> str:
    extra = []
    if bead.assignee:
        extra.append(f"@{bead.assignee}")
    if bead.labels:
        extra.append(" ".join(f"#{label}" for label in bead.labels))
    tail = f"  {' '.join(extra)}" if extra else ""
    return f"{bead.id:<12} P{bead.priority} {bead.type:<8} {bead.status:<11} {bead.title}{tail}"


def _formula_text(bead: Bead) -> str | None:
    if not bead.formula:
        return None
    values = ", ".join(f"{k}={v}" for k, v in sorted(bead.formula_vars.items()))
    return bead.formula + (f" ({values})" if values else "")


def _when(stamp: str | None) -> str | None:
    return when(stamp) if stamp else None


def bead_detail(bead: Bead, steps: list[tuple[str, str, bool]] | None = None) -> list[str]:
    """Every field of a bead; `steps` (id, title, done) when its formula could be read,
    else the steps it recorded as done."""
    lines = [f"{bead.id}: {bead.title}"]
    rows = [
        ("type", bead.type), ("status", bead.status), ("priority", f"P{bead.priority}"),
        ("assignee", bead.assignee), ("labels", ", ".join(bead.labels) or None),
        ("parent", bead.parent), ("rig", bead.rig), ("branch", bead.branch),
        ("target", bead.target),
        ("created", f"{when(bead.created_at)} by {bead.created_by}" if bead.created_at
         else None),
        ("updated", _when(bead.updated_at)), ("started", _when(bead.started_at)),
        ("closed", _when(bead.closed_at)),
        ("reason", bead.close_reason), ("formula", _formula_text(bead)),
    ]
    if steps is None and bead.steps_done:
        rows.append(("steps", "done: " + ", ".join(bead.steps_done)))
    if bead.dispatch.get("coordinator") and not bead.done:  # an epic slung (sling EPIC)
        rows.append(("worker", f"coordinator on rig {bead.dispatch['coordinator']}, started "
                     f"{when(str(bead.dispatch.get('last_attempt', '')))}"))
    error, retry = bead.dispatch.get("last_error"), bead.dispatch.get("next_try")
    if error and bead.status not in ("closed", "tombstone"):
        rows += [("dispatch", f"last failed: {error}"),
                 ("next try", when(str(retry)) if retry else None)]
    lines += [f"  {name:<9} {value}" for name, value in rows if value]
    if steps:
        lines.append(f"  steps     {sum(done for _, _, done in steps)}/{len(steps)} done")
        width = max(len(step_id) for step_id, _, _ in steps)
        lines += [f"    {'✓' if done else '·'} {step_id:<{width}}  {title}"
                  for step_id, title, done in steps]
    for dep in bead.deps:
        how = f"{dep.type}, inferred by stage" if dep.inferred else dep.type
        lines.append(f"  depends   {dep.on} ({how})")
    for name, text in (("description", bead.description), ("acceptance", bead.acceptance)):
        if text:
            lines.append(f"  {name}:")
            lines += [f"    {line}" for line in text.rstrip("\n").split("\n")]
    return lines

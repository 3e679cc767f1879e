"""One self-contained HTML page about a convoy: headline, picture, waves, beads, history.

Everything is inline (CSS, the SVG); the page loads nothing and runs no script, and says so
in a Content-Security-Policy, so it can be mailed, attached to a CI run or opened from disk.
Every text from the state goes through svg.xml().
"""

from __future__ import annotations

from gitconvoy.plan.scope import Scope
from gitconvoy.render.svg import STATUS_COLOURS, headline, xml
from gitconvoy.state.history import Change
from gitconvoy.state.snapshot import Snapshot

CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px 48px; font: 14px/1.45 system-ui, -apple-system,
  "Segoe UI", "DejaVu Sans", sans-serif; color: #1f2328; background: #ffffff; }
h1 { font-size: 22px; margin: 0 0 4px; overflow-wrap: anywhere; }
h2 { font-size: 17px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 1px solid #d0d7de; }
code, .id { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12.5px; }
.sub { color: #57606a; margin: 0 0 12px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
  border: 1px solid #d0d7de; vertical-align: middle; white-space: nowrap; }
.bar { height: 10px; background: #eaeef2; border-radius: 5px; overflow: hidden; max-width: 480px; }
.bar > div { height: 100%; background: #2da44e; }
.picture { overflow: auto; max-height: 80vh; border: 1px solid #d0d7de; border-radius: 6px; }
.picture svg { display: block; }
table { border-collapse: collapse; width: 100%; table-layout: auto; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eaeef2;
  vertical-align: top; overflow-wrap: anywhere; }
th { background: #f6f8fa; font-weight: 600; }
table.history td:nth-child(-n+2), table.history th { white-space: nowrap; }
ol.waves { padding-left: 24px; }
ol.waves li { margin: 4px 0; overflow-wrap: anywhere; }
.warn { color: #9a6700; }
footer { margin-top: 32px; color: #57606a; font-size: 12px; overflow-wrap: anywhere; }
"""


def _badge(status: str) -> str:
    colour = STATUS_COLOURS.get(status, STATUS_COLOURS["open"])
    return (f'<span class="badge" style="background:{colour["fill"]};'
            f'border-color:{colour["stroke"]};color:{colour.get("color", "#1f2328")}">'
            f"{xml(status.replace('_', ' '))}</span>")


def _wave_cell(snap: Snapshot, scope: Scope, bead_id: str, wave_no: dict[str, int]) -> str:
    bead = snap.beads[bead_id]
    if bead_id in wave_no:
        return str(wave_no[bead_id])
    if bead_id in scope.waves.gated:
        return "gated"
    if bead.slingable and bead.done:
        return "done"
    return "—"


def _bead_ref(snap: Snapshot, bead_id: str) -> str:
    bead = snap.beads.get(bead_id)
    title = f" {xml(bead.title)}" if bead is not None else ""
    return f'<span class="id">{xml(bead_id)}</span>{title}'


def _waves(snap: Snapshot, scope: Scope) -> list[str]:
    out = ["<h2>Waves</h2>"]
    if scope.waves.waves:
        out.append('<ol class="waves">')
        for wave in scope.waves.waves:
            out.append("<li>" + ", ".join(_bead_ref(snap, b) for b in wave) + "</li>")
        out.append("</ol>")
    else:
        out.append("<p>No open work left in waves.</p>")
    if scope.waves.gated:
        out.append("<p><strong>Gated</strong> (waiting for work outside the convoy or an "
                   "open decision):</p><ul>")
        for bead_id, blockers in sorted(scope.waves.gated.items()):
            why = ", ".join(xml(b.describe()) for b in blockers)
            out.append(f"<li>{_bead_ref(snap, bead_id)}: waits for {why}</li>")
        out.append("</ul>")
    if scope.waves.done:
        out.append(f"<p><strong>Done</strong>: {len(scope.waves.done)} bead(s).</p>")
    if scope.waves.cycle:
        out.append(f'<p class="warn">In a dependency cycle: '
                   f'{xml(", ".join(scope.waves.cycle))}</p>')
    return out


def _table(snap: Snapshot, scope: Scope) -> list[str]:
    wave_no = {b: n for n, wave in enumerate(scope.waves.waves, 1) for b in wave}
    out = ["<h2>Beads</h2>", '<table class="beads"><thead><tr><th>id</th><th>title</th>'
           "<th>type</th><th>status</th><th>P</th><th>assignee</th><th>wave</th>"
           "<th>waits for</th></tr></thead><tbody>"]
    for depth, bead_id in scope.tree:
        bead = snap.beads[bead_id]
        deps = ", ".join(f"{xml(d.on)}" + ("" if d.type == "blocks" else f" ({xml(d.type)})")
                         for d in bead.blocking_deps())
        indent = f' style="padding-left:{8 + 14 * min(depth, 8)}px"' if depth else ""
        out.append(
            f'<tr data-id="{xml(bead_id)}"><td class="id"{indent}>{xml(bead_id)}</td>'
            f"<td>{xml(bead.title)}</td><td>{xml(bead.type)}</td><td>{_badge(bead.status)}</td>"
            f"<td>{bead.priority}</td><td>{xml(bead.assignee or '')}</td>"
            f"<td>{_wave_cell(snap, scope, bead_id, wave_no)}</td><td class=\"id\">{deps}</td>"
            "</tr>")
    out.append("</tbody></table>")
    return out


def _history(changes: list[Change]) -> list[str]:
    out = ["<h2>Recent state changes</h2>"]
    if not changes:
        return out + ["<p>No commit of the state ref touches these beads yet.</p>"]
    out.append('<table class="history"><thead><tr><th>when</th><th>commit</th><th>by</th>'
               "<th>change</th><th>beads</th></tr></thead><tbody>")
    for change in changes:
        shown = ", ".join(change.ids[:6]) + (f" +{len(change.ids) - 6}"
                                             if len(change.ids) > 6 else "")
        out.append(f"<tr><td>{xml(change.when.replace('T', ' '))}</td>"
                   f'<td class="id">{change.commit[:7]}</td><td>{xml(change.author)}</td>'
                   f"<td>{xml(change.subject)}</td><td class=\"id\">{xml(shown)}</td></tr>")
    out.append("</tbody></table>")
    return out


def report_html(snap: Snapshot, scope: Scope, svg: str, changes: list[Change], *,
                version: str, generated: str) -> str:
    """The page; `svg` is render_svg(..., standalone=False)."""
    p = scope.progress
    done, total = p.get("closed", 0), p.get("total", 0)
    percent = round(100 * done / total) if total else 0
    name = f"{scope.kind.capitalize()} {scope.id}"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{xml(name)}: {xml(scope.title)}</title>",
        f"<style>{CSS}</style></head><body>",
        f'<header><h1>{xml(scope.title)} {_badge(scope.status)}</h1>',
        f'<p class="sub"><span class="id">{xml(scope.id)}</span> · {xml(headline(scope))}</p>',
        f'<div class="bar" role="progressbar" aria-valuenow="{done}" aria-valuemin="0" '
        f'aria-valuemax="{total}"><div style="width:{percent}%"></div></div>',
        f'<p class="sub">{done} of {total} beads closed ({percent}%)</p>',
    ]
    out += [f'<p class="warn">warning: {xml(w)}</p>' for w in scope.warnings]
    out.append("</header>")
    out += ["<h2>Plan</h2>", '<div class="picture">', svg, "</div>"]
    out += _waves(snap, scope)
    out += _table(snap, scope)
    out += _history(changes)
    state = f" from state commit {snap.commit[:10]}" if snap.commit else ""
    out.append(f"<footer>Made by gitconvoy {xml(version)}{state} at {xml(generated)}: "
               "<code>git convoy report</code>.</footer>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"

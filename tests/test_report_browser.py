"""The HTML report as a person sees it: rendered by a real headless Chromium.

In the browser, over the SVG's boxes: every bead is drawn exactly once, no text runs out of
its box (or into the text beside it), nothing lies outside the SVG's viewBox, and the page
itself neither overflows sideways, loads anything nor logs an error.

Needs Debian's chromium (/usr/bin/chromium) and the `playwright` Python package (the test
extra); Playwright's own browser download is not used. CI installs both (docs/pictures.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from picture_plans import NASTY_TITLES, big_plan, nasty_plan, snapshot

from gitconvoy.plan.scope import scope_of
from gitconvoy.render.report import report_html
from gitconvoy.render.svg import render_svg
from gitconvoy.state.history import Change
from gitconvoy.state.model import Bead, Convoy

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium", allow_module_level=True)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is missing: pip install playwright")

# Flags that work on a machine without network or GPU; Playwright adds --headless itself.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# Run in the page: what is wrong with the SVG, as a list of sentences, and the boxes drawn.
CHECK_SVG = """
() => {
  const svg = document.querySelector('svg.gitconvoy-graph');
  const vb = svg.viewBox.baseVal;
  const origin = svg.getBoundingClientRect();
  const local = (el) => {
    const r = el.getBoundingClientRect();
    return {x: r.left - origin.left, y: r.top - origin.top, w: r.width, h: r.height};
  };
  const within = (a, b, slack) => a.x >= b.x - slack && a.y >= b.y - slack &&
    a.x + a.w <= b.x + b.w + slack && a.y + a.h <= b.y + b.h + slack;
  const problems = [];
  const drawn = [];
  for (const g of svg.querySelectorAll('g[data-id]')) {
    const kind = g.getAttribute('class').split(' ')[0];
    const id = g.dataset.id;
    drawn.push([kind, id]);
    const rect = g.querySelector(kind === 'epic' ? 'rect.header' : 'rect.box');
    if (!rect) { problems.push(`${id}: no box`); continue; }
    const box = local(rect);
    const texts = [...g.querySelectorAll('text')];
    for (const t of texts) {
      const r = local(t);
      if (!within(r, box, 0.5)) {
        problems.push(`${id}: text "${t.textContent}" (${JSON.stringify(r)}) leaves its box ` +
                      `${JSON.stringify(box)}`);
      }
      if (t.getComputedTextLength() > box.w - 8) {
        problems.push(`${id}: text "${t.textContent}" is ${t.getComputedTextLength()} px ` +
                      `wide in a ${box.w} px box`);
      }
    }
    for (let i = 0; i < texts.length; i++) {
      for (let j = i + 1; j < texts.length; j++) {
        const a = local(texts[i]), b = local(texts[j]);
        if (a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h) {
          problems.push(`${id}: "${texts[i].textContent}" overlaps "${texts[j].textContent}"`);
        }
      }
    }
  }
  const view = {x: 0, y: 0, w: vb.width, h: vb.height};
  for (const el of svg.querySelectorAll('rect, text, path, line, circle, polygon')) {
    if (el.closest('marker') || el.closest('defs')) continue;
    const r = local(el);
    if (!within(r, view, 0.5)) {
      problems.push(`${el.tagName} ${el.textContent.slice(0, 40)} at ${JSON.stringify(r)} ` +
                    `is outside the viewBox ${vb.width}x${vb.height}`);
    }
  }
  return {problems, drawn, width: svg.getBoundingClientRect().width, vbw: vb.width};
}
"""

CHECK_PAGE = """
() => {
  const problems = [];
  const page = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth > page) {
    problems.push(`the page is ${document.documentElement.scrollWidth} px wide in ${page} px`);
  }
  for (const el of document.body.querySelectorAll('*')) {
    if (el.closest('.picture')) continue;  // the picture scrolls inside its own box
    const r = el.getBoundingClientRect();
    if (r.width && (r.left < -0.5 || r.right > page + 0.5)) {
      problems.push(`<${el.tagName.toLowerCase()}> ${el.textContent.slice(0, 40)} reaches ` +
                    `${r.left}..${r.right} of ${page} px`);
    }
  }
  return problems;
}
"""


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as play:
        chromium = play.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield chromium
        chromium.close()


def open_page(browser, path: Path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    events: dict[str, list[str]] = {"requests": [], "errors": []}
    page.on("request", lambda req: events["requests"].append(req.url))
    page.on("console", lambda msg: msg.type == "error" and events["errors"].append(msg.text))
    page.on("pageerror", lambda exc: events["errors"].append(str(exc)))
    page.goto(path.as_uri())
    return page, events


def write_report(tmp_path: Path, snap, name: str, max_boxes: int = 150) -> tuple[Path, list]:
    scope = scope_of(snap, name)
    svg = render_svg(snap, scope, max_boxes, standalone=False)
    changes = [Change("0123456789abcdef0123456789abcdef01234567", "2026-11-30T06:55+00:00",
                      "Ann <ann@example.com>", f"bead update {scope.members[-1]}: {title}",
                      (scope.members[-1],)) for title in NASTY_TITLES]
    path = tmp_path / "report.html"
    path.write_text(report_html(snap, scope, svg, changes, version="test",
                                generated="2026-11-30T07:00:00Z"), encoding="utf-8")
    return path, scope.members


def assert_page_is_sound(browser, path: Path) -> list[list[str]]:
    page, events = open_page(browser, path)
    try:
        found = page.evaluate(CHECK_SVG)
        assert found["problems"] == []
        assert found["width"] == pytest.approx(found["vbw"])  # drawn at its own size
        assert page.evaluate(CHECK_PAGE) == []
        assert events["requests"] == [path.as_uri()]  # self-contained: loads nothing else
        assert events["errors"] == []
        return found["drawn"]
    finally:
        page.close()


def test_the_report_draws_every_bead_once_and_keeps_text_inside(browser, tmp_path: Path):
    snap = nasty_plan()
    path, members = write_report(tmp_path, snap, "convoy-np")
    drawn = assert_page_is_sound(browser, path)
    shown = [i for kind, i in drawn if kind != "outside"]
    assert sorted(shown) == sorted(members)  # one box (or frame) per bead id
    assert [i for kind, i in drawn if kind == "outside"] == ["ext-1"]


def test_a_folded_500_bead_report_is_sound_in_the_browser(browser, tmp_path: Path):
    snap = big_plan()
    path, members = write_report(tmp_path, snap, "convoy-big")
    drawn = assert_page_is_sound(browser, path)
    assert [kind for kind, _ in drawn].count("group") == 50


def test_all_500_beads_unfolded_are_sound_in_the_browser(browser, tmp_path: Path):
    snap = big_plan()
    path, members = write_report(tmp_path, snap, "convoy-big", max_boxes=0)
    drawn = assert_page_is_sound(browser, path)
    assert sorted(i for _, i in drawn) == sorted(members)


def test_the_standalone_svg_opens_in_the_browser(browser, tmp_path: Path):
    snap = nasty_plan()
    path = tmp_path / "plan.svg"
    path.write_text(render_svg(snap, scope_of(snap, "convoy-np")), encoding="utf-8")
    page, events = open_page(browser, path)
    try:
        assert page.evaluate("() => document.querySelectorAll('g[data-id]').length") == len(
            scope_of(snap, "convoy-np").members) + 1
        assert events["errors"] == []
    finally:
        page.close()


def test_the_picture_survives_a_title_in_every_script(browser, tmp_path: Path):
    titles = ["Ελληνικά κεφαλαία ΩΩΩΩΩΩΩΩΩΩΩΩΩΩΩΩΩ", "Кириллица ЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖ",
              "עברית ושלום עולם ארוך מאוד מאוד", "العربية نص طويل جدا جدا جدا جدا",
              "हिन्दी में एक लंबा शीर्षक है यहाँ", "한국어 제목이 아주 길어요 정말 길어요",
              "e\u0301\u0301\u0301 combining marks " * 3, "👩‍👩‍👧‍👦 family emoji " * 3]
    beads = [Bead(f"s{n}", title) for n, title in enumerate(titles)]
    snap = snapshot(beads, [Convoy("convoy-s", "scripts", tracks=[b.id for b in beads])])
    path, members = write_report(tmp_path, snap, "convoy-s")
    drawn = assert_page_is_sound(browser, path)
    assert sorted(i for _, i in drawn) == sorted(members)

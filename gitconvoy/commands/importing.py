"""`git convoy import`: a PRD, a YAML plan or a beads export, in one state transaction."""

from __future__ import annotations

import os
from typing import Any

import click

from gitconvoy import progress
from gitconvoy.commands.io import json_option, open_store, print_json, say, say_lines
from gitconvoy.errors import ConvoyError
from gitconvoy.importers.beads_jsonl import Export, merge_into, parse_export
from gitconvoy.importers.build import BuildResult, Planned, build_import
from gitconvoy.importers.outline import ImportFailure, Outline
from gitconvoy.importers.plan import parse_plan
from gitconvoy.importers.prd import parse_prd
from gitconvoy.plan.waves import WavePlan, plan_waves
from gitconvoy.render.plan import gated_lines, wave_lines
from gitconvoy.state.model import Bead, Convoy, now
from gitconvoy.state.snapshot import Snapshot
from gitconvoy.state.store import Store
from gitconvoy.state.tx import Tx

FORMATS = {".md": "prd", ".markdown": "prd", ".yaml": "plan", ".yml": "plan", ".jsonl": "beads"}
ACTION_MARK = {"create": "+", "update": "~", "same": "=", "deleted": "x"}


def _format_of(path: str, given: str | None) -> str:
    if given:
        return given
    found = FORMATS.get(os.path.splitext(path)[1].lower())
    if not found:
        raise ConvoyError(f"cannot tell the format of {path}: use --from prd, plan or beads")
    return found


def _read(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise ConvoyError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ImportFailure(path, line, "is not valid UTF-8") from None


def _doc_key(store: Store, path: str) -> str:
    """The file's path from the top of the work tree: the same wherever the command runs."""
    full = os.path.realpath(path)
    top = store.repo.workdir
    if top:
        rel = os.path.relpath(full, os.path.realpath(top))
        if not rel.startswith(".."):
            return rel.replace(os.sep, "/")
    return full


@click.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--from", "kind", type=click.Choice(["prd", "plan", "beads"]),
              help="Input format (default: from the extension: .md, .yaml/.yml, .jsonl).")
@click.option("--dry-run", "-n", is_flag=True, help="Show what would be written; write nothing.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the root epic id.")
@click.option("--prefix", help="Id prefix for new epics (default: front matter, then state).")
@click.option("--skip-bad", is_flag=True, help="beads: import the good lines, report bad ones.")
@json_option
def import_cmd(path: str, kind: str | None, dry_run: bool, quiet: bool, prefix: str | None,
               skip_bad: bool, as_json: bool) -> int:
    """Import a design (Markdown PRD or YAML plan) or a beads issues.jsonl export.

    Everything is written in one state transaction, or nothing is. Re-importing the same
    file updates the beads it created before (docs/import.md).
    """
    kind = _format_of(path, kind)
    store = open_store()
    progress.note(f"reading {path}")
    text = _read(path)
    if kind == "beads":
        return _import_beads(store, path, text, dry_run, quiet, skip_bad, as_json)
    outline = parse_prd(text, path) if kind == "prd" else parse_plan(text, path)
    outline.doc_key = outline.doc_key or _doc_key(store, path)
    return _import_design(store, outline, prefix, dry_run, quiet, as_json)


# --- designs ----------------------------------------------------------------------------


def _import_design(store: Store, outline: Outline, prefix: str | None, dry_run: bool,
                   quiet: bool, as_json: bool) -> int:
    actor = store.identity()

    def plan(tx_beads: Any, config_prefix: str) -> BuildResult:
        return build_import(outline, tx_beads, prefix=prefix or outline.prefix or config_prefix,
                            actor=actor, stamp=now())

    views: list[Snapshot] = []

    def apply(tx: Tx) -> BuildResult:
        progress.note("planning the beads")
        found = plan(tx.beads, tx.config.prefix)
        progress.note(f"writing {len(found.changed())} beads")
        for bead in found.changed():
            tx.put(bead)
        views.append(tx.view())  # the state as it is (or would be) after the import
        return found

    if dry_run:
        result = apply(Tx(store.snapshot()))
    else:
        result = store.transact(apply, lambda r: _message(outline.source, r))
    root = result.root.bead.id
    if quiet and not as_json:
        say(root)
        return 0
    merged = views[-1]
    members = [p.bead.id for p in result.items if p.action != "deleted"]
    waves = plan_waves(merged.beads, members)
    if as_json:
        print_json(_design_json(outline, result, waves, dry_run))
    else:
        _print_design(outline, result, merged, waves, dry_run)
    return 0


def _message(source: str, result: BuildResult) -> str:
    c = result.counts()
    return (f"import {source}: root {result.root.bead.id}, {c['create']} created, "
            f"{c['update']} updated")


def _tree_line(item: Planned, names: dict[str, str]) -> str:
    bead = item.bead
    extra = []
    if bead.deps:
        extra.append("after " + ", ".join(names.get(d.on, d.on) for d in bead.deps))
    if bead.integration_branch:
        extra.append(f"branch {bead.integration_branch}")
    if bead.status != "open":
        extra.append(bead.status)
    tail = f"  [{'; '.join(extra)}]" if extra else ""
    return (f"{'  ' * item.depth}{ACTION_MARK[item.action]} {bead.id}  {bead.type}  "
            f"P{bead.priority}  {bead.title}{tail}")


def _print_design(outline: Outline, result: BuildResult, merged: Snapshot, waves: WavePlan,
                  dry_run: bool) -> None:
    c = result.counts()
    if not dry_run:
        say(result.root.bead.id)
    names = {p.bead.id: p.node.key or p.node.slug for p in result.items}
    verb = "would import" if dry_run else "imported"
    say(f"{verb} {outline.source}: {len(result.items)} beads ({c['create']} new, "
        f"{c['update']} updated, {c['same']} unchanged"
        + (f", {c['deleted']} deleted here and left alone" if c["deleted"] else "") + ")")
    if dry_run:
        say("")
        say("Tree (+ new, ~ updated, = unchanged, x deleted here)")
        say_lines(f"  {_tree_line(item, names)}" for item in result.items)
        say("")
        say("Waves")
        say_lines(wave_lines(merged, waves, {}) or ["  (none)"])
        if waves.gated:
            say("")
            say("Gated (blocked by work outside this document)")
            say_lines(gated_lines(waves))
        say("")
        say("dry run: nothing was written")
    if result.stale:
        say(f"note: {len(result.stale)} bead(s) imported earlier from this document are "
            f"no longer in it and were left as they are: {', '.join(result.stale)}")


def _design_json(outline: Outline, result: BuildResult, waves: WavePlan,
                 dry_run: bool) -> dict[str, Any]:
    return {
        "source": outline.source,
        "doc_key": result.doc_key,
        "dry_run": dry_run,
        "root": result.root.bead.id,
        "counts": result.counts(),
        "beads": [
            {
                "id": p.bead.id, "key": p.bead.import_key, "line": p.node.line,
                "action": p.action, "title": p.bead.title, "type": p.bead.type,
                "parent": p.bead.parent, "depth": p.depth,
                "deps": [{"on": d.on, "type": d.type} for d in p.bead.deps],
                "integration_branch": p.bead.integration_branch,
            }
            for p in result.items
        ],
        "stale": result.stale,
        "waves": waves.waves,
        "gated": {b: [x.to_json() for x in blockers] for b, blockers in waves.gated.items()},
    }


# --- beads exports ----------------------------------------------------------------------


def _first_bad(path: str, bad: list[tuple[int, str]]) -> ImportFailure:
    line, reason = bad[0]
    more = f" (and {len(bad) - 1} more bad line(s))" if len(bad) > 1 else ""
    return ImportFailure(path, line, f"{reason}{more}; nothing was written (--skip-bad imports "
                         "the good lines)")


def _import_beads(store: Store, path: str, text: str, dry_run: bool, quiet: bool,
                  skip_bad: bool, as_json: bool) -> int:
    progress.note(f"parsing {path}")
    export = parse_export(text.splitlines(), stamp=now(), actor=store.identity())
    if export.report.bad and not skip_bad:
        raise _first_bad(path, export.report.bad)

    def plan(beads: Any, convoys: Any) -> list[Bead | Convoy]:
        export.report.written.clear()
        writes, conflicts = merge_into(export, beads, convoys)
        if conflicts and not skip_bad:
            raise _first_bad(path, conflicts)
        export.report.bad = sorted(set(export.report.bad) | set(conflicts))
        return writes

    if dry_run:
        snap = store.snapshot()
        plan(snap.beads, snap.convoys)
    else:
        def mutate(tx: Tx) -> list[Bead | Convoy]:
            writes = plan(tx.beads, tx.convoys)
            progress.note(f"writing {len(writes)} objects")
            for obj in writes:
                tx.put(obj)
            return writes

        store.transact(mutate, lambda w: f"import {path} (beads): {len(w)} objects written")
    if as_json:
        print_json({"source": path, "dry_run": dry_run, **export.report.to_json()})
    elif not quiet:
        for line in report_lines(path, export, dry_run):
            say(line)
    return 0


def _counts(counter: Any) -> str:
    return ", ".join(f"{n} {what}" for what, n in sorted(counter.items())) or "none"


def report_lines(path: str, export: Export, dry_run: bool) -> list[str]:
    r = export.report
    verb = "would import" if dry_run else "imported"
    out = [f"{verb} {path} (beads export, {r.lines} lines)",
           f"  imported: {sum(r.imported.values())} ({_counts(r.imported)})",
           f"  written:  {_counts(r.written)}",
           f"  skipped:  {sum(r.skipped.values())} ({_counts(r.skipped)})",
           f"  mapped:   {sum(r.mapped.values())} ({_counts(r.mapped)})",
           f"  dropped:  {sum(r.dropped.values())} ({_counts(r.dropped)})"]
    if r.cycles:
        out.append(f"  warning: {len(r.cycles)} dependency cycle(s) imported as they were, "
                   f"e.g. {' → '.join(r.cycles[0])}: see 'git convoy dep cycles'")
    if r.bad:
        out.append(f"  bad lines skipped: {len(r.bad)}")
        out += [f"    {path}:{line}: {reason}" for line, reason in r.bad]
    if dry_run:
        out.append("dry run: nothing was written")
    return out

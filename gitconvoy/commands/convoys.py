"""Convoy commands: create, add, stage, launch, status, list, close, sling."""

from __future__ import annotations

import click

from gitconvoy import progress
from gitconvoy.commands.io import (
    json_option,
    open_store,
    print_json,
    say,
    say_lines,
    say_text,
    warn_broken,
)
from gitconvoy.commands.refargs import branch_value
from gitconvoy.errors import EXIT_USER, ConvoyError
from gitconvoy.flow import detached, strategies, work
from gitconvoy.flow.dispatch import (
    Dispatched,
    dispatch_bead,
    dispatch_coordinator,
    nothing_dispatched,
)
from gitconvoy.git import formulas, notify
from gitconvoy.land import integration
from gitconvoy.plan import convoys, graph, staging
from gitconvoy.plan.stage_options import StageOptions
from gitconvoy.plan.targets import rig_for
from gitconvoy.plan.waves import plan_waves
from gitconvoy.render.plan import gated_lines, plan_lines, tree_lines, wave_lines
from gitconvoy.render.shapes import bead_json, convoy_json
from gitconvoy.state.model import (
    DEFAULT_STRATEGY,
    IN_FLIGHT,
    Bead,
    Convoy,
    now,
    to_second,
    touched,
)
from gitconvoy.state.snapshot import Snapshot
from gitconvoy.state.store import Store
from gitconvoy.state.tx import Tx


def _branch_exists(store: Store) -> object:
    return lambda name: store.head_of(f"refs/heads/{name}") is not None


def _strategy_name(_ctx: click.Context, _param: click.Parameter, value: str | None
                   ) -> str | None:
    return strategies.check_name(value) if value is not None else None


strategy_option = click.option(
    "--strategy", callback=_strategy_name, metavar="NAME",
    help="How the feeder hands out the convoy's ready beads: blocks (default: all that fit, "
         "highest priority first), serial (one at a time, wave order), coordinator (your "
         "command chooses) or an installed plugin (docs/convoys.md, 'Strategies').")


def _warn_unset(store: Store, strategy: str | None) -> None:
    """A coordinator without a command falls back at every step: say so now."""
    if strategy == "coordinator" and not strategies.coordinator_command(store):
        say(f"warning: no coordinator command is set, so the feeder dispatches this convoy "
            f"as blocks: {strategies.SET_IT}", err=True)


@click.command()
@click.argument("title")
@click.argument("beads", nargs=-1)
@click.option("--from-epic", "epic", help="Track this epic and all its descendants.")
@click.option("--rig", help="Rig for beads that name none.")
@click.option("--target", help="Target branch for beads that name none.", callback=branch_value)
@strategy_option
def create(title: str, beads: tuple[str, ...], epic: str | None, rig: str | None,
           target: str | None, strategy: str | None) -> int:
    """Create an open convoy tracking BEADS (the feeder dispatches them as they get ready)."""
    store = open_store()
    actor = store.identity()

    def mutate(tx: Tx) -> Convoy:
        tracked = list(beads)
        if epic:
            root = tx.bead(epic)
            if root.type != "epic":
                raise ConvoyError(f"--from-epic {epic} is a {root.type}, not an epic")
            tracked += [epic] + graph.Index(tx.beads).descendants(epic)
        if not tracked:
            raise ConvoyError("a convoy needs at least one bead (or --from-epic EPIC)")
        if rig and rig not in tx.config.rigs:
            raise ConvoyError(f"unknown rig '{rig}': see 'git convoy rig list'")
        return convoys.new_convoy(tx, title, tracked, actor, rig=rig, target=target,
                                  source=epic, strategy=strategy or DEFAULT_STRATEGY)

    made = store.transact(mutate, lambda c: f"convoy create {c.id}: {c.title}")
    _warn_unset(store, strategy)
    say(made.id)
    return 0


@click.command()
@click.argument("convoy_id")
@click.argument("beads", nargs=-1, required=True)
def add(convoy_id: str, beads: tuple[str, ...]) -> int:
    """Track more beads (adding to a closed convoy reopens it)."""
    store = open_store()
    updated = store.transact(lambda tx: convoys.add(tx, convoy_id, list(beads)),
                             f"convoy add {convoy_id}: {' '.join(beads)}")
    say(f"convoy {convoy_id} ({updated.status}) tracks {len(updated.tracks)} beads")
    return 0


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--title", help="Convoy title (default: the epic's title).")
@click.option("--infer-blocks", is_flag=True,
              help="Chain sibling sub-epics nobody ordered, in creation order (deps marked "
                   "inferred; a re-stage without this removes them).")
@click.option("--max-depth", type=click.IntRange(min=1), metavar="N",
              help="Refuse a hierarchy deeper than N levels below the root.")
@click.option("--validate", is_flag=True,
              help="Add a capstone task blocked by every task, with the epic's acceptance "
                   "criteria and the mol-validate formula.")
@strategy_option
@json_option
def stage(inputs: tuple[str, ...], title: str | None, infer_blocks: bool,
          max_depth: int | None, validate: bool, strategy: str | None, as_json: bool) -> int:
    """Validate an epic, beads or a convoy: tree, waves, warnings; create a staged convoy."""
    store = open_store()
    snap = store.snapshot()
    opts = StageOptions(infer_blocks=infer_blocks, max_depth=max_depth, validate=validate,
                        at=now(), actor=store.identity())
    progress.note(f"analysing {len(snap.beads)} beads")
    plan = staging.analyse(snap, list(inputs), _branch_exists(store), opts)  # type: ignore[arg-type]
    progress.note("writing the convoy")
    made: Convoy | None = None
    if not plan.errors:
        actor = opts.actor or ""

        def mutate(tx: Tx) -> Convoy:
            # the plan above holds for the state it was made from; after a lost race, redo it
            fresh = plan if tx.base.commit == snap.commit else staging.analyse(
                tx.view(), list(inputs), _branch_exists(store), opts)  # type: ignore[arg-type]
            return convoys.stage(tx, fresh, title, actor, strategy)

        made = store.transact(mutate, lambda c: f"stage {c.id} ({c.status}): {c.title}")
    shown = plan.state or snap
    if as_json:
        print_json(staging.plan_json(shown, plan, made))
    elif plan.tree:  # an input that names nothing has no plan to show: the error says it
        say_lines(plan_lines(shown, plan))
        if made is not None:
            say()
            _warn_unset(store, strategy)
            say(f"staged convoy {made.id} ({made.status}, strategy {made.strategy}); "
                f"launch it with: git convoy launch {made.id}"
                + (" --force" if made.status == "staged_warnings" else ""))
    if plan.errors:
        first = plan.errors[0]
        raise ConvoyError(f"{first.code}: {first.message} (nothing was staged)")
    return 0


def _dispatch_lines(results: list[Dispatched]) -> None:
    for r in results:
        say(f"  {r.line()}")


@click.command()
@click.argument("convoy_id")
@click.option("--force", is_flag=True, help="Launch a convoy staged with warnings.")
@strategy_option
@json_option
def launch(convoy_id: str, force: bool, strategy: str | None, as_json: bool) -> int:
    """Open a staged convoy and dispatch its first wave now. With --strategy on an open
    convoy: feed it that way from now on."""
    from gitconvoy.cycle import feed

    store = open_store()
    snap = store.snapshot()
    convoy = snap.convoy(convoy_id)
    parked = sorted({
        rig.name for b in convoy.tracks if b in snap.beads and snap.beads[b].slingable
        for rig in [rig_for(snap.config, snap.beads[b], convoy)] if rig and rig.parked
    })
    if parked:
        raise ConvoyError(f"rig {', '.join(parked)} is parked: unpark it before launching "
                          f"{convoy_id} (nothing was changed)")
    running = convoy.status == "open" and strategy is not None
    store.transact(lambda tx: convoys.launch(tx, convoy_id, force, strategy),
                   f"launch {convoy_id}" + (f" --strategy {strategy}" if strategy else ""))
    _warn_unset(store, strategy)
    failed = None if running else notify.send(
        store, {"event": "convoy_launched", "convoy": convoy_id, "title": convoy.title,
                "beads": len(convoy.tracks), "command": f"git convoy status {convoy_id}"})
    if failed:
        say(f"warning: {failed}", err=True)
    epics = [b for b in convoy.tracks if b in snap.beads and snap.beads[b].type == "epic"]
    cut = integration.create_planned(store, epics)  # before anything is dispatched from them
    report = feed(store)
    snap = store.snapshot()
    waves = plan_waves(snap.beads, snap.convoys[convoy_id].tracks)
    # asked to start work, started none: a failure a script must see (docs/convoys.md)
    failed = nothing_dispatched(report.dispatched)
    if as_json:
        print_json({"convoy": convoy_id, "strategy": snap.convoys[convoy_id].strategy,
                    "waves": waves.waves,
                    "integration_branches": [{"epic": c.epic, "branch": c.branch,
                                              "base": c.base, "commit": c.commit} for c in cut],
                    "dispatched": [r.to_json() for r in report.dispatched]})
        return EXIT_USER if failed else 0
    for c in cut:
        say(f"created {c.branch} from {c.base} @ {c.commit[:10]} for {c.epic}")
    verb = "fed" if running else "launched"
    say(f"{verb} {convoy_id} (strategy {snap.convoys[convoy_id].strategy}): "
        f"{len(waves.waves)} wave(s) left, {len(waves.done)} bead(s) done")
    say_lines(wave_lines(snap, waves, {}))
    say_lines(report.fallback_lines())
    say("dispatched:")
    _dispatch_lines(report.dispatched)
    if not report.dispatched:
        say("  (nothing ready)")
    if failed:
        say(f"error: launched {convoy_id}, but no dispatch succeeded: fix what each ✗ "
            "line names; the feeder retries them", err=True)
    return EXIT_USER if failed else 0


def _progress(snap: Snapshot, convoy: Convoy) -> dict[str, int]:
    beads = snap.beads
    work = [beads[t] for t in convoy.tracks if t in beads and beads[t].slingable
            and beads[t].status != "tombstone"]
    return {"closed": sum(b.status == "closed" for b in work), "total": len(work),
            "in_flight": sum(b.status in ("hooked", "in_progress") for b in work)}


@click.command()
@click.argument("convoy_id", required=False)
@json_option
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]),
              default="text", show_default=True,
              help="markdown: a table and a mermaid graph for a PR or an issue.")
def status(convoy_id: str | None, as_json: bool, fmt: str) -> int:
    """Progress of a convoy: each bead's state, who has it, the waves left. Without a
    convoy: every open or staged convoy, one line each."""
    if convoy_id is None:
        if fmt == "markdown":
            raise click.UsageError("--format markdown draws one convoy: name it")
        return _list(False, as_json or fmt == "json")
    store = open_store()
    snap = store.snapshot()
    warn_broken(snap)
    convoy = snap.convoy(convoy_id)
    waves = plan_waves(snap.beads, convoy.tracks)
    progress = _progress(snap, convoy)
    if fmt == "markdown" and not as_json:
        from gitconvoy.render.markdown import status_markdown

        say_text(status_markdown(snap, convoy, waves, progress))
        return 0
    if as_json or fmt == "json":
        print_json({**convoy_json(convoy), "progress": progress,
                    "beads": [bead_json(snap.beads[t]) for t in convoy.tracks
                              if t in snap.beads],
                    "waves": waves.waves,
                    "gated": {b: [x.to_json() for x in v] for b, v in waves.gated.items()}})
        return 0
    say(f"{convoy.id}  {convoy.status}  {convoy.title}")
    say(f"  {progress['closed']}/{progress['total']} closed, "
        f"{progress['in_flight']} in flight")
    say(f"  {strategy_line(convoy)}")
    tree = staging.member_tree(snap, [t for t in convoy.tracks if t in snap.beads],
                               graph.Index(snap.beads))
    steps = work.step_counts(store, [snap.beads[b] for _, b in tree])
    for line, (_, bead_id) in zip(tree_lines(snap, tree, waves), tree, strict=True):
        bead = snap.beads[bead_id]
        who = f"  @{bead.assignee}" if bead.assignee and bead.status != "closed" else ""
        grown = bool(convoy.launched_at and bead.created_at
                      and bead.created_at > convoy.launched_at)
        who += "  (added after launch)" if grown else ""
        if bead_id in steps:
            who += f"  steps {steps[bead_id][0]}/{steps[bead_id][1]}"
        problem = (detached.current_problem(detached.run_of(store, bead_id), bead)
                   if bead.status == "hooked" else None)  # a hook's detached dispatch
        say(f"  {line}{who}{_dispatch_failure(bead)}" + (f"  ({problem})" if problem else ""))
    if waves.gated:
        say("Gated")
        say_lines(gated_lines(waves))
    for warning in convoy.warnings:
        say(f"  warning: {warning}")
    return 0


def strategy_line(convoy: Convoy) -> str:
    """The convoy's strategy, and its recorded fallback (or that it is unknown here)."""
    line = f"strategy {convoy.strategy}"
    if convoy.strategy_fallback:
        when = to_second(convoy.strategy_fallback_at or "")
        return f"{line}: fell back to blocks at {when}: {convoy.strategy_fallback}"
    unknown = strategies.unknown_here(convoy.strategy)
    return f"{line}: {unknown}; dispatched as blocks" if unknown else line


def _dispatch_failure(bead: Bead) -> str:
    """An open bead's last failed dispatch and when the feeder tries it again."""
    error = bead.dispatch.get("last_error") if bead.status == "open" else None
    if not error:
        return ""
    retry = bead.dispatch.get("next_try")
    when = f"; next try at {to_second(str(retry))}" if retry else ""
    return f"  ✗ last dispatch failed: {error}{when}"


@click.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include closed convoys.")
@json_option
def list_convoys(show_all: bool, as_json: bool) -> int:
    """List open and staged convoys."""
    return _list(show_all, as_json)


def _list(show_all: bool, as_json: bool) -> int:
    snap = open_store().snapshot()
    chosen = sorted((c for c in snap.convoys.values() if show_all or c.status != "closed"),
                    key=lambda c: (c.status == "closed", c.created_at or "", c.id))
    if as_json:
        print_json([{**convoy_json(c), "progress": _progress(snap, c)} for c in chosen])
        return 0
    say_lines(_convoy_line(c, _progress(snap, c)) for c in chosen)
    return 0


def _convoy_line(c: Convoy, p: dict[str, int]) -> str:
    return f"{c.id:<14} {c.status:<16} {p['closed']}/{p['total']}  {c.title}"


@click.command()
@click.argument("convoy_id")
@click.option("--force", is_flag=True, help="Close even with unfinished beads.")
@click.option("--reason", help="Why.")
def close(convoy_id: str, force: bool, reason: str | None) -> int:
    """Close (or cancel a staged) convoy."""
    store = open_store()
    store.transact(lambda tx: convoys.close(tx, convoy_id, force, reason),
                   f"convoy close {convoy_id}")
    say(f"closed {convoy_id}")
    return 0


@click.command()
@click.argument("beads", nargs=-1, required=True)
@click.option("--rig", help="Rig to run them on.")
@click.option("--formula", help="Workflow formula the workers follow, stored on the beads "
                                "(CONVOY_FORMULA; 'git convoy work' shows its steps); an "
                                "epic's default is mol-coordinator.")
@click.option("--var", "variables", multiple=True, metavar="NAME=VALUE",
              help="A value for one of the formula's vars (repeatable).")
@click.option("--title", help="Title of the convoy made for the batch.")
def sling(beads: tuple[str, ...], rig: str | None, formula: str | None,
          variables: tuple[str, ...], title: str | None) -> int:
    """Hand beads to workers: one convoy for the batch; ready ones dispatched now. An epic
    (alone) goes to a coordinator worker with the mol-coordinator formula."""
    store = open_store()
    snap = store.snapshot()
    values = formulas.parse_assignments(variables)
    epics = [b for b in beads if snap.bead(b).type == "epic"]
    if epics:
        return _sling_epic(store, beads, epics[0], rig, formula, values)
    if values and not formula:
        raise ConvoyError("--var needs --formula: the vars belong to a formula")
    if formula:
        formulas.for_worker(store, formula, values)  # unknown, invalid or a review: refused
    for bead_id in beads:
        bead = snap.bead(bead_id)
        if not bead.slingable:
            article = "an" if bead.type[:1] in "aeiou" else "a"
            raise ConvoyError(f"{bead_id} is {article} {bead.type}: only tasks, bugs, features and "
                              "chores are slung (stage an epic with 'git convoy stage')")
        if bead.status == "tombstone":
            raise ConvoyError(f"bead '{bead_id}' was deleted")
    if rig is not None:
        if rig not in snap.config.rigs:
            raise ConvoyError(f"unknown rig '{rig}': see 'git convoy rig list'")
        if snap.config.rigs[rig].parked:
            raise ConvoyError(f"rig {rig} is parked: unpark it or choose another rig")
    actor = store.identity()

    def mutate(tx: Tx) -> Convoy:
        tracked_by = {t: c for c in tx.convoys.values() if c.status == "open" for t in c.tracks}
        if rig is not None:
            for bead_id in beads:
                if tx.beads[bead_id].rig != rig and tx.beads[bead_id].status == "open":
                    tx.put(touched(tx.beads[bead_id], rig=rig))
        if formula:  # kept on the bead: whoever dispatches it later hands out the same
            for bead_id in beads:
                bead = tx.beads[bead_id]
                if not bead.done and bead.status not in IN_FLIGHT and \
                        (bead.formula, bead.formula_vars) != (formula, values):
                    tx.put(touched(bead, formula=formula, formula_vars=values))
        fresh = [b for b in beads if b not in tracked_by]
        if not fresh:
            return tracked_by[beads[0]]
        name = title or (tx.beads[fresh[0]].title if len(fresh) == 1
                         else f"sling {', '.join(fresh[:3])}" + (" …" if len(fresh) > 3 else ""))
        return convoys.new_convoy(tx, name, fresh, actor, rig=rig)

    convoy = store.transact(mutate, lambda c: f"sling {' '.join(beads)} (convoy {c.id})")
    say(f"convoy {convoy.id} tracks {', '.join(beads)}")
    snap = store.snapshot()
    index = graph.Index(snap.beads)
    results = []
    for bead_id in sorted(beads, key=lambda b: graph.sort_key(snap.beads[b])):
        bead = snap.beads[bead_id]
        if not index.is_ready(bead):
            why = (bead.status if bead.status != "open"
                   else "blocked by " + ", ".join(x.on for x in index.blockers(bead)))
            say(f"  … {bead_id}: waits ({why}); the feeder dispatches it later")
            continue
        owner = snap.convoys.get(convoy.id)
        for c in snap.convoys.values():
            if c.status == "open" and bead_id in c.tracks:
                owner = c
        results.append(dispatch_bead(store, bead_id, owner, rig))
    _dispatch_lines(results)
    failed = [r.bead for r in results if not r.ok]
    if failed:  # a script must see it on stderr too, not only in a ✗ line
        say(f"error: not dispatched: {', '.join(failed)} (the ✗ line says why)", err=True)
    return 1 if failed else 0


def _sling_epic(store: Store, beads: tuple[str, ...], epic: str, rig: str | None,
                formula: str | None, values: dict[str, str]) -> int:
    if len(beads) > 1:
        raise ConvoyError(f"{epic} is an epic: sling it alone (its coordinator stages the "
                          "epic's own convoy), and the other beads in a sling of their own")
    result = dispatch_coordinator(store, epic, rig, formula, values)
    _dispatch_lines([result])
    if not result.ok:
        say(f"error: coordinator of {epic} not started (the ✗ line says why)", err=True)
    return 0 if result.ok else EXIT_USER

"""The review gate of integration branches (DESIGN §8): review the combined change, then land.

When every child of an epic with an integration branch is closed and the gate is on, the
feeder starts a review of the branch's exact tip: the review formula's steps run against the
tip (the full diff against the base, conflict-marker residue, changed code without changed
tests, the rig's check command), and the report is stored on the state ref. A person (or the
automatic reviewer command) approves — the branch lands — or rejects — a fix task under the
epic keeps it open; when the fix lands on the integration branch, the new tip gets a new
review. A review is of one tip: an approval of an older tip does not let a newer one land.

The gate, the reviewer command and the review formula are read only from local git config
or from `.convoy/config.toml` and `.convoy/formulas/` committed on the trusted branch
(`convoy.configRef`, gitconvoy.git.localconfig) — never from the epic's base or any other
branch the state names, never from the state ref:

    git config convoy.review true            # or [review] enabled = true
    git config convoy.review.command ./rv.sh # or [review] command = "./rv.sh"
    git config convoy.review.formula NAME    # or [review] formula = "NAME"
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pygit2

from gitconvoy.errors import ConvoyError
from gitconvoy.git import formulas, gitcli, localconfig, revs
from gitconvoy.land import checks, integration, refinery, targetchecks
from gitconvoy.plan.edits import BeadSpec, create_bead
from gitconvoy.state.model import Bead, Review, now, touched
from gitconvoy.state.store import Store
from gitconvoy.state.tx import Tx

DEFAULT_FORMULA = "mol-integration-review"
LABEL = "review:"
TRUE = frozenset({"true", "yes", "on", "1"})
MARKERS = ("<<<<<<< ", "<<<<<<<\n", "=======\n", ">>>>>>> ", ">>>>>>>\n")
CODE_EXT = frozenset({
    ".py", ".js", ".jsx", ".ts", ".tsx", ".go", ".rs", ".java", ".kt", ".c", ".h", ".cc",
    ".cpp", ".hpp", ".cs", ".rb", ".php", ".swift", ".scala", ".sh", ".m", ".ex", ".exs",
})
REPORT_LIMIT = 20_000


# --- settings (local config or committed config, never the state ref) ------------------


def _setting(store: Store, key: str) -> str | None:
    return localconfig.review_found(store, key).value


def enabled(store: Store) -> bool:
    value = _setting(store, "enabled")
    return value is not None and value.strip().lower() in TRUE


def review_id(epic_id: str, tip: str) -> str:
    return f"rv-{epic_id}-{tip[:12]}"


def reviews_of(snap_or_tx: Any, epic_id: str) -> list[Review]:
    """The epic's reviews, oldest first."""
    found = [r for r in snap_or_tx.objects["reviews"].values() if r.epic == epic_id]
    return sorted(found, key=lambda r: (r.created_at or "", r.id))


def latest(snap_or_tx: Any, epic_id: str) -> Review | None:
    live = [r for r in reviews_of(snap_or_tx, epic_id) if r.status != "superseded"]
    return live[-1] if live else None


def _with_label(epic: Bead, status: str) -> Bead:
    labels = [lb for lb in epic.labels if not lb.startswith(LABEL)] + [LABEL + status]
    return touched(epic, labels=sorted(labels))


# --- running the formula ----------------------------------------------------------------


@dataclass
class Context:
    epic: Bead
    branch: str
    base: str
    tip: str
    base_tip: str
    checking: targetchecks.CheckPlan


@dataclass
class Outcome:
    findings: list[str]
    lines: list[str]
    diffstat: str


def _changed(store: Store, ctx: Context) -> tuple[str, list[str]]:
    """Diffstat and the files present at the tip that the combined change touched."""
    since = revs.merge_base(store, ctx.base_tip, ctx.tip) or ctx.base_tip
    stat = gitcli.run_git(["diff", "--stat=120", "--no-color", since, ctx.tip],
                          git_dir=store.common_dir).out.rstrip()
    names = gitcli.run_git(["diff", "--name-only", "-z", "--diff-filter=d", since, ctx.tip],
                           git_dir=store.common_dir).out
    return stat, sorted(n for n in names.split("\0") if n)


def _marker_lines(store: Store, tip: str, files: list[str]) -> list[str]:
    tree = store.repo[tip].peel(pygit2.Tree)
    hits = []
    for path in files:
        try:
            obj = store.repo[tree[path].id]
        except KeyError:
            continue
        if not isinstance(obj, pygit2.Blob) or obj.is_binary:
            continue
        text = obj.data.decode("utf-8", "replace")
        for number, line in enumerate(text.splitlines(keepends=True), 1):
            if line.startswith(MARKERS) or line in ("=======", "<<<<<<<", ">>>>>>>"):
                hits.append(f"{path}:{number}")
    return hits


def is_test(path: str) -> bool:
    parts = path.lower().split("/")
    name = parts[-1]
    return (any(p in ("test", "tests", "spec", "specs", "__tests__") for p in parts[:-1])
            or name.startswith("test_") or "_test." in name or ".test." in name
            or ".spec." in name)


def is_code(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in CODE_EXT and not is_test(path)


def _ordered(steps: list[formulas.Step]) -> list[formulas.Step]:
    """File order, except that a step comes after the steps it needs."""
    done: list[formulas.Step] = []
    left = list(steps)
    while left:
        ready = [s for s in left if all(n in {d.id for d in done} for n in s.needs)]
        pick = ready[0] if ready else left[0]  # a needs cycle: keep file order
        done.append(pick)
        left.remove(pick)
    return done


def run_steps(store: Store, formula: formulas.Formula, ctx: Context) -> Outcome:
    diffstat, files = _changed(store, ctx)
    findings: list[str] = []
    lines: list[str] = []
    env = {"CONVOY_EPIC": ctx.epic.id, "CONVOY_BRANCH": ctx.branch, "CONVOY_BASE": ctx.base,
           "CONVOY_TIP": ctx.tip, "CONVOY_COMMIT": ctx.tip, "CONVOY_BEAD": ctx.epic.id,
           "CONVOY_TARGET": ctx.base}
    for step in _ordered(formula.steps):
        found, note = _run_step(store, step, ctx, files, env)
        findings += [f"{step.id}: {f}" for f in found]
        mark = "FINDING" if found else "ok"
        lines.append(f"- [{mark}] {step.title}" + (f" ({note})" if note else ""))
        lines += [f"    {f}" for f in found]
    return Outcome(findings, lines, diffstat)


def _run_step(store: Store, step: formulas.Step, ctx: Context, files: list[str],
              env: dict[str, str]) -> tuple[list[str], str]:
    run = (step.run or "").strip()
    if not run or run == "builtin:diffstat":
        return [], f"{len(files)} file(s) changed"
    if run == "builtin:conflict-markers":
        hits = _marker_lines(store, ctx.tip, files)
        return [f"conflict marker at {h}" for h in hits], ""
    if run == "builtin:untested-code":
        code = [f for f in files if is_code(f)]
        if code and not any(is_test(f) for f in files):
            return [f"{len(code)} code file(s) changed without a test change: "
                    f"{', '.join(code[:10])}"], ""
        return [], ""
    if run == "builtin:check":
        if not ctx.checking.checks:
            return [], f"no check guards {ctx.base}: {ctx.checking.why}"
        result = targetchecks.run(store, ctx.checking, ctx.tip, label=f"review-check-{ctx.epic.id}",
                                  env=env)
        return ([], result.detail) if result.passed else \
            ([f"{result.detail}; log: {result.log}"], "")
    if run.startswith("builtin:"):
        return [f"unknown built-in step {run!r}"], ""
    return _shell(store, run, ctx, f"review-{step.id}-{ctx.epic.id}", env)


def _shell(store: Store, command: str, ctx: Context, label: str,
           env: dict[str, str]) -> tuple[list[str], str]:
    result = checks.run_check(store, command, ctx.tip, label=label, timeout=ctx.checking.timeout,
                              env=env)
    if result.passed:
        return [], result.detail
    return [f"{result.detail}; log: {result.log}"], ""


# --- starting a review ------------------------------------------------------------------


@dataclass
class Started:
    review: Review
    new: bool
    decided: str | None = None


def _context(store: Store, epic_id: str) -> tuple[integration.Status, Context]:
    st, epic, checking, tip = integration.ready_branch(
        store, epic_id, f"epic '{epic_id}' is not ready for review")
    base_tip = store.head_of(f"refs/heads/{st.base}") or ""
    return st, Context(epic, st.branch, st.base, tip, base_tip, checking)


def start(store: Store, epic_id: str, *, rerun: bool = False) -> Started:
    """Review the integration tip once (idempotent per tip); `rerun` reviews it again."""
    st, ctx = _context(store, epic_id)
    rid = review_id(epic_id, ctx.tip)
    existing = store.snapshot().objects["reviews"].get(rid)
    if existing is not None and not rerun:
        return Started(existing, False)
    name = _setting(store, "formula") or DEFAULT_FORMULA
    trusted = localconfig.config_ref(store).branch
    formula = formulas.bind(formulas.load(name, store, trusted), {
        "epic": epic_id, "branch": ctx.branch, "base": ctx.base, "tip": ctx.tip})
    outcome = run_steps(store, formula, ctx)
    stamp = now()
    text = _report(rid, formula, ctx, outcome, stamp)
    path = _write_report(store, rid, text)
    review = Review(
        id=rid, epic=epic_id, branch=ctx.branch, base=ctx.base, tip=ctx.tip,
        base_tip=ctx.base_tip, formula=f"{formula.name} ({formula.origin})",
        findings=outcome.findings, diffstat=outcome.diffstat or None,
        report=text[:REPORT_LIMIT], report_path=path, created_at=stamp, updated_at=stamp)
    def mutate(tx: Tx) -> bool:
        current = tx.objects["reviews"].get(rid)
        if current is not None and not rerun:
            return False
        for old in reviews_of(tx, epic_id):
            if old.id != rid and old.status in ("pending", "approved"):
                tx.put(touched(old, status="superseded",
                               note=f"superseded by {rid} (new tip {ctx.tip[:10]})"))
        tx.put(review)
        tx.put(_with_label(tx.bead(epic_id), "pending"))
        return True

    made = store.transact(mutate, f"review start {epic_id}: {rid} ({len(outcome.findings)} "
                                  "finding(s))")
    if not made:
        return Started(store.snapshot().objects["reviews"][rid], False)
    command = _setting(store, "command")
    if not command:
        return Started(review, True)
    return Started(*_auto_decide(store, review, command, st, ctx))


def _report(rid: str, formula: formulas.Formula, ctx: Context, outcome: Outcome,
            stamp: str) -> str:
    head = [f"# Review {rid}: {ctx.epic.title}", "",
            f"epic:    {ctx.epic.id}", f"branch:  {ctx.branch} @ {ctx.tip}",
            f"base:    {ctx.base} @ {ctx.base_tip}",
            f"formula: {formula.name} v{formula.version} ({formula.origin}: {formula.source})",
            f"created: {stamp}", "", f"## {formula.description}", "", "```",
            outcome.diffstat or "(no changes)", "```", "", "## Steps", ""]
    tail = ["", f"## Findings: {len(outcome.findings)}", ""]
    tail += [f"- {f}" for f in outcome.findings] or ["none"]
    return "\n".join(head + outcome.lines + tail) + "\n"


def _write_report(store: Store, rid: str, text: str) -> str:
    folder = os.path.join(store.common_dir, "convoy", "reviews")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{rid}.md")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


def _auto_decide(store: Store, review: Review, command: str, st: integration.Status,
                 ctx: Context) -> tuple[Review, bool, str]:
    env = {"CONVOY_REVIEW": review.id, "CONVOY_REVIEW_REPORT": review.report_path or "",
           "CONVOY_EPIC": review.epic, "CONVOY_BRANCH": review.branch,
           "CONVOY_BASE": review.base, "CONVOY_TIP": review.tip,
           "CONVOY_FINDINGS": str(len(review.findings))}
    # It runs in a worktree of the branch under review: a relative program would be that
    # branch's copy, which its workers wrote. It means the main worktree's file, as a
    # dispatch command's does (decision 20); the code under review is the current folder.
    command = localconfig.anchored(command, localconfig.command_dir(store))
    result = checks.run_check(store, command, review.tip, label=f"reviewer-{review.epic}",
                              timeout=ctx.checking.timeout, env=env)
    verdict, reason = ("approve", "approved by the reviewer command") if result.passed else \
        ("reject", f"reviewer command: {result.detail}; log: {result.log}")
    try:
        done = decide(store, review.epic, verdict, reason, "reviewer command")
    except ConvoyError:  # another feed decided (or the branch moved) first: report that
        current = store.snapshot().objects["reviews"].get(review.id) or review
        return current, True, current.status
    return done.review, True, done.review.status


# --- decisions --------------------------------------------------------------------------


@dataclass
class Decided:
    review: Review
    fix_bead: str | None = None


def pending_review(store: Store, epic_id: str) -> Review:
    snap = store.snapshot()
    integration.find_epic(snap, epic_id)
    review = latest(snap, epic_id)
    if review is None or review.status != "pending":
        state = f"its latest review {review.id} is {review.status}" if review else \
            "it has no review"
        raise ConvoyError(f"epic '{epic_id}' has no pending review ({state})")
    return review


def decide(store: Store, epic_id: str, verdict: str, reason: str | None,
           by: str | None = None) -> Decided:
    """Approve or reject the epic's pending review; a rejection files a fix task."""
    review = pending_review(store, epic_id)
    if verdict == "approve":
        tip = store.head_of(f"refs/heads/{review.branch}")
        if tip != review.tip:
            raise ConvoyError(
                f"review {review.id} is of {review.tip[:10]} but {review.branch} is now at "
                f"{(tip or 'nothing')[:10]}: a new review starts with the next feed "
                f"('git convoy review run {epic_id}')")
    actor = by or store.identity()

    def mutate(tx: Tx) -> str | None:
        current = tx.objects["reviews"].get(review.id)
        if current is None or current.status != "pending":
            raise ConvoyError(f"review {review.id} is no longer pending")
        epic = tx.bead(epic_id)
        if verdict == "approve":
            tx.put(touched(current, status="approved", reason=reason, decided_by=actor))
            tx.put(_with_label(epic, "approved"))
            return None
        bead = create_bead(tx, BeadSpec(
            title=f"Fix review findings: {epic.title}"[:500], type="task",
            priority=epic.priority, parent=epic_id,
            description=_fix_description(current, reason),
            labels=["review-fix"]), actor)
        convoy = refinery.convoy_of(tx.convoys, epic_id)
        if convoy is not None and convoy.status == "open":
            tx.put(touched(convoy, tracks=sorted(set(convoy.tracks) | {bead.id})))
        tx.put(touched(current, status="rejected", reason=reason, decided_by=actor,
                       fix_bead=bead.id))
        tx.put(_with_label(tx.bead(epic_id), "rejected"))
        return bead.id

    word = "approved" if verdict == "approve" else "rejected"
    fix = store.transact(mutate, f"review {word} {epic_id}: {review.id}")
    done = store.snapshot().objects["reviews"][review.id]
    return Decided(done, fix)


def _fix_description(review: Review, reason: str | None) -> str:
    lines = [f"Review {review.id} of {review.branch} @ {review.tip[:12]} was rejected.",
             "", f"Reason: {reason or 'not given'}"]
    if review.findings:
        lines += ["", "Findings:"] + [f"- {f}" for f in review.findings]
    if review.report_path:
        lines += ["", f"Report: {review.report_path}"]
    return "\n".join(lines)


def require_approved(store: Store, epic_id: str, branch: str, tip: str) -> None:
    """`integration land` with the gate on: the exact tip must have an approved review."""
    if not enabled(store):
        return
    review = store.snapshot().objects["reviews"].get(review_id(epic_id, tip))
    if review is None or review.status != "approved":
        state = f"review {review.id} is {review.status}" if review else "no review yet"
        raise ConvoyError(f"{branch} is not approved for {tip[:10]} ({state}): see 'git "
                          f"convoy review show {epic_id}'")


# --- the gate step (sequenced by gitconvoy.cycle after a feed) -------------------------


@dataclass
class GateEvent:
    """What the gate did for one epic: the line to print, and what the cycle must follow up
    (a fix task to dispatch, a landed epic whose dependents may now start)."""
    epic: str
    line: str
    fix_bead: str | None = None
    landed: bool = False


def gated(store: Store, epic_id: str) -> bool:
    """Does the epic go through the review gate (live, and the gate on)?"""
    epic = store.snapshot().beads.get(epic_id)
    return epic is not None and not epic.done and enabled(store)


def gate(store: Store, awaiting: list[tuple[str, str]]) -> list[GateEvent]:
    """For each epic whose children are all in its branch: start its review, or land it
    once the review of its current tip is approved."""
    out: list[GateEvent] = []
    for epic_id, branch in awaiting:
        if not gated(store, epic_id):
            continue
        try:
            started = start(store, epic_id)
        except ConvoyError as exc:
            out.append(GateEvent(epic_id, f"epic {epic_id}: no review: {exc.message}"))
            continue
        review = started.review
        if started.new:
            out.append(GateEvent(epic_id, f"epic {epic_id}: review {review.id} of {branch} "
                                          f"started ({len(review.findings)} finding(s)); see "
                                          f"'git convoy review show {epic_id}'"))
        out.append(_next(store, review, started.new))
    return out


def _next(store: Store, review: Review, new: bool) -> GateEvent:
    epic_id = review.epic
    if review.status == "approved":
        if review.note:
            return GateEvent(epic_id, f"epic {epic_id}: approved but not landed: {review.note}")
        landed, line = land_approved(store, review)
        return GateEvent(epic_id, line, landed=landed)
    if review.status == "rejected":
        if new:
            return GateEvent(epic_id, f"epic {epic_id}: review rejected; fix task "
                                      f"{review.fix_bead}", fix_bead=review.fix_bead)
        return GateEvent(epic_id, f"epic {epic_id}: review {review.id} of this tip was "
                                  f"rejected and nothing changed since; 'git convoy review "
                                  f"run {epic_id}' reviews it again")
    if new:
        return GateEvent(epic_id, "")
    return GateEvent(epic_id, f"epic {epic_id}: review {review.id} pending: 'git convoy "
                              f"review approve|reject {epic_id}'")


def land_epic(store: Store, epic_id: str) -> integration.LandReport:
    """The one way an epic lands: with the gate on, only the approved tip."""
    return integration.land(store, epic_id, guard=lambda st, tip: require_approved(
        store, epic_id, st.branch, tip))


def land_approved(store: Store, review: Review) -> tuple[bool, str]:
    """Land an approved epic; a failure is recorded on the review so feeds do not retry it.
    (landed?, the line that says what happened)."""
    try:
        landed = land_epic(store, review.epic)
    except ConvoyError as exc:
        message = exc.message

        def note(tx: Tx) -> None:
            current = tx.objects["reviews"].get(review.id)
            if current is not None:
                tx.put(touched(current, note=f"land failed: {message}"))

        store.transact(note, f"review {review.id}: land failed")
        return False, f"epic {review.epic}: approved but did not land: {message}"
    return True, (f"epic {review.epic}: approved review {review.id}; landed {landed.branch} "
                  f"on {landed.base} as {landed.sha[:12]}")

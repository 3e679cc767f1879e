"""Mutation bench: does the suite notice when a rule of the code is broken?

Each mutation below breaks one rule on purpose (an exact source snippet and its
replacement). The bench copies the source tree to a scratch folder once, then for each
mutation: writes the mutated file there, runs the tests relevant to it, restores the file
and checks it reads back byte-identical. The tests import the scratch copy (PYTHONPATH,
also for `git convoy` subprocesses and hooks) with a fresh bytecode cache per run; the real
tree is never written, and the bench checks at the end that it is unchanged.

    python bench/mutate.py              # every mutation: a table and "killed K / total N"
    python bench/mutate.py --list       # names, files and test files only
    python bench/mutate.py --only NAME  # one (or a comma list); repeatable

killed: a relevant test failed (or timed out). survived: every relevant test passed, so
the rule is untested there: write a test or say in docs/testing.md why that is acceptable.
n/a: the snippet is no longer in the file exactly once (the code moved on): fix the entry.
Tests run with CI=true, so hypothesis and the soak use CI's fixed seeds and results repeat.
Like every bench it prints figures; its exit code is 1 only when an entry is n/a or a run
errs, never for a survivor.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TIMEOUT = 900.0


@dataclass(frozen=True)
class Mutation:
    name: str
    area: str
    file: str
    find: str
    replace: str
    tests: tuple[str, ...]
    breaks: str  # the rule the mutation breaks, in words
    known: str = ""  # a survivor we know of, and who is on it


MUTATIONS: tuple[Mutation, ...] = (
    # --- graph ------------------------------------------------------------------------------
    Mutation(
        "graph-missing-blocker-ignored", "graph", "gitconvoy/plan/graph.py",
        "if target is None or target.status not in DONE_STATUSES:\n                    "
        "return True",
        "if target is not None and target.status not in DONE_STATUSES:\n                    "
        "return True",
        ("tests/test_deps_graph.py", "tests/test_waves.py"),
        "a dep on a missing bead blocks",
    ),
    Mutation(
        "graph-epic-blocker-not-inherited", "graph", "gitconvoy/plan/graph.py",
        "and not self._has_open_blocker(bead) and not self.held_back(bead.parent)",
        "and not self._has_open_blocker(bead)",
        ("tests/test_deps_graph.py", "tests/test_waves.py"),
        "a blocking dep on an epic holds back all its descendants",
    ),
    Mutation(
        "graph-epic-done-before-children", "graph", "gitconvoy/plan/graph.py",
        "        if bead is not None and bead.parent and bead.parent in index.beads:\n"
        "            yield (\"done\", bead.parent)\n",
        "",
        ("tests/test_deps_graph.py", "tests/test_waves.py"),
        "an epic finishes after its children (a task blocked by its own epic is a deadlock)",
    ),
    Mutation(
        "graph-priority-order-reversed", "graph", "gitconvoy/plan/graph.py",
        "return (bead.priority, bead.created_at or \"\", bead.id)",
        "return (-bead.priority, bead.created_at or \"\", bead.id)",
        ("tests/test_deps_graph.py", "tests/test_beads.py"),
        "ready work is listed highest priority (P0) first",
    ),
    # --- store and transactions -------------------------------------------------------------
    Mutation(
        "store-cas-without-compare", "store", "gitconvoy/state/store.py",
        "                faults.point(\"store.in_lock\")\n"
        "                if self.head_of(self.ref) != old:\n",
        "                faults.point(\"store.in_lock\")\n"
        "                if False:\n",
        ("tests/test_concurrency.py", "tests/test_store.py"),
        "the state ref moves only from the commit the transaction read (compare-and-swap)",
    ),
    Mutation(
        "store-stale-lock-age-inverted", "store", "gitconvoy/state/store.py",
        "        if age > older_than:\n",
        "        if age < older_than:\n",
        ("tests/test_crash.py", "tests/test_store.py"),
        "a ref lock older than a few seconds is named as a crash's leftover with its fix",
    ),
    Mutation(
        "tx-put-skips-schema-read-back", "store", "gitconvoy/state/tx.py",
        "        KINDS[kind].cls.from_dict(data, path)\n",
        "",
        ("tests/test_bad_input.py", "tests/test_store.py", "tests/test_beads.py"),
        "a transaction never writes an object the schema would reject on read",
    ),
    Mutation(
        "tx-delete-forgotten", "store", "gitconvoy/state/tx.py",
        "        self._local.pop(key, None)\n        self._gone.add(key)\n",
        "        self._local.pop(key, None)\n",
        ("tests/test_tx_view.py", "tests/test_store.py"),
        "an object deleted inside a transaction is gone from the transaction's view",
    ),
    # --- field merge ------------------------------------------------------------------------
    Mutation(
        "merge-pick-smaller-side", "merge", "gitconvoy/state/merge.py",
        "pick = max(sides) if sides else None",
        "pick = min(sides) if sides else None",
        ("tests/test_merge.py", "tests/test_sync.py"),
        "an unmergeable file keeps the larger side whole (both clones pick the same one)",
        known="h15a adds a test for it; expected to survive on this branch",
    ),
    Mutation(
        "merge-set-removal-never-wins", "merge", "gitconvoy/state/merge.py",
        "if (k in o and k in t) or k not in b}",
        "if k in o or k in t}",
        ("tests/test_merge.py",),
        "a set element removed on one side and untouched on the other goes",
    ),
    Mutation(
        "merge-counter-takes-smaller", "merge", "gitconvoy/state/merge.py",
        "        return max(ours, theirs)\n    return ours if prefer_ours else theirs",
        "        return min(ours, theirs)\n    return ours if prefer_ours else theirs",
        ("tests/test_merge.py",),
        "counters and once-set flags only grow: both changed, the larger wins",
    ),
    Mutation(
        "merge-stale-status-beats-close", "merge", "gitconvoy/state/merge.py",
        "return other if reopened and _rank(other) > _rank(closed) else closed",
        "return other",
        ("tests/test_merge.py", "tests/test_merge_driver.py"),
        "a close (work landed) beats a concurrent, older status change",
    ),
    Mutation(
        "merge-always-prefers-ours", "merge", "gitconvoy/state/merge.py",
        "    prefer_ours = _rank(ours) >= _rank(theirs)\n",
        "    prefer_ours = True\n",
        ("tests/test_merge.py",),
        "the merge is symmetric: the later edit wins, whichever side is ours",
    ),
    # --- feeder -----------------------------------------------------------------------------
    Mutation(
        "feeder-dispatches-blocked", "feeder", "gitconvoy/flow/feeder.py",
        "ready = [b for b in members if index.is_ready(b) and backoff_due(b, stamp)]",
        "ready = [b for b in members if b.status == \"open\" and b.slingable"
        " and backoff_due(b, stamp)]",
        ("tests/test_convoys.py", "tests/test_hook_triggers.py"),
        "the feeder hands out only ready beads (blocked ones stay put, no failed dispatch)",
        known="h15a adds feeder-report tests for it; expected to survive on this branch",
    ),
    Mutation(
        "feeder-work-lands-before-merge", "feeder", "gitconvoy/flow/feeder.py",
        "                if revs.is_ancestor(store, work or \"\", tip):\n",
        "                if True:\n",
        ("tests/test_convoys.py",),
        "a bead closes only when its branch's work is reachable from its target",
    ),
    Mutation(
        "feeder-convoy-closes-early", "feeder", "gitconvoy/flow/feeder.py",
        "if live and all(b.status == \"closed\" for b in live):",
        "if live and any(b.status == \"closed\" for b in live):",
        ("tests/test_convoys.py",),
        "a convoy closes when every tracked bead is closed",
    ),
    Mutation(
        "feeder-ignores-squash-trailer", "feeder", "gitconvoy/flow/feeder.py",
        "TRAILER_RE = re.compile(r\"^Convoy-Bead:",
        "TRAILER_RE = re.compile(r\"^Convoy-Task:",
        ("tests/test_convoys.py", "tests/test_refinery.py"),
        "a squash merge carrying `Convoy-Bead: <id>` counts as landed",
    ),
    Mutation(
        "feeder-never-stranded", "feeder", "gitconvoy/flow/feeder.py",
        "            report.stranded.append(convoy.id)\n",
        "            pass\n",
        ("tests/test_convoys.py", "tests/test_feeder_rules.py"),
        "a convoy with work left, nothing in flight and nothing ready is reported stranded",
    ),
    # --- dispatch ---------------------------------------------------------------------------
    Mutation(
        "dispatch-claims-blocked", "dispatch", "gitconvoy/flow/dispatch.py",
        "    if blockers:\n        return f\"blocked by {blockers[0].describe()}\"\n",
        "",
        ("tests/test_dispatch_rules.py", "tests/test_convoys.py"),
        "the claim refuses a bead with an open blocker",
    ),
    Mutation(
        "dispatch-capacity-off-by-one", "dispatch", "gitconvoy/flow/dispatch.py",
        "    if in_flight(tx.beads, rig.name) >= rig.capacity:\n        return",
        "    if in_flight(tx.beads, rig.name) > rig.capacity:\n        return",
        ("tests/test_dispatch_rules.py", "tests/test_convoys.py"),
        "a rig never has more beads in flight than its capacity",
    ),
    Mutation(
        "dispatch-failure-counts-as-success", "dispatch", "gitconvoy/flow/dispatch.py",
        "    if proc.returncode != 0:\n        last =",
        "    if proc.returncode < 0:\n        last =",
        ("tests/test_convoys.py",),
        "a dispatch command that exits non-zero rolls the bead back to open",
    ),
    Mutation(
        "dispatch-no-backoff", "dispatch", "gitconvoy/flow/dispatch.py",
        "    return not next_try or str(next_try) <= (at or now())",
        "    return True",
        ("tests/test_convoys.py", "tests/test_feeder_rules.py"),
        "a bead whose dispatch failed waits (back-off) before the feeder tries it again",
    ),
    # --- refinery and landing ---------------------------------------------------------------
    Mutation(
        "landing-ignores-failed-check", "refinery", "gitconvoy/land/landing.py",
        "            if not result.passed:\n",
        "            if False:\n",
        ("tests/test_refinery.py",),
        "a candidate whose check fails never becomes the target",
    ),
    Mutation(
        "landing-squash-keeps-second-parent", "refinery", "gitconvoy/land/landing.py",
        "        parents = [pygit2.Oid(hex=base)]\n",
        "        parents = [pygit2.Oid(hex=base), source_commit.id]\n",
        ("tests/test_refinery.py",),
        "a squash landing is one commit with one parent",
    ),
    Mutation(
        "refinery-queue-order-reversed", "refinery", "gitconvoy/land/refinery.py",
        "    return sorted((m for m in mrs if m.status == \"queued\"), key=key)",
        "    return sorted((m for m in mrs if m.status == \"queued\"), key=key, reverse=True)",
        ("tests/test_refinery.py",),
        "the queue lands the highest-priority, then oldest, merge request first",
    ),
    Mutation(
        "refinery-escalates-late", "refinery", "gitconvoy/land/refinery.py",
        "escalate = outcome == \"check_failed\" and failures >= max_failures and not already",
        "escalate = outcome == \"check_failed\" and failures > max_failures and not already",
        ("tests/test_refinery.py",),
        "an MR is escalated at convoy.refinery.maxCheckFailures failed checks",
    ),
    Mutation(
        "refinery-deletes-branch-with-new-work", "refinery", "gitconvoy/land/refinery.py",
        "    if store.head_of(ref) != mr.commit:\n        return f\"kept {mr.branch}",
        "    if False:\n        return f\"kept {mr.branch}",
        ("tests/test_refinery_branch_rules.py", "tests/test_refinery.py"),
        "delete-branch keeps a work branch that has commits beyond the landed one",
    ),
    # --- sync -------------------------------------------------------------------------------
    Mutation(
        "sync-merge-without-base", "sync", "gitconvoy/git/sync.py",
        "    base = revs.merge_base(store, local, remote_commit)\n",
        "    base = None\n",
        ("tests/test_sync.py",),
        "sync merges three-way from the common ancestor (a deletion is not undone)",
    ),
    Mutation(
        "sync-rejected-push-is-fatal", "sync", "gitconvoy/git/sync.py",
        "        if not outcome.rejected:\n            raise ConvoyError",
        "        if outcome.rejected:\n            raise ConvoyError",
        ("tests/test_sync.py",),
        "a push rejected because the remote moved fetches, merges and pushes again",
    ),
    # --- import -----------------------------------------------------------------------------
    Mutation(
        "import-beads-overwrites-newer-local", "import", "gitconvoy/importers/beads_jsonl.py",
        "        if (old.updated_at or \"\") > (bead.updated_at or \"\"):\n"
        "            report.written",
        "        if (old.updated_at or \"\") < (bead.updated_at or \"\"):\n"
        "            report.written",
        ("tests/test_import_beads.py",),
        "re-importing keeps a bead changed here after the export",
    ),
    Mutation(
        "import-beads-conditional-not-blocking", "import", "gitconvoy/importers/beads_jsonl.py",
        "            dep_type = \"blocks\"\n            report.mapped[\"dep conditional-blocks",
        "            dep_type = \"related\"\n            report.mapped[\"dep conditional-blocks",
        ("tests/test_import_beads.py",),
        "a beads conditional-blocks dep imports as blocks",
    ),
    Mutation(
        "import-parent-overrides-child", "import", "gitconvoy/importers/build.py",
        "        inherited[id(node)] = {**base, **mine}\n",
        "        inherited[id(node)] = {**mine, **base}\n",
        ("tests/test_import_inheritance.py", "tests/test_import_prd.py"),
        "a task's own priority, rig and target beat its epic's",
    ),
    Mutation(
        "import-reimport-drops-hand-deps", "import", "gitconvoy/importers/build.py",
        "            kept = {d for d in old.deps if d.on not in doc_ids}\n",
        "            kept = set()\n",
        ("tests/test_import_inheritance.py", "tests/test_import_prd.py"),
        "a re-import keeps deps added by hand to beads outside the document",
    ),
    # --- hooks ------------------------------------------------------------------------------
    Mutation(
        "hookgate-target-move-always-quiet", "hooks", "gitconvoy/git/hookgate.py",
        "    return bool(named & inflight.beads.keys())",
        "    return False",
        ("tests/test_hooks_install.py", "tests/test_hook_triggers.py"),
        "a target gaining a commit that names an in-flight bead in a trailer wakes the feeder",
    ),
    Mutation(
        "hookgate-state-move-ignored", "hooks", "gitconvoy/git/hookgate.py",
        "    if any(not is_target(ref, inflight.targets) for ref in moved):\n"
        "        return True, None",
        "    if False:\n        return True, None",
        ("tests/test_hooks_install.py", "tests/test_hook_triggers.py"),
        "any watched ref other than a target moving (the state, a work branch) means feed",
    ),
    Mutation(
        "hookinstall-uninstall-keeps-added-newline", "hooks", "gitconvoy/git/hookinstall.py",
        "    if found.group(\"joined\") and start > 0 and text[start - 1] == \"\\n\":\n"
        "        start -= 1\n",
        "",
        ("tests/test_hooks_install.py",),
        "uninstall leaves a hook file byte-identical to before install",
    ),
    Mutation(
        "hookinstall-appends-to-foreign-hooks", "hooks", "gitconvoy/git/hookinstall.py",
        "    return prog in SHELLS\n",
        "    return True\n",
        ("tests/test_hooks_install.py",),
        "a hook in another language is left alone (a shell block cannot chain it)",
    ),
    # --- views ------------------------------------------------------------------------------
    Mutation(
        "statediff-reports-clock", "views", "gitconvoy/state/statediff.py",
        "    \"id\", \"created_at\", \"created_by\", \"updated_at\", \"started_at\",",
        "    \"id\", \"created_at\", \"created_by\", \"started_at\",",
        ("tests/test_views.py",),
        "a state diff leaves the clock (updated_at) out",
    ),
    Mutation(
        "statediff-reason-on-own-line", "views", "gitconvoy/state/statediff.py",
        "        elif name in TOLD_WITH_STATUS and status_changed:\n            continue\n",
        "",
        ("tests/test_views.py",),
        "close_reason and friends are told with the status change, not on lines of their own",
    ),
    Mutation(
        "markdown-pipe-unescaped", "views", "gitconvoy/render/markdown.py",
        "    for ch in \"\\\\`*_[]|#\":",
        "    for ch in \"\\\\`*_[]#\":",
        ("tests/test_views.py",),
        "a title with | cannot break the status table",
    ),
    Mutation(
        "text-bead-line-drops-labels", "views", "gitconvoy/render/text.py",
        "        extra.append(\" \".join(f\"#{label}\" for label in bead.labels))\n",
        "",
        ("tests/test_beads.py", "tests/test_views.py"),
        "`git convoy list` shows a bead's labels",
    ),
)


# --- running ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    mutation: Mutation
    result: str  # killed | survived | n/a | error
    seconds: float = 0.0
    detail: str = ""


def source_files(root: Path) -> list[str]:
    """Tracked and untracked-but-not-ignored files: the tree as the developer has it now."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=root, capture_output=True, check=True).stdout
    return [p for p in out.decode().split("\0") if p and (root / p).is_file()]


def copy_tree(root: Path, into: Path) -> None:
    for rel in source_files(root):
        dest = into / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, dest)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def applicable(m: Mutation, root: Path) -> str:
    """'' when the snippet is in the file exactly once, else why not."""
    path = root / m.file
    if not path.is_file():
        return f"{m.file} does not exist"
    count = path.read_text(encoding="utf-8").count(m.find)
    if count == 0:
        return f"snippet not found in {m.file}"
    if count > 1:
        return f"snippet found {count} times in {m.file}: make it unique"
    missing = [t for t in m.tests if not (root / t).is_file()]
    if missing:
        return f"test file(s) missing: {', '.join(missing)}"
    return ""


def pytest_env(tree: Path, cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tree), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONPYCACHEPREFIX"] = str(cache)  # fresh per run: a stale .pyc can't hide a mutant
    env["CI"] = "true"  # fixed seeds: the same mutant gets the same verdict every time
    return env


def run_tests(tree: Path, tests: tuple[str, ...], jobs: int, timeout: float,
              scratch: Path) -> tuple[int | None, str, float]:
    """pytest's exit code (None: timed out), its output, the seconds it took."""
    cache = Path(tempfile.mkdtemp(prefix="pyc-", dir=scratch))
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-rf", "-p", "no:cacheprovider",
           "-o", "addopts=", *(["-n", str(jobs)] if jobs > 1 else []), *tests]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=tree, env=pytest_env(tree, cache), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        code = None
    finally:
        if proc.poll() is None:  # the bench itself was stopped: take its pytest along
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(cache, ignore_errors=True)
    return code, out, time.monotonic() - start


def first_failure(output: str) -> str:
    found = re.search(r"^(?:FAILED|ERROR) (\S+)", output, re.M)
    return found.group(1) if found else "a test failed"


def check_import_location(tree: Path, scratch: Path) -> None:
    env = pytest_env(tree, scratch / "probe-pyc")
    where = subprocess.run(
        [sys.executable, "-c", "import gitconvoy; print(gitconvoy.__file__)"],
        cwd=scratch, env=env, capture_output=True, text=True,
    ).stdout.strip()
    if not where.startswith(str(tree)):
        sys.exit(f"mutate: the tests would import gitconvoy from {where or '?'}, not from the "
                 f"scratch copy {tree}: is another gitconvoy installed without -e?")


def mutate_one(m: Mutation, tree: Path, jobs: int, timeout: float, scratch: Path) -> Outcome:
    path = tree / m.file
    original = path.read_bytes()
    text = original.decode("utf-8")
    try:
        path.write_text(text.replace(m.find, m.replace, 1), encoding="utf-8")
        code, out, seconds = run_tests(tree, m.tests, jobs, timeout, scratch)
    finally:
        path.write_bytes(original)
    if path.read_bytes() != original:
        sys.exit(f"mutate: {m.file} in the scratch copy did not restore: stopping")
    if code is None:
        return Outcome(m, "killed", seconds, f"timed out after {timeout:.0f} s")
    # with -x under xdist a failure ends as "Interrupted" (exit 2): read the summary line
    last = out.strip().splitlines()[-1] if out.strip() else ""
    if code == 1 or (code == 2 and re.search(r"\b\d+ failed\b", last)):
        return Outcome(m, "killed", seconds, first_failure(out))
    if code == 0:
        return Outcome(m, "survived", seconds, m.known or "every relevant test passed")
    tail = " | ".join(out.strip().splitlines()[-3:])
    return Outcome(m, "error", seconds, f"pytest exit {code}: {tail}")


def print_table(outcomes: list[Outcome]) -> None:
    width = max(len(o.mutation.name) for o in outcomes)
    print(f"\n{'mutation':<{width}}  {'area':<8}  {'result':<8}  {'time':>6}  detail")
    for o in outcomes:
        print(f"{o.mutation.name:<{width}}  {o.mutation.area:<8}  {o.result:<8}  "
              f"{o.seconds:5.0f}s  {o.detail}")


def select(names: list[str]) -> list[Mutation]:
    if not names:
        return list(MUTATIONS)
    wanted = [n.strip() for group in names for n in group.split(",") if n.strip()]
    known = {m.name: m for m in MUTATIONS}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        sys.exit(f"mutate: unknown mutation(s): {', '.join(unknown)} (see --list)")
    return [known[n] for n in wanted]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only this mutation (a comma list; repeatable)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--jobs", type=int, default=2,
                        help="pytest-xdist workers per run (1: none); default 2")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help="seconds one run may take before it counts as killed")
    parser.add_argument("--baseline", action="store_true",
                        help="first run every selected test file unmutated (must pass)")
    args = parser.parse_args(argv)
    chosen = select(args.only)
    # a plain `kill` unwinds like Ctrl-C: the file is restored and the scratch copy removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    if args.list:
        for m in chosen:
            state = applicable(m, ROOT)
            flag = f"  N/A: {state}" if state else ""
            print(f"{m.name:<44} {m.area:<8} {m.file}{flag}\n    breaks: {m.breaks}\n"
                  f"    tests: {' '.join(m.tests)}")
        return 0

    before = {rel: digest(ROOT / rel) for rel in {m.file for m in chosen}
              if (ROOT / rel).is_file()}
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="convoy-mutate-") as tmp:
        scratch = Path(tmp)
        tree = scratch / "tree"
        copy_tree(ROOT, tree)
        check_import_location(tree, scratch)
        if args.baseline:
            files = tuple(sorted({t for m in chosen for t in m.tests if (tree / t).is_file()}))
            print(f"baseline: {len(files)} test file(s) unmutated …", flush=True)
            code, out, seconds = run_tests(tree, files, args.jobs, args.timeout * 3, scratch)
            if code != 0:
                print(out[-3000:])
                print(f"mutate: the unmutated tests fail (exit {code}): fix that first")
                return 1
            print(f"baseline passed in {seconds:.0f} s", flush=True)
        for n, m in enumerate(chosen, 1):
            why = applicable(m, tree)
            if why:
                outcome = Outcome(m, "n/a", 0.0, why)
            else:
                print(f"[{n}/{len(chosen)}] {m.name} ({m.file}) …", end=" ", flush=True)
                outcome = mutate_one(m, tree, args.jobs, args.timeout, scratch)
            outcomes.append(outcome)
            print(f"{outcome.result} ({outcome.seconds:.0f} s)" if outcome.result != "n/a"
                  else f"[{n}/{len(chosen)}] {m.name}: N/A — {why}", flush=True)

    after = {rel: digest(ROOT / rel) for rel in before}
    if after != before:
        print("mutate: the real tree changed while the bench ran (not by the bench, which "
              "writes only its scratch copy): check 'git diff'", file=sys.stderr)
    print_table(outcomes)
    ran = [o for o in outcomes if o.result in ("killed", "survived")]
    killed = sum(1 for o in ran if o.result == "killed")
    print(f"\nkilled {killed} / total {len(ran)}")
    survivors = [o for o in outcomes if o.result == "survived"]
    for o in survivors:
        print(f"survived: {o.mutation.name} — breaks: {o.mutation.breaks}"
              + (f" ({o.mutation.known})" if o.mutation.known else ""))
    bad = [o for o in outcomes if o.result in ("n/a", "error")]
    for o in bad:
        print(f"{o.result.upper()}: {o.mutation.name}: {o.detail}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

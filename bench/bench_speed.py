"""Issue 12's speed table, side by side with microbeads: prints figures, never fails on time.

Usage: python bench/bench_speed.py [--sizes 10000,100000] [--runs 7] [--skip-100k]
                                   [--seed 12] [--states DIR] [--keep DIR] [--rows ...]

The graph (bench/gen_state.py `plan_random_blockers`): one epic per 100 beads, each task
blocked by 2 random earlier tasks, 30 % closed; ids fixed by the seed. gitconvoy gets it in
one transaction of the bulk path; microbeads (https://pypi.org/project/microbeads/) gets the
very same ids, titles, priorities, labels and blockers as one JSON file per issue, written
byte for byte as its `save_issue`/`close_issue` would (orjson, indent 2, sorted keys; a
closed issue in issues/closed/ with its status history entry) into the worktree its own
`mb init --stealth` made, then committed by its own `mb sync`. microbeads has no parent
field, so its epics stand alone; writing 100k issues through `mb create` + `mb dep add`
would take hours. Both repositories are repacked (`git repack -ad`, as after a `git gc`);
auto-gc is off so no run pays for one.

Built states are kept in DIR/<size>-s<seed>-<commit>/ (default
$TMPDIR/convoy-bench-states), keyed by the last commit that changed gitconvoy/ or
bench/gen_state.py (plus a digest of uncommitted changes there), so reruns skip the build;
the microbeads copy also by its version and MB_WRITER. Each run
works on a copy. microbeads is installed into DIR/microbeads-venv when missing; if that
fails its column says why and the gitconvoy figures are still measured.

Rows (whole processes; medians of --runs after one dropped warm-up round, 3 runs for a row
whose first round took over 8 s; gitconvoy and microbeads alternate A B A B within each
row; the bars are issue 12's):

  ready, warm / no cache, per size       warm: the read cache (.git/convoy/cache*) is left
                                         by the previous run; no cache: deleted before each
                                         run (microbeads: .git/microbeads-cache likewise).
                                         A cold read writes its caches in a detached child
                                         after printing: the wall time stops when the
                                         command returns, its CPU includes that child
                                         (adopted as our subreaper's, and waited for)
  bead create, one, per size             microbeads: `mb create` then `mb sync` (its commit)
  1,000 beads in one batch (first size)  `bead create --batch` with no ids, each bead under
                                         an existing epic with 2 existing blockers;
                                         microbeads: `mb tasks sync --stdin` + `mb sync`
                                         (its only batch path: titles only, no deps). The
                                         state is reset before each run (untimed).
  stage of an epic with N descendants    a root epic above every epic (first size)
  blocker lands -> dependent dispatched  hooks installed; a convoy per pair tracks a blocker
                   (largest size)        in progress on convoy/<id> (one commit) and its
                                         open dependent; from starting `git merge --no-ff
                                         convoy/<id>` on main until the rig's dispatch
                                         command (detached by the hook) touched its file.
                                         Two rows, taking turns: back to back, and right
                                         after another write (`bead create`, untimed)

CPU (user + system of the timed processes and their waited-for children) is printed beside
each wall median: on a shared machine it shows what the command itself costs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_state import generate, make_repo, plan_random_blockers  # noqa: E402

from gitconvoy.commands import coldread  # noqa: E402
from gitconvoy.plan.edits import BeadSpec  # noqa: E402
from gitconvoy.state.model import Bead, now, touched  # noqa: E402
from gitconvoy.state.store import Store  # noqa: E402
from gitconvoy.state.tx import Tx  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "bx"
ROWS = ("ready", "create", "batch", "stage", "landing")
LANDING_TIMEOUT = 120.0
SLOW, SLOW_RUNS = 8.0, 3  # seconds for one round (both sides); runs for a row that slow
MB_WRITER = 1  # bump when build_microbeads writes something else: the built states rebuild


# --- running and timing ----------------------------------------------------------------------


def bench_env(home: Path) -> dict[str, str]:
    """This checkout's `git convoy` first on PATH; git identity and config from a bench HOME
    (pygit2 reads HOME, not GIT_CONFIG_GLOBAL); nothing of the caller's git environment."""
    home.mkdir(parents=True, exist_ok=True)
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Bench\n\temail = bench@example.com\n"
        "[init]\n\tdefaultBranch = main\n[gc]\n\tauto = 0\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GIT_") and k not in ("CONVOY_IN_HOOK", "PYTHONDONTWRITEBYTECODE")}
    scripts = str(Path(sys.executable).parent)
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", GIT_EDITOR="true",
               PATH=f"{scripts}{os.pathsep}{env.get('PATH', '')}")
    return env


ENV: dict[str, str] = {}


def sh(*argv: str | Path, cwd: Path, stdin: Path | None = None, quiet: bool = False) -> str:
    """Run one command; stop the bench with its stderr when it fails."""
    env = {**ENV, "CONVOY_IN_HOOK": "1"} if quiet else ENV
    with open(stdin or os.devnull, "rb") as fh:
        proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, stdin=fh,
                              capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, argv))} failed in {cwd} (exit "
                         f"{proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def convoy(*args: str | Path, cwd: Path) -> str:
    return sh("git", "convoy", *args, cwd=cwd)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Sample:
    wall: float
    cpu: float
    parts: list[float] = field(default_factory=list)  # wall time of each step


def timed(steps: list[tuple[list[str | Path], Path | None]], cwd: Path) -> Sample:
    """Wall and CPU time of some commands run one after the other (each with its stdin)."""
    cpu, started = children_cpu(), time.perf_counter()
    parts = []
    for argv, stdin in steps:
        step = time.perf_counter()
        sh(*argv, cwd=cwd, stdin=stdin)
        parts.append(time.perf_counter() - step)
    return Sample(time.perf_counter() - started, children_cpu() - cpu, parts)


def interleave(runs: int, convoy_run: Callable[[], Sample],
               mb_run: Callable[[], Sample] | None) -> tuple[list[Sample], list[Sample]]:
    """gitconvoy, microbeads, gitconvoy, microbeads …; the first round only warms up. A row
    whose first measured round took longer than SLOW gets at most SLOW_RUNS runs, which
    keeps a whole run at 100k near 15 minutes on the 2-core box (the warm-up round does not
    count: it may be building a cache)."""
    mine: list[Sample] = []
    theirs: list[Sample] = []
    n = 0
    while n <= runs:
        got = convoy_run()
        if n:
            mine.append(got)
        if mb_run is not None:
            other = mb_run()
            if n:
                theirs.append(other)
            got = Sample(got.wall + other.wall, got.cpu + other.cpu)
        if n == 1 and got.wall > SLOW:
            runs = min(runs, SLOW_RUNS)
        n += 1
    return mine, theirs


# --- results ------------------------------------------------------------------------------------


@dataclass
class Result:
    measure: str
    command: str
    limit: float  # seconds
    convoy: list[Sample]
    mb: list[Sample] = field(default_factory=list)
    mb_note: str = ""  # why there is no microbeads figure, or what it is made of
    max_ratio: float | None = None

    def median(self, samples: list[Sample], what: str = "wall") -> float:
        return statistics.median(getattr(s, what) for s in samples)

    @property
    def ratio(self) -> float | None:
        if not self.mb:
            return None
        return self.median(self.convoy) / self.median(self.mb)

    @property
    def mark(self) -> str:
        """✓ or ✗; `?` when only the ratio could decide and there is no microbeads figure."""
        if self.median(self.convoy) > self.limit:
            return "✗"
        if self.max_ratio is None:
            return "✓"
        if self.ratio is None:
            return "?"
        return "✓" if self.ratio <= self.max_ratio else "✗"

    @property
    def bar(self) -> str:
        text = f"≤ {seconds(self.limit)}"
        if self.max_ratio is not None:
            text += f", ≤ {self.max_ratio}× microbeads"
        return text


def seconds(value: float) -> str:
    return f"{value * 1000:,.0f} ms" if value < 1 else f"{value:,.2f} s"


def mb_cell(result: Result) -> str:
    if not result.mb:
        return result.mb_note or "—"
    text = seconds(result.median(result.mb))
    if len(result.mb[0].parts) > 1:
        parts = [statistics.median(s.parts[i] for s in result.mb)
                 for i in range(len(result.mb[0].parts))]
        text += " (" + " + ".join(seconds(p) for p in parts) + ")"
    return text


def report_line(result: Result) -> str:
    mine = result.median(result.convoy)
    line = (f"{result.measure}: gitconvoy {seconds(mine)} (cpu "
            f"{seconds(result.median(result.convoy, 'cpu'))})")
    if result.mb:
        line += (f", microbeads {mb_cell(result)} (cpu "
                 f"{seconds(result.median(result.mb, 'cpu'))}), ratio {result.ratio:.2f}")
    elif result.mb_note:
        line += f", microbeads {result.mb_note}"
    return (f"{line}; bar {result.bar} {result.mark} "
            f"[{len(result.convoy)} runs, load {os.getloadavg()[0]:.0f}]")


def markdown(results: list[Result]) -> str:
    rows = ["| measure | gitconvoy | microbeads | ratio | gitconvoy cpu | runs | bar | |",
            "|---|---:|---:|---:|---:|---:|---|---|"]
    for r in results:
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else "—"
        rows.append(f"| {r.measure} | {seconds(r.median(r.convoy))} | {mb_cell(r)} | {ratio} "
                    f"| {seconds(r.median(r.convoy, 'cpu'))} | {len(r.convoy)} | {r.bar} "
                    f"| {r.mark} |")
    return "\n".join(rows)


# --- microbeads -----------------------------------------------------------------------------------


@dataclass
class Microbeads:
    mb: Path
    version: str


def ensure_microbeads(states: Path) -> Microbeads | str:
    """microbeads in its own venv under the states folder, installed when missing; a reason
    string when it cannot be had."""
    venv = states / "microbeads-venv"
    mb, python = venv / "bin" / "mb", venv / "bin" / "python"
    if not mb.exists():
        print(f"installing microbeads into {venv} …", flush=True)
        shutil.rmtree(venv, ignore_errors=True)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True,
                           capture_output=True, text=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", "microbeads"],
                           check=True, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.SubprocessError) as exc:
            detail = getattr(exc, "stderr", None) or str(exc)
            shutil.rmtree(venv, ignore_errors=True)
            return f"not installed ({detail.strip().splitlines()[-1][:120]})"
    version = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('microbeads'))"],
        capture_output=True, text=True).stdout.strip()
    return Microbeads(mb, version or "?")


def microbeads_issue(spec: BeadSpec, n: int) -> dict:
    """The JSON microbeads' `create_issue` + `add_dependency` (+ `close_issue`) would leave."""
    stamp = (datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=n)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    issue = {
        "acceptance_criteria": "", "closed_at": None, "closed_reason": None,
        "created_at": stamp, "dependencies": sorted(d.on for d in spec.deps),
        "description": spec.description or "", "design": "", "id": spec.id,
        "labels": list(spec.labels), "notes": "", "priority": spec.priority,
        "status": "open", "title": spec.title, "type": spec.type, "updated_at": stamp,
    }
    if spec.status == "closed":
        issue.update(status="closed", closed_at=stamp, closed_reason="",
                     history=[{"at": stamp, "field": "status", "new": "closed",
                               "old": "open"}])
    return issue


def build_microbeads(path: Path, specs: list[BeadSpec], tool: Microbeads) -> None:
    make_repo(path)
    sh(tool.mb, "init", "--stealth", cwd=path)
    issues = path / ".git" / "microbeads-worktree" / ".microbeads" / "issues"
    for n, spec in enumerate(specs):
        issue = microbeads_issue(spec, n)
        folder = issues / ("closed" if issue["status"] == "closed" else "active")
        (folder / f"{spec.id}.json").write_text(json.dumps(issue, indent=2, sort_keys=True)
                                                + "\n")
    sh(tool.mb, "sync", "-m", f"bench: {len(specs)} issues", cwd=path)


# --- built states, cached -------------------------------------------------------------------------


def generator_key() -> str:
    """The last commit that changed what builds a state, plus a digest of uncommitted edits."""
    paths = ["gitconvoy", "bench/gen_state.py"]
    head = subprocess.run(["git", "log", "-1", "--format=%h", "--", *paths], cwd=ROOT,
                          capture_output=True, text=True).stdout.strip() or "nogit"
    dirty = subprocess.run(["git", "diff", "HEAD", "--", *paths], cwd=ROOT,
                           capture_output=True).stdout
    return f"{head}-dirty{hashlib.sha256(dirty).hexdigest()[:8]}" if dirty else head


def pack(repo: Path) -> None:
    sh("git", "config", "gc.auto", "0", cwd=repo)
    sh("git", "repack", "-adq", cwd=repo)


def built_state(size: int, seed: int, states: Path, tool: Microbeads | None) -> Path:
    """The folder holding `convoy/` (and `microbeads/`) for this size, built when missing.
    Each part is built beside its final place and renamed in, so a run that died half-way
    (or a second bench building the same state) leaves nothing half-built behind."""
    folder = states / f"{size}-s{seed}-{generator_key()}"
    folder.mkdir(parents=True, exist_ok=True)
    specs = plan_random_blockers(size, PREFIX, seed)
    if not (folder / "convoy").exists():
        print(f"building the gitconvoy state of {size:,} beads in {folder} …", flush=True)
        scratch = Path(tempfile.mkdtemp(prefix="convoy-", dir=folder))
        beads, deps, secs = generate(scratch / "repo", size, PREFIX, specs)
        pack(scratch / "repo")
        print(f"  {beads:,} beads, {deps:,} deps (with parent links), one transaction "
              f"{secs:.1f} s", flush=True)
        (scratch / "repo").rename(folder / "convoy")
        shutil.rmtree(scratch)
    mb_done = folder / "microbeads.version"
    stamp = f"{tool.version} writer {MB_WRITER}" if tool else ""
    if tool is not None and not (mb_done.exists() and mb_done.read_text() == stamp):
        print(f"building the microbeads state of {size:,} issues …", flush=True)
        started = time.perf_counter()
        scratch = Path(tempfile.mkdtemp(prefix="microbeads-", dir=folder))
        build_microbeads(scratch / "repo", specs, tool)
        pack(scratch / "repo")
        shutil.rmtree(folder / "microbeads", ignore_errors=True)
        (scratch / "repo").rename(folder / "microbeads")
        relink_worktree(folder / "microbeads")
        shutil.rmtree(scratch)
        mb_done.write_text(stamp)
        print(f"  {time.perf_counter() - started:.1f} s", flush=True)
    return folder


def relink_worktree(repo: Path) -> None:
    """Point microbeads' linked worktree and its repository at each other again after the
    folder moved: git records both links as absolute paths (`git worktree repair` leaves a
    link alone while it still leads to the old, existing copy)."""
    tree = repo / ".git" / "microbeads-worktree"
    admin = repo / ".git" / "worktrees" / "microbeads-worktree"
    (tree / ".git").write_text(f"gitdir: {admin}\n")
    (admin / "gitdir").write_text(f"{tree / '.git'}\n")
    listed = sh("git", "worktree", "list", "--porcelain", cwd=repo)
    if f"worktree {tree}\n" not in listed:
        raise SystemExit(f"{tree}: the microbeads worktree is not linked to {repo}")


def working_copy(built: Path, dest: Path) -> tuple[Path, Path | None]:
    """A copy of a built state to measure and change; microbeads' linked worktree is
    re-linked to the copy."""
    dest.mkdir(parents=True)
    sh("cp", "-a", built / "convoy", dest / "convoy", cwd=dest)
    if not (built / "microbeads.version").exists():
        return dest / "convoy", None
    sh("cp", "-a", built / "microbeads", dest / "microbeads", cwd=dest)
    relink_worktree(dest / "microbeads")
    return dest / "convoy", dest / "microbeads"


# --- the rows -------------------------------------------------------------------------------------


@dataclass
class Scene:
    size: int
    convoy: Path
    mb: Path | None
    tool: Microbeads | None
    runs: int
    mb_missing: str  # why microbeads is absent, when it is

    @property
    def label(self) -> str:
        return f"{self.size // 1000}k" if self.size % 1000 == 0 else f"{self.size:,}"

    def mb_cmd(self, *args: str | Path) -> list[str | Path]:
        assert self.tool is not None
        return [self.tool.mb, *args]


def drop_caches(repo: Path, *names: str) -> None:
    for pattern in names:
        for path in (repo / ".git").glob(pattern):
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def adopt_orphans(on: bool) -> None:
    """Become (or stop being) the subreaper of our descendants (Linux's
    PR_SET_CHILD_SUBREAPER): a cold `ready` leaves a detached child writing its caches,
    which is then adopted by this process instead of init, so `settle` can wait for it."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1 if on else 0, 0, 0, 0)


def settle(repo: Path, timeout: float = 60.0) -> None:
    """Wait for the detached cache writer of a cold `ready` (its lock, then its exit), so
    that its CPU counts in the row's and the next run does not find its caches half-way."""
    coldread.wait_for_writer(str(repo / ".git"))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return  # no child left
        if pid == 0:
            time.sleep(0.001)  # still exiting


def ready_rows(s: Scene) -> list[Result]:
    small = s.size <= 10_000
    results = []
    for warm in (True, False):

        def mine(warm: bool = warm) -> Sample:
            if not warm:
                drop_caches(s.convoy, "convoy/cache*")
            cpu = children_cpu()
            adopt_orphans(True)  # only while our command runs: microbeads' are not ours
            try:
                got = timed([(["git", "convoy", "ready"], None)], s.convoy)
                settle(s.convoy)  # the wall stopped when the command returned; CPU counts it
            finally:
                adopt_orphans(False)
            return Sample(got.wall, children_cpu() - cpu, got.parts)

        def theirs(warm: bool = warm) -> Sample:
            assert s.mb is not None
            if not warm:
                drop_caches(s.mb, "microbeads-cache")
            return timed([(s.mb_cmd("ready"), None)], s.mb)

        a, b = interleave(s.runs, mine, theirs if s.mb else None)
        limit = (0.110 if warm else 0.300) if small else (0.300 if warm else 3.0)
        results.append(Result(
            f"`ready` @{s.label}, {'warm' if warm else 'no cache'}",
            "git convoy ready" + ("" if warm else "  (after rm -r .git/convoy/cache*)"),
            limit, a, b, s.mb_missing, 0.7 if warm and small else None))
        print(report_line(results[-1]), flush=True)
    return results


def create_row(s: Scene) -> Result:
    count = iter(range(10**9))

    def mine() -> Sample:
        return timed([(["git", "convoy", "bead", "create", f"Bench bead {next(count)}"],
                       None)], s.convoy)

    def theirs() -> Sample:
        assert s.mb is not None
        title = f"Bench bead {next(count)}"
        return timed([(s.mb_cmd("create", title), None),
                      (s.mb_cmd("sync", "-m", title), None)], s.mb)

    a, b = interleave(s.runs, mine, theirs if s.mb else None)
    result = Result(f"`bead create`, one, @{s.label}", 'git convoy bead create "…"', 0.120,
                    a, b, s.mb_missing)
    print(report_line(result), flush=True)
    return result


def batch_files(s: Scene, folder: Path, seed: int) -> tuple[Path, Path]:
    """1,000 new beads, no ids: each under an existing epic, blocked by 2 existing tasks."""
    import random

    rng = random.Random(seed + 1)
    specs = plan_random_blockers(s.size, PREFIX, seed)
    epics = [b.id for b in specs if b.type == "epic"]
    tasks = [b.id for b in specs if b.type != "epic"]
    beads = [{"title": f"Batch bead {n}: imported work item {n}", "parent": rng.choice(epics),
              "priority": rng.randint(0, 4), "labels": ["bulk"],
              "deps": sorted(rng.sample(tasks, 2))} for n in range(1000)]
    mine, theirs = folder / "batch.json", folder / "tasks.json"
    mine.write_text(json.dumps(beads))
    theirs.write_text(json.dumps([{"content": b["title"], "status": "pending"}
                                  for b in beads]))
    return mine, theirs


def batch_row(s: Scene, seed: int) -> Result:
    mine_file, theirs_file = batch_files(s, s.convoy.parent, seed)
    state = sh("git", "rev-parse", "refs/heads/convoy/state", cwd=s.convoy).strip()
    mb_tree = s.mb / ".git" / "microbeads-worktree" if s.mb else None
    mb_head = sh("git", "rev-parse", "HEAD", cwd=mb_tree).strip() if mb_tree else ""

    def reset_mine() -> None:
        sh("git", "update-ref", "refs/heads/convoy/state", state, cwd=s.convoy)
        convoy("ready", cwd=s.convoy)  # the cache back to this state: a warm start

    def mine() -> Sample:
        reset_mine()
        return timed([(["git", "convoy", "bead", "create", "--batch", mine_file], None)],
                     s.convoy)

    def theirs() -> Sample:
        assert s.mb is not None and mb_tree is not None
        sh("git", "reset", "-q", "--hard", mb_head, cwd=mb_tree)
        sh("git", "clean", "-fdq", cwd=mb_tree)
        sh(*s.mb_cmd("list"), cwd=s.mb)  # its caches, warm
        return timed([(s.mb_cmd("tasks", "sync", "--stdin"), theirs_file),
                      (s.mb_cmd("sync", "-m", "bench batch"), None)], s.mb)

    a, b = interleave(s.runs, mine, theirs if s.mb else None)
    reset_mine()
    result = Result(f"1,000 beads in one batch into @{s.label} (no ids)",
                    "git convoy bead create --batch FILE.json", 0.5, a, b, s.mb_missing)
    print(report_line(result), flush=True)
    return result


def root_epic(repo: Path) -> str:
    """A root epic above every epic, so it has every bead below it; and a default rig."""

    def mutate(tx: Tx) -> str:
        stamp = now()
        root = Bead(id="bench-root", title="Root epic", type="epic", created_at=stamp,
                    updated_at=stamp, created_by="bench")
        tx.put(root)
        for bead in list(tx.beads.values()):
            if bead.type == "epic" and bead.parent is None and bead.id != root.id:
                tx.put(touched(bead, parent=root.id))
        return root.id

    made = Store.open(str(repo)).transact(mutate, "bench: a root epic over every epic")
    convoy("rig", "add", "app", "--target", "main", "--default", cwd=repo)
    convoy("ready", cwd=repo)
    return made


def stage_row(s: Scene) -> Result:
    root = root_epic(s.convoy)
    a, _ = interleave(s.runs, lambda: timed([(["git", "convoy", "stage", root], None)],
                                            s.convoy), None)
    result = Result(f"`stage` of an epic with {s.size:,} descendants",
                    "git convoy stage EPIC", 0.6, a, mb_note="— (no staging)")
    print(report_line(result), flush=True)
    return result


def commit_on(repo: Path, branch: str, name: str) -> None:
    """One commit on a branch, made with plumbing (no work tree, no hooks woken)."""
    index = repo.parent / "bench.index"
    env_index = {"GIT_INDEX_FILE": str(index)}
    tip = sh("git", "rev-parse", branch, cwd=repo).strip()
    blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=repo, env=ENV,
                          input=f"work of {name}\n", capture_output=True, text=True,
                          check=True).stdout.strip()
    for argv in (["git", "read-tree", tip],
                 ["git", "update-index", "--add", "--cacheinfo", f"100644,{blob},{name}"]):
        subprocess.run(argv, cwd=repo, env={**ENV, **env_index}, check=True)
    tree = subprocess.run(["git", "write-tree"], cwd=repo, env={**ENV, **env_index},
                          capture_output=True, text=True, check=True).stdout.strip()
    made = sh("git", "commit-tree", tree, "-p", tip, "-m", f"work on {name}", cwd=repo).strip()
    sh("git", "update-ref", f"refs/heads/{branch}", made, tip, cwd=repo, quiet=True)
    index.unlink()


def landing_scene(repo: Path, pairs: int, markers: Path) -> list[tuple[str, str]]:
    """A rig whose dispatch command touches markers/<bead>; per pair a convoy tracking a
    blocker in progress on its work branch (one commit) and its open dependent; hooks on."""
    markers.mkdir()
    sh("git", "config", "convoy.rig.land.dispatch", f'touch "{markers}/$CONVOY_BEAD"', cwd=repo)
    convoy("rig", "add", "land", "--target", "main", "--capacity", "100", "--default",
           cwd=repo)
    found = [(f"land-b{n}", f"land-d{n}") for n in range(pairs)]
    batch = repo.parent / "pairs.json"
    batch.write_text(json.dumps([item for b, d in found for item in (
        {"id": b, "title": f"Blocker {b}", "rig": "land"},
        {"id": d, "title": f"Dependent of {b}", "rig": "land", "deps": [b]})]))
    convoy("bead", "create", "--batch", batch, cwd=repo)
    for b, d in found:
        convoy("create", f"landing {b}", b, d, cwd=repo)
    convoy("feed", cwd=repo)  # dispatches every blocker
    for b, _ in found:
        commit_on(repo, f"convoy/{b}", f"{b}.txt")
    convoy("feed", cwd=repo)  # the blockers are in progress now
    convoy("hooks", "install", cwd=repo)
    missing = [b for b, _ in found if not (markers / b).exists()]
    early = [d for _, d in found if (markers / d).exists()]
    if missing or early:
        raise SystemExit(f"landing scene: blockers not dispatched {missing}, "
                         f"dependents dispatched too early {early}")
    return found


def landing_rows(s: Scene) -> list[Result]:
    """The landing measured twice, taking turns: back to back (nothing but the last landing's
    own hook wrote to the state since) and right after another write (a `git convoy bead
    create`, untimed, just before the merge: the hook's partial view is then carried across
    that write, gitconvoy/flow/feedview.py)."""
    markers = s.convoy.parent / "markers"
    pairs = iter(landing_scene(s.convoy, 2 * (s.runs + 1), markers))

    def land() -> Sample:
        blocker, dependent = next(pairs)
        marker = markers / dependent
        cpu, started = children_cpu(), time.perf_counter()
        sh("git", "merge", "--no-ff", "-q", "-m", f"land {blocker}", f"convoy/{blocker}",
           cwd=s.convoy)
        merged = time.perf_counter() - started
        while not marker.exists():
            if time.perf_counter() - started > LANDING_TIMEOUT:
                raise SystemExit(f"landing: {dependent} was not dispatched within "
                                 f"{LANDING_TIMEOUT:.0f} s of merging {blocker}; see "
                                 f"{s.convoy}/.git/convoy/hook-errors.log")
            time.sleep(0.002)
        return Sample(time.perf_counter() - started, children_cpu() - cpu, [merged])

    def after_write() -> Sample:
        convoy("bead", "create", "written between two landings", cwd=s.convoy)
        return land()

    a, b = interleave(s.runs, land, after_write)
    results = []
    for samples, when, before in ((a, "back to back", ""),
                                  (b, "right after a `bead create`", "git convoy bead create "
                                   "…, untimed; then ")):
        result = Result(f"blocker lands (`git merge`) → dependent's dispatch ran, @{s.label}, "
                        f"{when}", f"{before}git merge --no-ff convoy/ID; poll the dispatch "
                        "command's file", 0.5, samples, mb_note="— (no dispatch)")
        print(report_line(result) + f"  [git merge itself: "
              f"{seconds(statistics.median(x.parts[0] for x in samples))}]", flush=True)
        results.append(result)
    return results


# --- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000",
                        help="Bead counts; batch and stage use the first, the landing the "
                             "largest.")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--skip-100k", action="store_true", help="Drop sizes of 100,000 up.")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--states", type=Path,
                        default=Path(tempfile.gettempdir()) / "convoy-bench-states")
    parser.add_argument("--keep", type=Path, help="Work in this folder and keep it.")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"Some of {','.join(ROWS)}.")
    args = parser.parse_args(argv)
    sizes = sorted(int(n) for n in args.sizes.split(","))
    if args.skip_100k:
        sizes = [n for n in sizes if n < 100_000]
    rows = set(args.rows.split(","))
    if not sizes or rows - set(ROWS):
        parser.error("nothing to measure: check --sizes, --skip-100k and --rows")
    args.states.mkdir(parents=True, exist_ok=True)
    work = args.keep or Path(tempfile.mkdtemp(prefix="convoy-speed-"))
    ENV.update(bench_env(work / "home"))
    tool = ensure_microbeads(args.states)
    missing = tool if isinstance(tool, str) else ""
    tool = None if isinstance(tool, str) else tool
    if missing:
        print(f"microbeads: {missing}; its column is skipped", flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    print(f"gitconvoy {commit} ({shutil.which('git-convoy', path=ENV['PATH'])}), microbeads "
          f"{tool.version if tool else '—'}; {os.cpu_count()} cpus, load "
          f"{os.getloadavg()[0]:.1f}; runs {args.runs} (+1 warm-up) per side; work in {work}",
          flush=True)
    try:
        scenes = {}
        for size in sizes:
            built = built_state(size, args.seed, args.states, tool)
            repo, mb = working_copy(built, work / str(size))
            scenes[size] = Scene(size, repo, mb, tool if mb else None, args.runs,
                                 missing or ("" if mb else "not built"))
        results: list[Result] = []
        if "ready" in rows:
            for size in sizes:
                results += ready_rows(scenes[size])
        if "create" in rows:
            results += [create_row(scenes[size]) for size in sizes]
        if "batch" in rows:
            results.append(batch_row(scenes[sizes[0]], args.seed))
        if "stage" in rows:
            results.append(stage_row(scenes[sizes[0]]))
        if "landing" in rows:
            results += landing_rows(scenes[sizes[-1]])
        print(f"\nload at the end {os.getloadavg()[0]:.1f}; medians of {args.runs} runs, "
              "wall clock; ratio = gitconvoy / microbeads\n")
        print(markdown(results))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Proof under load (issue 10): many clones, many workers, one convoy, to the end.

One harness, two users: `bench/bench_load.py` (full scale, prints figures) and
`tests/test_load.py` (small scale, asserts the invariants). Everything is real: a bare
remote, clones made with `git clone`, `git convoy hooks install` in each, the installed
`git convoy` entry point, worker processes that commit, push and run `done`.

The scene:
- clone 1 runs `git convoy init`, adds the rig, imports a YAML plan (a random DAG of tasks
  with a fixed seed; two epics whose tasks land on integration branches), cuts and pushes the
  integration branches, stages a convoy of the whole tree and publishes the state;
- the other clones `git clone` the remote; every clone installs the hooks and sets the rig's
  dispatch command to a script that records the dispatch and queues the bead for a worker
  process of that clone (a file in a queue folder);
- workers, each in a worktree of its clone: "push" workers take what their clone's feeder
  queued, "claim" workers pull with `git convoy claim --json --as wN`; for each bead: switch
  to its branch, write `work/<id>.txt`, commit, push the branch, `git convoy done`, `git
  convoy sync`;
- one lander: `git convoy hooks install --server` on the bare remote (default), or
  `git convoy refinery watch` on clone 1; the review gate with an approving command lands an
  epic once all its tasks are in its integration branch;
- a ticker runs `git convoy sync` and `git convoy feed` on each clone in turn;
- clone 1 launches the convoy; the run ends when the remote's state shows it closed.

Then everything is checked from the remote alone (see `Figures`).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HERE = Path(__file__).resolve()
SLOW = 8.0  # a worker's git command taking longer is recorded with its stderr
STATE = "refs/heads/convoy/state"


@dataclass
class LoadConfig:
    tasks: int = 200
    clones: int = 3
    workers: int = 8
    epics: int = 2
    claimers: int | None = None  # workers that pull with `claim` (default: workers // 3)
    epic_share: float = 0.2  # share of the tasks under each epic (the rest: under the root)
    max_deps: int = 2  # each task depends on 0..max_deps earlier tasks
    window: int = 0  # ... chosen among the `window` tasks before it (0: among all of them)
    capacity: int | None = None  # the rig's capacity; default: the number of workers
    seed: int = 10
    lander: str = "server"  # server | watch
    timeout: float = 1800.0
    tick: float = 1.0  # pause between two rounds of the ticker (sync + feed on each clone)
    feed_every: int = 1  # the ticker's `feed` runs every this many rounds (sync every round)
    hook_budget: str | None = None  # convoy.hookBudget on every clone (None: the default)
    worker_hooks: bool = True  # False: the workers' own git commands wake no hook
    trace: bool = True  # GIT_TRACE2_EVENT for every git process: counts pushes and rejections
    say: object = print  # progress lines (None: quiet)


# --- the plan ------------------------------------------------------------------------------


@dataclass
class Task:
    id: str
    group: str  # "" (under the root epic) or the epic's id
    deps: list[str]


def make_plan(cfg: LoadConfig) -> tuple[str, list[Task], list[str]]:
    """The YAML plan, its tasks in creation order, and the epics with integration branches."""
    rng = random.Random(cfg.seed)
    epics = [f"ep{n + 1}" for n in range(cfg.epics)]
    per_epic = int(cfg.tasks * cfg.epic_share)
    groups = [e for e in epics for _ in range(per_epic)]
    groups += [""] * (cfg.tasks - len(groups))
    rng.shuffle(groups)
    tasks: list[Task] = []
    rank = {"": 0, **{e: n + 1 for n, e in enumerate(epics)}}

    def may_wait_for(group: str, other: str) -> bool:
        """A plan that can finish (carry.never_start): a task of the root waits only for
        the root's tasks; an epic's for its own, the root's and earlier epics' (which land
        whole before its task starts). Epics never wait on each other both ways."""
        return other == group or (group != "" and rank[other] < rank[group])

    for n, group in enumerate(groups):
        earlier = [t.id for t in tasks[max(0, n - cfg.window) if cfg.window else 0:]
                   if may_wait_for(group, t.group)]
        count = min(rng.randint(0, cfg.max_deps), len(earlier))
        tasks.append(Task(f"k{n + 1:03d}", group, sorted(rng.sample(earlier, count))))

    def entry(task: Task) -> dict:
        out: dict = {"title": f"task {task.id}", "id": task.id}
        if task.deps:
            out["after"] = task.deps
        return out

    plan = {
        "key": "load-plan",
        "integration": True,
        "epic": {
            "title": "Proof under load",
            "id": "load",
            "tasks": [entry(t) for t in tasks if not t.group],
            "epics": [{"title": f"Epic {e}", "id": e, "slug": e,
                       "integration": f"integration/{e}",
                       "tasks": [entry(t) for t in tasks if t.group == e]} for e in epics],
        },
    }
    return yaml.safe_dump(plan, sort_keys=False), tasks, epics


def chain_depth(tasks: list[Task]) -> int:
    depth: dict[str, int] = {}
    for t in tasks:
        depth[t.id] = 1 + max((depth[d] for d in t.deps), default=0)
    return max(depth.values(), default=0)


# --- processes -----------------------------------------------------------------------------


def base_env(root: Path, trace: bool) -> dict[str, str]:
    """Isolated git config (a developer's own must not change results), no hook guard."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "CONVOY_IN_HOOK",
                        "CONVOY_NOW", "GIT_CONFIG_PARAMETERS", "GIT_TRACE2_EVENT")}
    env["GIT_CONFIG_GLOBAL"] = str(root / "gitconfig")
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    if trace:
        env["GIT_TRACE2_EVENT"] = str(root / "trace")
    return env


def run(args: list[str], cwd: Path, env: dict[str, str], check: bool = True,
        timeout: float = 600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} (in {cwd}) -> {proc.returncode}\n"
                           f"{proc.stdout}{proc.stderr}")
    return proc


# --- the worker (its own process: `python load_harness.py worker …`) ---------------------


class Worker:
    def __init__(self, args: argparse.Namespace) -> None:
        self.a = args
        self.wt = Path(args.worktree)
        self.env = {k: v for k, v in os.environ.items() if k != "CONVOY_IN_HOOK"}
        if args.quiet_hooks:  # this worker's git commands wake no hook (tests/test_load.py)
            self.env["CONVOY_IN_HOOK"] = "1"
        self.out = open(args.results, "a", encoding="utf-8")  # noqa: SIM115

    def note(self, **record: object) -> None:
        self.out.write(json.dumps({"worker": self.a.name, "t": time.time(), **record}) + "\n")
        self.out.flush()

    def git(self, *args: str, retries: int = 0) -> subprocess.CompletedProcess[str]:
        """A command in the worktree; a failure is retried (bounded) and recorded."""
        for attempt in range(retries + 1):
            proc = subprocess.run(list(args), cwd=self.wt, env=self.env, capture_output=True,
                                  text=True, timeout=600)
            noisy = [ln for ln in proc.stderr.splitlines()
                     if "Traceback" in ln or ("gitconvoy:" in ln and "error" in ln)]
            if noisy:
                self.note(kind="noise", cmd=" ".join(args[:4]), lines=noisy[:5])
            if proc.returncode == 0:
                return proc
            self.note(kind="failed", cmd=" ".join(args), rc=proc.returncode,
                      attempt=attempt + 1, err=(proc.stderr + proc.stdout)[-600:])
            time.sleep(0.2 * (attempt + 1))
        return proc

    def take(self) -> tuple[str, str, str] | None:
        """The next bead this clone's feeder queued (an atomic rename decides who gets it)."""
        queue = Path(self.a.queue)
        for entry in sorted(queue.iterdir()):
            if entry.name.startswith("."):
                continue
            mine = Path(self.a.taken) / f"{entry.name}.{self.a.name}"
            try:
                os.rename(entry, mine)
            except OSError:
                continue
            branch, target = mine.read_text().split()[:2]
            return entry.name, branch, target
        return None

    def claim(self) -> tuple[str, str, str] | None:
        proc = subprocess.run(["git", "convoy", "claim", "--json", "--as", self.a.name],
                              cwd=self.wt, env=self.env, capture_output=True, text=True,
                              timeout=600)
        if proc.returncode == 0:
            got = json.loads(proc.stdout)
            with open(self.a.log, "a", encoding="utf-8") as log:
                log.write(f"{got['bead']} {self.a.clone} claim {self.a.name}\n")
            return got["bead"], got["branch"], got["target"]
        if proc.returncode == 1 and "nothing ready" in proc.stderr:
            return None
        self.note(kind="claim", rc=proc.returncode, err=proc.stderr[-400:])
        return None

    def work(self, bead: str, branch: str, target: str) -> None:
        start = time.time()
        steps: dict[str, float] = {}

        def step(name: str, *args: str, retries: int = 3) -> subprocess.CompletedProcess[str]:
            began = time.time()
            proc = self.git(*args, retries=retries)
            took = time.time() - began
            steps[name] = round(steps.get(name, 0.0) + took, 3)
            if took > SLOW:  # what held it: the hooks say what they did on stderr
                self.note(kind="slow", cmd=" ".join(args), seconds=round(took, 2),
                          lines=proc.stderr.splitlines()[-12:])
            return proc

        step("switch", "git", "switch", "-q", branch)
        (self.wt / "work").mkdir(exist_ok=True)
        (self.wt / "work" / f"{bead}.txt").write_text(f"{bead} by {self.a.name}\n")
        step("add", "git", "add", f"work/{bead}.txt")
        step("commit", "git", "commit", "-q", "-m", f"{bead}: the work")
        step("push", "git", "push", "-q", "origin", branch, retries=5)
        # `done` wants the target as a local branch; a clone that did not cut an integration
        # branch has only origin's copy (as anyone would, make a local one from it)
        if subprocess.run(["git", "rev-parse", "-q", "--verify", f"refs/heads/{target}"],
                          cwd=self.wt, env=self.env, capture_output=True).returncode != 0:
            # (only that branch: a plain fetch runs the hooks once per ref it moves)
            step("fetch", "git", "fetch", "-q", "origin",
                 f"+refs/heads/{target}:refs/remotes/origin/{target}")
            step("branch", "git", "branch", "-q", target, f"origin/{target}", retries=0)
        done = step("done", "git", "convoy", "done", bead, retries=5)
        step("sync", "git", "convoy", "sync", "-q", retries=5)
        self.note(kind="done", bead=bead, ok=done.returncode == 0, start=start,
                  seconds=round(time.time() - start, 3), steps=steps)

    def loop(self) -> None:
        stop = Path(self.a.stop)
        pause = 0.05
        while not stop.exists():
            job = self.claim() if self.a.mode == "claim" else self.take()
            if job is None:  # a claim costs a sync (a Python start, a fetch): poll gently
                time.sleep(pause)
                pause = min(pause * 1.5, 2.0 if self.a.mode == "claim" else 0.5)
                continue
            pause = 0.05
            self.work(*job)


def worker_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    for name in ("worktree", "name", "clone", "mode", "queue", "taken", "log", "stop",
                 "results"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--quiet-hooks", action="store_true")
    Worker(parser.parse_args(argv)).loop()


# --- setting the scene ---------------------------------------------------------------------


@dataclass
class Scene:
    root: Path
    remote: Path
    clones: list[Path]
    convoy: str
    tasks: list[Task]
    epics: list[str]
    env: dict[str, str]
    log: Path  # one line per dispatch-command run and per claim: "<bead> <clone> <how> …"
    results: Path
    stop: Path
    workers: list[tuple[str, int, str]] = field(default_factory=list)  # name, clone, mode


DISPATCH = """#!/bin/sh
# the rig's dispatch command on {clone}: record the dispatch, queue the bead for a worker
printf '%s %s dispatch\\n' "$CONVOY_BEAD" {clone} >> {log}
printf '%s %s\\n' "$CONVOY_BRANCH" "$CONVOY_TARGET" > {queue}/.new.$CONVOY_BEAD.$$
mv {queue}/.new.$CONVOY_BEAD.$$ {queue}/$CONVOY_BEAD
"""


def say(cfg: LoadConfig, text: str) -> None:
    if callable(cfg.say):
        cfg.say(text)


def set_scene(cfg: LoadConfig, root: Path) -> Scene:
    root.mkdir(parents=True, exist_ok=True)
    (root / "gitconfig").write_text(
        "[user]\n\tname = Load Test\n\temail = load@example.com\n"
        "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n"
        "[gc]\n\tauto = 0\n[maintenance]\n\tauto = false\n"
    )
    if cfg.trace:
        (root / "trace").mkdir(exist_ok=True)
    env = base_env(root, cfg.trace)
    remote = root / "remote.git"
    run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], root, env)
    one = root / "c1"
    run(["git", "init", "-q", "-b", "main", str(one)], root, env)
    (one / "README").write_text("proof under load\n")
    run(["git", "add", "README"], one, env)
    run(["git", "commit", "-q", "-m", "initial"], one, env)
    run(["git", "remote", "add", "origin", str(remote)], one, env)
    run(["git", "push", "-q", "-u", "origin", "main"], one, env)

    def convoy(*args: str, cwd: Path = one) -> str:
        return run(["git", "convoy", *args], cwd, env).stdout.strip()

    convoy("init", "--prefix", "t")
    capacity = cfg.capacity or cfg.workers
    convoy("rig", "add", "app", "--target", "main", "--capacity", str(capacity))
    text, tasks, epics = make_plan(cfg)
    plan = root / "plan.yaml"
    plan.write_text(text)
    convoy("import", str(plan), "--quiet")
    convoy("integration", "create", "--all", "load")
    run(["git", "push", "-q", "-u", "origin", *(f"integration/{e}" for e in epics)], one, env)
    staged = json.loads(convoy("stage", "load", "--json"))
    unexpected = [w for w in staged.get("warnings") or [] if w.get("code") != "capacity"]
    if unexpected:  # waves wider than the rig are expected; anything else is not
        raise RuntimeError(f"stage warned: {unexpected}")
    convoy("sync", "-q")
    clones = [one]
    for n in range(2, cfg.clones + 1):
        path = root / f"c{n}"
        run(["git", "clone", "-q", str(remote), str(path)], root, env)
        clones.append(path)
    log, results, stop = root / "dispatched.log", root / "results.jsonl", root / "stop"
    log.touch()
    for n, clone in enumerate(clones, 1):
        queue = root / "queue" / f"c{n}"
        queue.mkdir(parents=True)
        (root / "taken" / f"c{n}").mkdir(parents=True)
        script = root / f"dispatch-c{n}.sh"
        script.write_text(DISPATCH.format(clone=f"c{n}", log=log, queue=queue))
        script.chmod(0o755)
        run(["git", "config", "convoy.rig.app.dispatch", str(script)], clone, env)
        if cfg.hook_budget is not None:
            run(["git", "config", "convoy.hookBudget", cfg.hook_budget], clone, env)
        convoy("hooks", "install", cwd=clone)
    lander = remote if cfg.lander == "server" else one
    run(["git", "config", "convoy.review", "true"], lander, env)
    run(["git", "config", "convoy.review.command", "true"], lander, env)
    if cfg.lander == "server":
        convoy("hooks", "install", "--server", cwd=remote)
    scene = Scene(root, remote, clones, staged["convoy"], tasks, epics, env, log, results,
                  stop)
    claimers = cfg.workers // 3 if cfg.claimers is None else cfg.claimers
    for n in range(cfg.workers):  # every clone's feeder needs a pushed worker: they come first
        clone = n % len(clones)
        mode = "claim" if n >= max(cfg.workers - claimers, len(clones)) else "push"
        scene.workers.append((f"w{n}", clone, mode))
        run(["git", "worktree", "add", "-q", "--detach", str(root / "wt" / f"w{n}")],
            clones[clone], env)
    return scene


# --- running it ----------------------------------------------------------------------------


def remote_convoy_status(scene: Scene) -> str | None:
    proc = subprocess.run(["git", "cat-file", "-p", f"{STATE}:convoys/{scene.convoy}.yaml"],
                          cwd=scene.remote, env=scene.env, capture_output=True, text=True)
    if proc.returncode != 0:
        return None
    return (yaml.safe_load(proc.stdout) or {}).get("status")


def lander_idle(path: Path) -> bool:
    """No push left work due and the last lander that took the lock is gone (its pid is in
    the lock file; taking the lock to look would make a serve starting then give up)."""
    convoy_dir = path / "convoy" if path.name.endswith(".git") else path / ".git" / "convoy"
    if (convoy_dir / "refinery-due").exists():
        return False
    try:
        pid = int((convoy_dir / "refinery.lock").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass
class Timeline:
    setup: float = 0.0  # seconds to set the scene
    started: float = 0.0  # launch began
    closed: float | None = None  # the remote's state shows the convoy closed
    ended: float = 0.0
    ticks: int = 0
    tick_notes: list[str] = field(default_factory=list)


def run_load(cfg: LoadConfig, root: Path) -> tuple[Scene, Timeline]:
    setup_start = time.monotonic()
    scene = set_scene(cfg, root)
    timeline = Timeline(setup=time.monotonic() - setup_start)
    say(cfg, f"scene ready in {time.monotonic() - setup_start:.1f}s: {len(scene.tasks)} tasks "
             f"(longest dependency chain {chain_depth(scene.tasks)}), "
             f"{len(scene.clones)} clones, workers "
             + " ".join(f"{n}@c{c + 1}:{m}" for n, c, m in scene.workers)
             + f", lander {cfg.lander}")
    procs: list[subprocess.Popen] = []
    try:
        for name, clone, mode in scene.workers:
            procs.append(subprocess.Popen(
                [sys.executable, str(HERE), "worker", "--worktree", str(root / "wt" / name),
                 "--name", name, "--clone", f"c{clone + 1}", "--mode", mode,
                 "--queue", str(root / "queue" / f"c{clone + 1}"),
                 "--taken", str(root / "taken" / f"c{clone + 1}"), "--log", str(scene.log),
                 "--stop", str(scene.stop), "--results", str(scene.results),
                 *([] if cfg.worker_hooks else ["--quiet-hooks"])],
                cwd=root, env=scene.env, stdout=subprocess.DEVNULL,
                stderr=open(root / f"{name}.stderr", "w")))  # noqa: SIM115
        watcher = None
        if cfg.lander == "watch":
            watcher = subprocess.Popen(
                ["git-convoy", "refinery", "watch", "--interval", "0.2", "--retry-every", "5"],
                cwd=scene.clones[0], env=scene.env,
                stdout=open(root / "watch.log", "w"), stderr=subprocess.STDOUT)  # noqa: SIM115
            procs.append(watcher)
        timeline.started = time.monotonic()
        launched = run(["git", "convoy", "launch", scene.convoy, "--force"], scene.clones[0],
                       scene.env, check=False)
        if launched.returncode != 0:
            timeline.tick_notes.append(f"launch -> {launched.returncode}: {launched.stderr}")
        deadline = timeline.started + cfg.timeout
        last_report = timeline.started
        while time.monotonic() < deadline:
            feeding = timeline.ticks % cfg.feed_every == 0
            turn = timeline.ticks % len(scene.clones)  # each clone's feeder goes first in turn
            for clone in scene.clones[turn:] + scene.clones[:turn]:
                for args in (["sync", "-q"], ["feed"])[:2 if feeding else 1]:
                    proc = run(["git", "convoy", *args], clone, scene.env, check=False)
                    text = proc.stdout + proc.stderr
                    if proc.returncode not in (0,) or "Traceback" in text:
                        timeline.tick_notes.append(
                            f"{clone.name}: git convoy {' '.join(args)} -> {proc.returncode}: "
                            f"{text.strip()[-300:]}")
                if remote_convoy_status(scene) == "closed":
                    break
            timeline.ticks += 1
            if remote_convoy_status(scene) == "closed":
                timeline.closed = time.monotonic()
                break
            if time.monotonic() - last_report > 30:
                last_report = time.monotonic()
                say(cfg, f"  {last_report - timeline.started:6.0f}s: "
                         f"{landed_so_far(scene)} of {len(scene.tasks)} tasks landed")
            time.sleep(cfg.tick)
        scene.stop.touch()
        for proc in procs:
            if proc is not watcher:
                proc.wait(timeout=300)
        if watcher is not None:
            wait_until(lambda: not queued_on(scene), 60)
            watcher.send_signal(signal.SIGTERM)
            watcher.wait(timeout=120)
        wait_until(lambda: lander_idle(scene.remote if cfg.lander == "server"
                                       else scene.clones[0]), 120)
        for _ in range(2):  # every clone's last words reach the remote, and back
            for clone in scene.clones:
                run(["git", "convoy", "sync", "-q"], clone, scene.env, check=False)
        wait_until(lambda: lander_idle(scene.remote if cfg.lander == "server"
                                       else scene.clones[0]), 120)
    finally:
        scene.stop.touch()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=60)
        timeline.ended = time.monotonic()
    return scene, timeline


def wait_until(predicate, bound: float) -> bool:
    end = time.monotonic() + bound
    while not predicate():
        if time.monotonic() > end:
            return False
        time.sleep(0.1)
    return True


def queued_on(scene: Scene) -> bool:
    state = read_state(scene.clones[0], scene.env)
    return any(m.get("status") == "queued" for m in state["mrs"].values())


def landed_so_far(scene: Scene) -> int:
    out = run(["git", "log", "--format=%s", "main"], scene.remote, scene.env,
              check=False).stdout
    return len({m.group(1) for m in re.finditer(r"^Merge convoy/(\S+) into ", out, re.M)})


# --- reading the outcome -------------------------------------------------------------------


def read_state(repo: Path, env: dict[str, str], rev: str = STATE) -> dict[str, dict]:
    """Every object of the state at `rev`, read with git and PyYAML (not gitconvoy's reader):
    {"beads": {id: {...}}, "convoys": {...}, "mrs": {...}, "reviews": {...}}."""
    names = run(["git", "ls-tree", "-r", "--name-only", rev], repo, env).stdout.split()
    wanted = [n for n in names if n.endswith(".yaml") and "/" in n]
    proc = subprocess.run(["git", "cat-file", "--batch"], cwd=repo, env=env,
                          input="".join(f"{rev}:{n}\n" for n in wanted).encode(),
                          capture_output=True, check=True)
    out: dict[str, dict] = collections.defaultdict(dict)
    data, pos = proc.stdout, 0
    for name in wanted:
        header_end = data.index(b"\n", pos)
        size = int(data[pos:header_end].split()[2])
        body = data[header_end + 1:header_end + 1 + size]
        pos = header_end + 1 + size + 1
        obj = yaml.safe_load(body) or {}
        out[name.split("/")[0]][Path(name).stem] = obj
    for kind in ("beads", "convoys", "mrs", "reviews"):
        out.setdefault(kind, {})
    return dict(out)


def convoy_closings(scene: Scene) -> list[str]:
    """Non-merge commits of the remote's state history (all of it, --full-history) that move
    the convoy's file to `closed` from anything else: each one is a transaction that closed
    it."""
    path = f"convoys/{scene.convoy}.yaml"
    shas = run(["git", "log", "--full-history", "--no-merges", "--format=%H", STATE, "--",
                path], scene.remote, scene.env).stdout.split()
    out = []
    for sha in shas:
        def status_at(rev: str) -> str | None:
            proc = subprocess.run(["git", "cat-file", "-p", f"{rev}:{path}"], cwd=scene.remote,
                                  env=scene.env, capture_output=True, text=True)
            return (yaml.safe_load(proc.stdout) or {}).get("status") if proc.returncode == 0 \
                else None
        if status_at(sha) == "closed" and status_at(f"{sha}^") != "closed":
            out.append(sha)
    return out


def unreachable_state_commits(repo: Path, env: dict[str, str]) -> int:
    """State commits written and never referenced by any ref or reflog: transactions (and
    sync merges) whose compare-and-swap of the local ref lost, so they were made again."""
    proc = run(["git", "fsck", "--unreachable", "--no-progress"], repo, env, check=False)
    commits = [ln.split()[2] for ln in proc.stdout.splitlines()
               if ln.startswith("unreachable commit ")]
    if not commits:
        return 0
    check = subprocess.run(["git", "cat-file", "--batch-check"], cwd=repo, env=env,
                           input="".join(f"{c}:convoy.yaml\n" for c in commits),
                           capture_output=True, text=True)
    return sum(1 for ln in check.stdout.splitlines() if not ln.endswith("missing"))


def reflog_messages(repo: Path, env: dict[str, str]) -> list[str]:
    proc = run(["git", "reflog", "show", "--format=%gs", STATE], repo, env, check=False)
    return proc.stdout.splitlines()


@dataclass
class Pushes:
    state: int = 0
    state_rejected: int = 0
    other: int = 0
    other_rejected: int = 0
    processes: int = 0


def count_pushes(trace: Path) -> Pushes:
    """Every `git push` any process ran (GIT_TRACE2_EVENT: one file per git process): pushes
    of the state ref (sync, claim and dispatch publishing) and of everything else (work
    branches, a watch lander's targets), and how many the remote refused (exit code ≠ 0)."""
    out = Pushes()
    if not trace.is_dir():
        return out
    for path in trace.iterdir():
        out.processes += 1
        argv, code = None, None
        with contextlib.suppress(OSError):
            for line in path.read_text(errors="replace").splitlines():
                if '"event":"start"' in line and argv is None:
                    argv = json.loads(line).get("argv")
                elif '"event":"exit"' in line:
                    code = json.loads(line).get("code")
        command = [a for a in (argv or [])[1:] if not a.startswith("-")][:1]
        if command != ["push"]:  # (git --git-dir=… push …: options come first)
            continue
        is_state = any(a.endswith("refs/heads/convoy/state") for a in argv)
        failed = code not in (0, None)
        if is_state:
            out.state += 1
            out.state_rejected += failed
        else:
            out.other += 1
            out.other_rejected += failed
    return out


@dataclass
class Figures:
    tasks: int
    wall: float  # launch → the remote's state shows the convoy closed (or the timeout)
    setup: float  # setting the scene
    wind_down: float  # convoy closed → workers stopped, lander idle, last syncs done
    closed: bool
    landed_per_minute: float
    dispatches: dict[str, int]  # bead → dispatch-command runs + claims
    double_dispatches: int
    attempts_over_one: int  # beads whose final dispatch.attempts > 1
    landed_once: int  # tasks closed, one merged MR, one refinery merge commit on main
    landing_problems: list[str]
    convoy_closings: int
    work_files_on_main: int
    epics_landed: int
    mr_retries: int
    mr_statuses: dict[str, int]
    cas_lost_local: int
    concedes: int
    pushes: Pushes
    per_worker: dict[str, int]
    job_seconds: dict[str, float]  # median per worker step ("job": a whole bead), hooks firing
    failures: list[str]  # commands that failed (after retries too), noise, tick notes
    slow: list[tuple[float, str]]  # worker git commands over SLOW seconds, what their hooks said
    converged: bool
    ticks: int


def collect(cfg: LoadConfig, scene: Scene, timeline: Timeline) -> Figures:
    env = scene.env
    task_ids = [t.id for t in scene.tasks]
    dispatches = collections.Counter(
        ln.split()[0] for ln in scene.log.read_text().splitlines() if ln.strip())
    state = read_state(scene.remote, env)
    beads, mrs = state["beads"], state["mrs"]
    merged = collections.Counter(m.get("bead") for m in mrs.values()
                                 if m.get("status") == "merged")
    log = run(["git", "log", "--format=%s", "main"], scene.remote, env).stdout.splitlines()
    merges = collections.Counter(m.group(1) for s in log
                                 if (m := re.match(r"Merge convoy/(\S+) into ", s)))
    files = set(run(["git", "ls-tree", "-r", "--name-only", "main", "--", "work/"],
                    scene.remote, env).stdout.split())
    problems, once = [], 0
    for tid in task_ids:
        bead = beads.get(tid, {})
        why = []
        if bead.get("status") != "closed":
            why.append(f"status {bead.get('status')}")
        if merged[tid] != 1:
            why.append(f"{merged[tid]} merged MRs")
        if merges[tid] != 1:
            why.append(f"{merges[tid]} refinery merges on main")
        if f"work/{tid}.txt" not in files:
            why.append("its file is not on main")
        if why:
            problems.append(f"{tid}: {', '.join(why)}")
        else:
            once += 1
    epics_landed = sum(1 for s in log for e in scene.epics
                       if s.startswith(f"Land integration/{e} into main"))
    wall = (timeline.closed or timeline.ended) - timeline.started
    failures = list(timeline.tick_notes)
    per_worker: collections.Counter[str] = collections.Counter()
    timings: dict[str, list[float]] = collections.defaultdict(list)
    slow: list[tuple[float, str]] = []
    if scene.results.exists():
        for line in scene.results.read_text().splitlines():
            rec = json.loads(line)
            if rec["kind"] == "done":
                per_worker[rec["worker"]] += 1
                timings["job"].append(rec["seconds"])
                for name, took in rec.get("steps", {}).items():
                    timings[name].append(took)
            elif rec["kind"] == "slow":
                slow.append((rec["seconds"], f"{rec['worker']}: {rec['cmd']}: "
                                             + " | ".join(rec["lines"])))
            elif rec["kind"] in ("failed", "noise", "claim"):
                failures.append(f"{rec['worker']}: {rec['kind']}: "
                                f"{rec.get('cmd', '')} {rec.get('rc', '')} "
                                f"{(rec.get('err') or ' | '.join(rec.get('lines', [])))[-300:]}")
    for stderr in sorted(scene.root.glob("w*.stderr")):
        if stderr.read_text().strip():
            failures.append(f"{stderr.stem} died: {stderr.read_text()[-400:]}")
    for clone in scene.clones:
        for path in sorted((clone / ".git" / "convoy" / "logs").glob("*.log")):
            if "Traceback" in path.read_text(errors="replace"):
                failures.append(f"traceback in {path}")
    serve_log = scene.remote / "convoy" / "refinery.log"
    if serve_log.exists() and "Traceback" in serve_log.read_text(errors="replace"):
        failures.append(f"traceback in {serve_log}")
    tips = {run(["git", "rev-parse", STATE], c, env, check=False).stdout.strip()
            for c in [scene.remote, *scene.clones]}
    reflogs = [m for c in scene.clones for m in reflog_messages(c, env)]
    lost = sum(unreachable_state_commits(c, env) for c in scene.clones)
    if cfg.lander == "server":
        lost += unreachable_state_commits(scene.remote, env)
    return Figures(
        tasks=len(task_ids), wall=wall, setup=timeline.setup,
        wind_down=timeline.ended - (timeline.closed or timeline.ended),
        closed=timeline.closed is not None,
        landed_per_minute=once / wall * 60 if wall > 0 else 0.0,
        dispatches=dict(dispatches),
        double_dispatches=sum(n - 1 for n in dispatches.values() if n > 1),
        attempts_over_one=sum(1 for tid in task_ids
                              if int((beads.get(tid, {}).get("dispatch") or {})
                                     .get("attempts", 0)) > 1),
        landed_once=once, landing_problems=problems,
        convoy_closings=len(convoy_closings(scene)),
        work_files_on_main=sum(1 for tid in task_ids if f"work/{tid}.txt" in files),
        epics_landed=epics_landed,
        mr_retries=sum(int(m.get("retries") or 0) for m in mrs.values()),
        mr_statuses=dict(collections.Counter(m.get("status") for m in mrs.values())),
        cas_lost_local=lost,
        concedes=sum(1 for m in reflogs if "claim: concede" in m),
        pushes=count_pushes(scene.root / "trace") if cfg.trace else Pushes(),
        per_worker=dict(sorted(per_worker.items(), key=lambda kv: int(kv[0][1:]))),
        job_seconds={k: round(statistics.median(v), 2) for k, v in timings.items()},
        failures=failures, slow=sorted(slow, reverse=True), converged=len(tips) == 1,
        ticks=timeline.ticks,
    )


def broken_invariants(f: Figures) -> list[str]:
    out = []
    if not f.closed:
        out.append("the convoy did not close before the timeout")
    if f.double_dispatches:
        twice = sorted(b for b, n in f.dispatches.items() if n > 1)
        out.append(f"{f.double_dispatches} double dispatch(es): {', '.join(twice[:10])}")
    if f.landed_once != f.tasks:
        out.append(f"{f.tasks - f.landed_once} task(s) not landed exactly once: "
                   + "; ".join(f.landing_problems[:10]))
    if f.convoy_closings != 1:
        out.append(f"the convoy was closed {f.convoy_closings} times")
    if f.work_files_on_main != f.tasks:
        out.append(f"remote main lacks {f.tasks - f.work_files_on_main} task file(s)")
    return out


def report_lines(cfg: LoadConfig, f: Figures) -> list[str]:
    p = f.pushes
    state_pushes = f"{p.state_rejected} of {p.state}" if cfg.trace else "n/a (no trace)"
    other_pushes = f"{p.other_rejected} of {p.other}" if cfg.trace else "n/a (no trace)"
    lines = [
        f"wall time (launch → convoy closed on the remote): {f.wall:.1f} s"
        + ("" if f.closed else " (TIMED OUT)"),
        f"tasks landed per minute: {f.landed_per_minute:.1f}",
        f"tasks landed exactly once: {f.landed_once} of {f.tasks} "
        f"(work files on remote main: {f.work_files_on_main}); epics landed: {f.epics_landed}",
        f"convoy closed: {f.convoy_closings} time(s)",
        f"double dispatches: {f.double_dispatches} "
        f"(dispatch-command runs + claims: {sum(f.dispatches.values())}; beads with "
        f"dispatch.attempts > 1: {f.attempts_over_one})",
        f"CAS retries: local state CAS lost {f.cas_lost_local}; state pushes refused by the "
        f"remote {state_pushes}; claims/dispatches conceded {f.concedes}",
        f"push retries: MR retries {f.mr_retries}; other pushes refused {other_pushes}; "
        f"MRs {f.mr_statuses}",
        f"tasks per worker: {f.per_worker}",
        f"worker steps, median seconds (hooks firing): {f.job_seconds}",
        f"clones and remote on one state: {f.converged}; ticker rounds: {f.ticks}; "
        f"git processes traced: {p.processes}; setup {f.setup:.1f} s, wind-down "
        f"{f.wind_down:.1f} s",
    ]
    if f.slow:
        lines.append(f"worker git commands over {SLOW:g} s: {len(f.slow)}; the slowest:")
        lines += [f"  {took:.1f} s {what[:400]}" for took, what in f.slow[:5]]
    if f.failures:
        lines.append(f"failures and noise ({len(f.failures)}):")
        lines += [f"  {x}" for x in f.failures[:30]]
    return lines


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "worker":
    worker_main(sys.argv[2:])

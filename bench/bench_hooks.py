"""Hook benchmarks (issue 4): prints figures, never fails on time.

Usage: python bench/bench_hooks.py [--runs 30] [--keep DIR]

1. Whole-process cost of each installed hook when nothing relevant happened, run the way
   git runs it (cwd at the top of the work tree, git's arguments and stdin), in a repository
   with a convoy in flight (so its target is watched) and 200 beads:
   reference-transaction with an unwatched ref (bar < 30 ms), with phase `prepared`, and
   post-merge / post-rewrite / post-checkout / post-commit with no watched ref moved
   (bar < 100 ms). For scale: the Python side when it does run (one feeder step with nothing
   to do; and the gate alone, which answers "a target moved but nothing landed" without
   loading pygit2 or the state) and a bare interpreter start.
2. Added wall time of `git pull --rebase` with 5 local commits and 1 new upstream commit,
   hooks installed vs not (bar < 150 ms added): once with nothing in flight (main is not
   watched: only the shims run) and once with a convoy in flight (main is watched: the shim
   wakes Python once, whose gate sees that the new upstream commit lands nothing). For
   scale, the same pull with five empty `#!/bin/sh` hooks: git runs reference-transaction
   ~3 times per ref update (~60 times for this rebase), and that spawning is a floor no
   hook can go under.

Needs hyperfine. Each pull run starts from the same refs (hyperfine --prepare resets them
with the hooks silenced by CONVOY_IN_HOOK=1).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PY = sys.executable
QUIET = "CONVOY_IN_HOOK=1"


def sh(*args: str, cwd: Path, quiet: bool = True) -> str:
    env = {**os.environ, **({"CONVOY_IN_HOOK": "1"} if quiet else {})}
    proc = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed in {cwd}: {proc.stderr}")
    return proc.stdout.strip()


def convoy(*args: str, cwd: Path) -> str:
    return sh(PY, "-m", "gitconvoy", *args, cwd=cwd)


def isolate(root: Path) -> None:
    gitconfig = root / ".gitconfig"  # in HOME: libgit2 (pygit2) does not read GIT_CONFIG_GLOBAL
    gitconfig.write_text("[user]\n\tname = Bench\n\temail = bench@example.com\n"
                         "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n")
    os.environ.update(GIT_CONFIG_GLOBAL=str(gitconfig), GIT_CONFIG_NOSYSTEM="1",
                      HOME=str(root))
    # An installed wheel has its bytecode compiled; a sandbox that sets
    # PYTHONDONTWRITEBYTECODE would recompile every module at every hook run instead.
    for var in ("GIT_DIR", "GIT_WORK_TREE", "CONVOY_IN_HOOK", "GIT_CONFIG_PARAMETERS",
                "PYTHONDONTWRITEBYTECODE"):
        os.environ.pop(var, None)


def commit(repo: Path, name: str, text: str) -> None:
    (repo / name).write_text(text)
    sh("git", "add", name, cwd=repo)
    sh("git", "commit", "-q", "-m", f"{name}: {text.strip()}", cwd=repo)


def plan(repo: Path, beads: int, in_flight: bool) -> None:
    """A state with `beads` beads and a rig on main; optionally one bead slung (in flight)."""
    convoy("init", "--prefix", "b", cwd=repo)
    convoy("rig", "add", "app", "--target", "main", "--capacity", "3", cwd=repo)
    batch = repo.parent / f"{repo.name}-beads.json"
    batch.write_text(json.dumps([{"title": f"bench bead {i}"} for i in range(beads - 1)]))
    convoy("bead", "create", "--batch", str(batch), cwd=repo)
    if in_flight:
        first = convoy("bead", "create", "in flight", cwd=repo)
        convoy("sling", first, cwd=repo)


def hyperfine(commands: dict[str, str], runs: int, *, prepare: str | None = None,
              shell: bool = False, cwd: Path) -> dict[str, float]:
    """Median seconds per command name."""
    out = cwd.parent / "hyperfine.json"  # outside the work tree
    args = ["hyperfine", "--style", "none", "--warmup", "3", "--runs", str(runs),
            "--export-json", str(out)]
    if not shell:
        args.append("-N")
    if prepare:
        args += ["--prepare", prepare]
    for name, command in commands.items():
        args += ["--command-name", name, command]
    subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True)
    results = json.loads(out.read_text())["results"]
    return {r["command"]: r["median"] for r in results}


# --- 1. each hook when nothing relevant happened --------------------------------------------


def bench_noop_hooks(root: Path, runs: int) -> dict[str, float]:
    repo = root / "noop"
    repo.mkdir()
    sh("git", "init", "-q", "-b", "main", cwd=repo)
    commit(repo, "README", "hello\n")
    plan(repo, 200, in_flight=True)
    convoy("hooks", "install", cwd=repo)
    head = sh("git", "rev-parse", "HEAD", cwd=repo)
    unwatched = root / "tx-unwatched"
    unwatched.write_text(f"{'0' * 40} {head} refs/heads/feature\n{head} {head} HEAD\n")
    empty = root / "empty"
    empty.write_text("")
    hooks = repo / ".git" / "hooks"
    commands = {
        "reference-transaction committed, unwatched ref":
            f"{hooks}/reference-transaction committed < {unwatched}",
        "reference-transaction prepared":
            f"{hooks}/reference-transaction prepared < {unwatched}",
        "post-merge": f"{hooks}/post-merge 0 < {empty}",
        "post-rewrite": f"{hooks}/post-rewrite rebase < {empty}",
        "post-checkout": f"{hooks}/post-checkout {head} {head} 1 < {empty}",
        "post-commit": f"{hooks}/post-commit < {empty}",
    }
    figures = hyperfine(commands, runs, shell=True, cwd=repo)
    figures |= hyperfine({
        "python side: one feeder step, nothing to do":
            f"{shlex.quote(PY)} -P -m gitconvoy hook post-merge 0",
        "python side: the gate finds nothing landed":
            f"env CONVOY_DIR={shlex.quote(str(repo / '.git' / 'convoy'))} {shlex.quote(PY)} "
            "-P -m gitconvoy hook post-merge 0",
        "bare interpreter start": f"{shlex.quote(PY)} -c pass",
        "bare interpreter start without site (.pth files)": f"{shlex.quote(PY)} -S -c pass",
    }, max(10, runs // 2), cwd=repo)
    seen = (repo / ".git" / "convoy" / "hook-seen").read_text()
    assert "refs/heads/main" in (repo / ".git" / "convoy" / "watch").read_text()
    assert seen, "the hook-seen fingerprint should exist"
    return figures


# --- 2. git pull --rebase with 5 local commits ------------------------------------------------


def pull_scene(root: Path, in_flight: bool) -> tuple[Path, Path, str]:
    """A remote with one new upstream commit; two clones, each with 5 local commits on main
    and the same convoy state; hooks installed in the second only."""
    tag = "flight" if in_flight else "idle"
    remote = root / f"remote-{tag}.git"
    sh("git", "init", "-q", "--bare", str(remote), cwd=root)
    seed = root / f"seed-{tag}"
    seed.mkdir()
    sh("git", "init", "-q", "-b", "main", cwd=seed)
    commit(seed, "README", "hello\n")
    plan(seed, 200, in_flight=in_flight)
    sh("git", "remote", "add", "origin", str(remote), cwd=seed)
    sh("git", "push", "-q", "origin", "main", "convoy/state", cwd=seed)
    old = sh("git", "rev-parse", "main", cwd=seed)
    clones = []
    for name in ("plain", "floor", "hooked"):
        clone = root / f"{name}-{tag}"
        sh("git", "clone", "-q", str(seed), str(clone), cwd=root)
        sh("git", "branch", "convoy/state", "origin/convoy/state", cwd=clone)
        sh("git", "remote", "set-url", "origin", str(remote), cwd=clone)
        sh("git", "fetch", "-q", "origin", cwd=clone)
        for i in range(5):
            commit(clone, f"local{i}.txt", f"local {i}\n")
        clones.append(clone)
    for hook in ("post-merge", "post-rewrite", "post-checkout", "post-commit",
                 "reference-transaction"):  # the floor: git spawning a hook that does nothing
        path = clones[1] / ".git" / "hooks" / hook
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    convoy("hooks", "install", cwd=clones[2])
    upstream = root / f"upstream-{tag}"
    sh("git", "clone", "-q", str(remote), str(upstream), cwd=root)
    commit(upstream, "upstream.txt", "new upstream work\n")
    sh("git", "push", "-q", "origin", "main", cwd=upstream)
    return clones[0], clones[1], clones[2], old


def bench_pull(root: Path, runs: int, in_flight: bool) -> dict[str, float]:
    plain, floor, hooked, old = pull_scene(root, in_flight)
    root = plain
    figures: dict[str, float] = {}
    for name, clone in (("without hooks", plain), ("empty hooks", floor),
                        ("with hooks", hooked)):
        local = sh("git", "rev-parse", "main", cwd=clone)
        reset = (f"cd {shlex.quote(str(clone))} && {QUIET} git reset -q --hard {local} && "
                 f"{QUIET} git update-ref refs/remotes/origin/main {old}")
        seen = clone / ".git" / "convoy" / "hook-seen"
        if seen.exists():  # as last fed before the pull; else a repeated, identical rebase
            saved = seen.with_name("hook-seen.bench")  # would look like nothing moved
            shutil.copy(seen, saved)
            reset += f" && cp {shlex.quote(str(saved))} {shlex.quote(str(seen))}"
        got = hyperfine({name: f"git -C {clone} pull -q --rebase"}, runs,
                        prepare=f"sh -c {shlex.quote(reset)}", cwd=root)
        figures.update(got)
    log = sh("git", "log", "--format=%s", "-7", "main", cwd=hooked).splitlines()
    assert log[0] == "local4.txt: local 4" and "upstream.txt: new upstream work" in log
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--keep", type=Path, help="Build the scenes here and keep them.")
    opts = parser.parse_args()
    if not shutil.which("hyperfine"):
        raise SystemExit("hyperfine is needed: https://github.com/sharkdp/hyperfine")
    root = opts.keep or Path(tempfile.mkdtemp(prefix="bench-hooks-"))
    root.mkdir(parents=True, exist_ok=True)
    isolate(root)
    print(f"# hook benchmarks ({opts.runs} runs each, median; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    print("\n## 1. each hook when nothing relevant happened (whole process)")
    for name, secs in bench_noop_hooks(root, opts.runs).items():
        bar = 30 if name.startswith("reference-transaction") else 100
        note = "" if name.startswith(("python", "bare")) else f"  (bar < {bar} ms)"
        print(f"{name:<50} {secs * 1000:7.1f} ms{note}")
    print("\n## 2. git pull --rebase, 5 local commits, 1 upstream commit")
    for in_flight in (False, True):
        figures = bench_pull(root, opts.runs, in_flight)
        added = (figures["with hooks"] - figures["without hooks"]) * 1000
        what = ("convoy in flight (main watched: Python wakes once, its gate finds nothing "
                "landed)" if in_flight else "nothing in flight (main not watched: shims only)")
        print(f"{what}:")
        floor = (figures["empty hooks"] - figures["without hooks"]) * 1000
        print(f"  without hooks {figures['without hooks'] * 1000:7.1f} ms, with hooks "
              f"{figures['with hooks'] * 1000:7.1f} ms, added {added:6.1f} ms  (bar < 150 ms)")
        print(f"  of which git spawning any hooks at all (five '#!/bin/sh' files): "
              f"{floor:6.1f} ms")
    if not opts.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

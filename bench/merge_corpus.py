"""Replay recorded merges through gitconvoy's merge engines and compare with git (issue 11).

Sources:
- real history: each `bench/merge_corpus/<name>.txt` names a clone URL and tip commits; every
  two-parent merge reachable from the tips is replayed. `--local <name>=<git dir>` uses a
  copy on this machine instead of cloning (a shared clone: nothing is written to it);
- synthetic: `bench/synthetic_history.py` at `--synthetic N` merges (0 leaves it out).

For every merge M of P1 and P2, git's own result is the reference: `git merge-tree
--write-tree P1 P2`, or, when P1 has `.gitattributes` files (which merge-tree reads only from
a work tree), a real `git merge --no-commit` of P2 in a scratch checkout of P1.
- git clean and its tree is M's tree: a clean case; an engine must produce that tree;
- git clean but M records another tree: skipped (an evil or hand-edited merge), counted;
- git conflicts: an engine must refuse, naming git's conflicting files.

Engines: `ort` is gitconvoy.git.treemerge with git merge-tree (what the refinery uses on git
>= 2.38); `libgit2-patience` is its fallback for older git; `libgit2-default` is the engine
the refinery used before (pygit2 merge_commits with default options); `libgit2-minimal` is
the other libgit2 diff option. libgit2's conflicting files are named by
`treemerge.conflict_paths` for all three.

Usage: python bench/merge_corpus.py [--local pallets-click=/path/to/git/dir ...]
           [--sources pallets-click,pallets-flask] [--synthetic 200] [--limit N] [--show 5]
Prints per source: clean merges exact / total, conflicts refused / total, skipped, and time
per merge for each engine. Benchmarks never fail on results; the exit code is 0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pygit2
from pygit2.enums import MergeFileFlag

from gitconvoy.git import treemerge
from gitconvoy.state.store import Store

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "merge_corpus"
ENV = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
       "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "b@example.com",
       "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "b@example.com"}


@dataclass(frozen=True)
class Outcome:
    tree: str | None
    files: tuple[str, ...] = ()


@dataclass
class Score:
    clean_exact: int = 0
    clean_total: int = 0
    refused_same: int = 0
    refused_other: int = 0
    conflict_total: int = 0
    seconds: float = 0.0
    misses: list[str] = field(default_factory=list)


def git(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=ENV)
    if check and proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {proc.stderr.strip()}")
    return proc


# --- engines ------------------------------------------------------------------------------


def ort(store: Store, ours: str, theirs: str) -> Outcome:
    result = treemerge.merge_commits(store, ours, theirs, treemerge.Engine.ORT)
    return Outcome(result.tree, result.conflicts)


def libgit2(flags: MergeFileFlag) -> Callable[[Store, str, str], Outcome]:
    def merge(store: Store, ours: str, theirs: str) -> Outcome:
        index = store.repo.merge_commits(ours, theirs, file_flags=flags)
        if index.conflicts is None:
            return Outcome(str(index.write_tree(store.repo)))
        return Outcome(None, tuple(treemerge.conflict_paths(index)))
    return merge


ENGINES: dict[str, Callable[[Store, str, str], Outcome]] = {
    "ort": ort,
    "libgit2-patience": libgit2(MergeFileFlag.DIFF_PATIENCE),
    "libgit2-default": libgit2(MergeFileFlag.DEFAULT),
    "libgit2-minimal": libgit2(MergeFileFlag.DIFF_MINIMAL),
}


# --- git's reference result ---------------------------------------------------------------


class Reference:
    """git's result for P1 + P2: merge-tree, or a real `git merge` in a scratch checkout when
    P1 carries attributes (merge=union, a driver), which merge-tree 2.39 reads from a work
    tree only."""

    def __init__(self, git_dir: Path, scratch: Path) -> None:
        self.git_dir = git_dir
        self.scratch = scratch
        self.repo = pygit2.Repository(str(git_dir))
        self.checkout_used = 0

    def result(self, p1: str, p2: str) -> Outcome:
        if self.has_attributes(self.repo[p1].peel(pygit2.Tree)):
            self.checkout_used += 1
            return self.by_checkout(p1, p2)
        res = git(f"--git-dir={self.git_dir}", "merge-tree", "--write-tree", "--name-only",
                  "-z", "--allow-unrelated-histories", p1, p2, check=False)
        if res.returncode not in (0, 1):
            raise RuntimeError(f"merge-tree {p1} {p2}: {res.stderr.strip()}")
        tree, files, _ = treemerge.parse_merge_tree(res.stdout)
        return Outcome(tree) if res.returncode == 0 else Outcome(None, tuple(sorted(files)))

    def has_attributes(self, tree: pygit2.Tree) -> bool:
        for entry in tree:
            if entry.name == ".gitattributes" and entry.type_str == "blob":
                return True
            if entry.type_str == "tree" and self.has_attributes(self.repo[entry.id]):
                return True
        return False

    def by_checkout(self, p1: str, p2: str) -> Outcome:
        wt = self.scratch
        if not wt.exists():
            git(f"--git-dir={self.git_dir}", "worktree", "add", "-q", "--detach", str(wt), p1)
        git("checkout", "-q", "-f", "--detach", p1, cwd=wt)
        git("clean", "-q", "-fdx", cwd=wt)
        merged = git("merge", "-q", "--no-ff", "--no-commit", "--allow-unrelated-histories",
                     p2, cwd=wt, check=False)
        if merged.returncode == 0:
            outcome = Outcome(git("write-tree", cwd=wt).stdout.strip())
        else:
            names = git("diff", "--name-only", "-z", "--diff-filter=U", cwd=wt).stdout
            outcome = Outcome(None, tuple(sorted({n for n in names.split("\0") if n})))
        git("merge", "--abort", cwd=wt, check=False)
        git("reset", "-q", "--hard", cwd=wt)
        return outcome


# --- sources ------------------------------------------------------------------------------


@dataclass
class Source:
    name: str
    git_dir: Path
    merges: list[tuple[str, str, str]]
    expected: int | None = None
    octopus: int = 0


def read_corpus_file(path: Path) -> tuple[str, list[str], int | None]:
    url, tips, expected = "", [], None
    for line in path.read_text().splitlines():
        word, _, rest = line.partition(" ")
        if word == "url":
            url = rest.strip()
        elif word == "tip":
            tips.append(rest.split()[0])
        elif word == "merges":
            expected = int(rest)
    return url, tips, expected


def merges_of(git_dir: Path, tips: list[str]) -> tuple[list[tuple[str, str, str]], int]:
    out = git(f"--git-dir={git_dir}", "rev-list", "--merges", "--parents", *tips).stdout
    pairs, octopus = [], 0
    for line in out.splitlines():
        ids = line.split()
        if len(ids) == 3:
            pairs.append((ids[0], ids[1], ids[2]))
        else:
            octopus += 1
    return pairs, octopus


def real_source(name: str, local: str | None, root: Path) -> Source:
    url, tips, expected = read_corpus_file(CORPUS / f"{name}.txt")
    git_dir = root / f"{name}.git"
    if local:  # a shared clone: objects written by merges go to our copy, not to `local`
        git("clone", "-q", "--bare", "--shared", local, str(git_dir))
    else:
        git("clone", "-q", "--bare", url, str(git_dir))
    merges, octopus = merges_of(git_dir, tips)
    return Source(name, git_dir, merges, expected, octopus)


def synthetic_source(count: int, seed: int, root: Path) -> Source:
    sys.path.insert(0, str(HERE))
    import synthetic_history

    folder = synthetic_history.build(root / "synthetic", count, seed)
    merges, octopus = merges_of(folder / ".git", ["main", "stable"])
    return Source(f"synthetic (seed {seed})", folder / ".git", merges, None, octopus)


# --- the replay ---------------------------------------------------------------------------


def replay(source: Source, limit: int | None, root: Path) -> tuple[dict[str, Score], int, int]:
    store = Store(pygit2.Repository(str(source.git_dir)))
    reference = Reference(source.git_dir, source.git_dir.parent / f"{source.git_dir.stem}-wt")
    scores = {name: Score() for name in ENGINES}
    skipped = 0
    for merge, p1, p2 in source.merges[:limit]:
        expected = reference.result(p1, p2)
        if expected.tree is not None and expected.tree != str(store.repo[merge].tree_id):
            skipped += 1
            continue
        for name, engine in ENGINES.items():
            score = scores[name]
            started = time.perf_counter()
            got = engine(store, p1, p2)
            score.seconds += time.perf_counter() - started
            if expected.tree is not None:
                score.clean_total += 1
                if got.tree == expected.tree:
                    score.clean_exact += 1
                else:
                    score.misses.append(f"{merge[:12]} clean in git; "
                                        + ("another tree" if got.tree else f"refused {got.files}"))
            else:
                score.conflict_total += 1
                if got.tree is None and got.files == expected.files:
                    score.refused_same += 1
                elif got.tree is None:
                    score.refused_other += 1
                    score.misses.append(f"{merge[:12]} git: {expected.files}; ours: {got.files}")
                else:
                    score.misses.append(f"{merge[:12]} conflicts in git {expected.files}; "
                                        "merged cleanly")
    return scores, skipped, reference.checkout_used


def report(source: Source, scores: dict[str, Score], skipped: int, checkouts: int,
           show: int) -> None:
    first = next(iter(scores.values()))
    replayed = first.clean_total + first.conflict_total
    note = f", expected {source.expected}" if source.expected is not None else ""
    print(f"\n{source.name}: {len(source.merges)} two-parent merges{note}; "
          f"{source.octopus} octopus left out; {skipped} skipped (M's tree is not git's "
          f"clean result); {checkouts} referenced by a checkout (attributes)")
    print(f"  {'engine':18} {'clean exact':>14} {'conflicts refused':>18} "
          f"{'(other files)':>14} {'ms/merge':>9}")
    for name, s in scores.items():
        print(f"  {name:18} {s.clean_exact:>6}/{s.clean_total:<7} "
              f"{s.refused_same:>8}/{s.conflict_total:<9} {s.refused_other:>14} "
              f"{s.seconds / max(replayed, 1) * 1000:>9.1f}")
    for name, s in scores.items():
        for miss in s.misses[:show]:
            print(f"    {name}: {miss}")
        if len(s.misses) > show:
            print(f"    {name}: … {len(s.misses) - show} more")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--local", action="append", default=[],
                        help="<name>=<git dir>: use a copy on this machine instead of cloning")
    parser.add_argument("--sources", default=None,
                        help="comma-separated names from bench/merge_corpus (default: all)")
    parser.add_argument("--synthetic", type=int, default=200)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--limit", type=int, default=None, help="merges per source")
    parser.add_argument("--show", type=int, default=5, help="mismatches shown per engine")
    args = parser.parse_args()
    locals_ = dict(item.split("=", 1) for item in args.local)
    names = (args.sources.split(",") if args.sources is not None
             else sorted(p.stem for p in CORPUS.glob("*.txt")))
    root = Path(tempfile.mkdtemp(prefix="merge-corpus-"))
    try:
        sources = [real_source(name, locals_.get(name), root) for name in names if name]
        if args.synthetic:
            sources.append(synthetic_source(args.synthetic, args.seed, root))
        for source in sources:
            scores, skipped, checkouts = replay(source, args.limit, root)
            report(source, scores, skipped, checkouts, args.show)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

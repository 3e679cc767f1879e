"""A repository whose merges trip diff alignment, made with real `git merge` (issue 11).

The history follows a project with a release train: feature branches merged into `main`,
fixes merged into `stable`, releases, and "merge stable into main". The edits are the kind
on which diff algorithms disagree about where a hunk goes:
- a changelog with several similar "Version … / Unreleased" blocks, whose blank lines vary
  from one editor to the next (the case that landed entries under the wrong heading);
- functions moved, copied with small changes, deleted, and bodies edited;
- blank-line-heavy code, and test files of near-identical test functions.
Several branches are cut from the same tip and merged one after another, so most merges are
true three-way merges; some conflict, and are resolved by taking the branch's side, with
git's conflicting files listed in the merge message (a replay compares only those).

Deterministic for a given seed (fixed dates and identity). Usage:
    python bench/synthetic_history.py <folder> [--merges 200] [--seed 11]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
from pathlib import Path

MODULES = ("core", "parser", "shell", "termui", "types", "utils")
ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
       "GIT_AUTHOR_NAME": "Synthetic", "GIT_AUTHOR_EMAIL": "synthetic@example.com",
       "GIT_COMMITTER_NAME": "Synthetic", "GIT_COMMITTER_EMAIL": "synthetic@example.com"}
WORDS = ("parser", "option", "prompt", "pager", "colour", "choice", "path", "stream",
         "context", "command", "group", "flag", "default", "envvar", "encoding", "width")


class Builder:
    """One working tree, real git commands, and a clock that ticks one minute a commit."""

    def __init__(self, folder: Path, seed: int) -> None:
        self.dir = folder
        self.rng = random.Random(seed)
        self.tick = 0
        self.issue = 100
        self.merges = 0
        folder.mkdir(parents=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        stamp = f"{1_700_000_000 + 60 * self.tick} +0000"
        env = {**os.environ, **ENV, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
        for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
            env.pop(name, None)
        proc = subprocess.run(["git", *args], cwd=self.dir, capture_output=True, text=True,
                              env=env)
        if check and proc.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)}: {proc.stderr.strip()}")
        return proc

    def read(self, name: str) -> list[str]:
        path = self.dir / name
        return path.read_text().split("\n")[:-1] if path.exists() else []

    def write(self, name: str, lines: list[str]) -> None:
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")

    def commit(self, message: str) -> None:
        self.tick += 1
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)

    def merge(self, branch: str, into: str) -> None:
        """`git merge --no-ff` as a maintainer would. A conflict is resolved with the
        branch's side of each file (or its deletion), and the message lists the files git
        reported (`Conflicts:` then one tab-indented path a line), so a replay can check
        them against an independent witness."""
        self.git("checkout", "-q", into)
        before = self.git("rev-parse", "HEAD").stdout
        self.tick += 1
        if self.git("merge", "-q", "--no-ff", "--no-edit", branch, check=False).returncode:
            unmerged = self.git("diff", "--name-only", "-z", "--diff-filter=U").stdout
            names = sorted({name for name in unmerged.split("\0") if name})
            for name in names:
                if self.git("checkout", "--theirs", "--", name, check=False).returncode:
                    self.git("rm", "-q", "--", name)
            self.git("add", "-A")
            title = (self.dir / ".git" / "MERGE_MSG").read_text().splitlines()[0]
            listed = "".join(f"\t{name}\n" for name in names)
            self.git("commit", "-q", "-m", f"{title}\n\nConflicts:\n{listed}")
        if self.git("rev-parse", "HEAD").stdout != before:
            self.merges += 1

    # --- the changelog --------------------------------------------------------------------

    def blank(self) -> list[str]:
        return [""] * self.rng.choice((1, 2, 2, 3))

    def entry(self) -> list[str]:
        self.issue += 1
        words = self.rng.sample(WORDS, 3)
        text = f"-   Fix {words[0]} handling when the {words[1]} has a {words[2]}."
        if self.rng.random() < 0.4:
            return [text, f"    :issue:`{self.issue}`"]
        return [f"{text} :issue:`{self.issue}`"]

    def add_entry(self, block: int = 0) -> None:
        """A changelog entry in the `block`-th version: mostly after its last entry, as
        people add them, sometimes between two entries."""
        lines = self.read("CHANGES.rst")
        heads = [n for n, text in enumerate(lines) if text.startswith("Version ")]
        if not heads:
            return
        start = heads[min(block, len(heads) - 1)]
        end = next((n for n in heads if n > start), len(lines))
        entries = [n for n in range(start + 4, end) if lines[n].startswith("-   ")]
        if not entries:
            lines[start + 4:start + 4] = ["", *self.entry(), ""]
        elif self.rng.random() < 0.5:
            last = max(n for n in range(start + 4, end) if lines[n].strip())
            lines[last + 1:last + 1] = self.entry()
        else:
            at = self.rng.choice(entries)
            lines[at:at] = self.entry()
        self.write("CHANGES.rst", lines)

    def tidy_changelog(self) -> None:
        """Someone evens out the blank lines between versions (two, or three)."""
        lines, out, blanks = self.read("CHANGES.rst"), [], self.rng.choice((2, 3))
        for n, text in enumerate(lines):
            if text.startswith("Version ") and n > 2:
                while out and not out[-1]:
                    out.pop()
                out += [""] * blanks
            out.append(text)
        self.write("CHANGES.rst", out)

    def new_version(self, version: str) -> None:
        lines = self.read("CHANGES.rst")
        block = [f"Version {version}", "-------------", "", "Unreleased", *self.blank()]
        lines[2:2] = block
        self.write("CHANGES.rst", lines)

    def release(self) -> None:
        lines = self.read("CHANGES.rst")
        if "Unreleased" in lines:
            lines[lines.index("Unreleased")] = f"Released 2024-{1 + self.tick % 12:02d}-11"
        self.write("CHANGES.rst", lines)

    # --- code -----------------------------------------------------------------------------

    def function(self, name: str) -> list[str]:
        word = self.rng.choice(WORDS)
        body = [f"def {name}(value, {word}=None):",
                f'    """Return the {word} for value."""', ""]
        for n in range(self.rng.randint(2, 5)):
            body += [f"    if {word} is None:", f"        {word} = value * {n + 1}", ""]
        return [*body, f"    return {word}", "", ""]

    def functions(self, module: str) -> list[list[str]]:
        lines = self.read(f"src/proj/{module}.py")
        blocks: list[list[str]] = []
        for text in lines:
            if text.startswith("def ") or not blocks:
                blocks.append([])
            blocks[-1].append(text)
        return blocks

    def edit_code(self) -> None:
        module = self.rng.choice(MODULES)
        blocks = self.functions(module)
        kind = self.rng.choice(("body", "body", "add", "move", "copy", "delete", "blank"))
        funcs = [n for n, b in enumerate(blocks) if b and b[0].startswith("def ")]
        if kind == "add" or not funcs:
            at = self.rng.randint(1, len(blocks))
            blocks.insert(at, self.function(f"{module}_{self.rng.choice(WORDS)}_{self.tick}"))
        else:
            pick = self.rng.choice(funcs)
            if kind == "body":
                lines = blocks[pick]
                row = self.rng.randrange(1, max(len(lines) - 2, 2))
                lines[row] = lines[row].replace("* ", f"* {self.rng.randint(2, 9)} * ", 1) \
                    if "* " in lines[row] else lines[row] + f"  # {self.rng.choice(WORDS)}"
            elif kind == "move" and len(funcs) > 1:
                moved = blocks.pop(pick)
                blocks.insert(self.rng.randint(1, len(blocks)), moved)
            elif kind == "copy":
                copy = [text.replace("(value", "(value, extra") for text in blocks[pick]]
                copy[0] = copy[0].replace("(", f"_{self.tick}(", 1)
                blocks.insert(pick + 1, copy)
            elif kind == "delete" and len(funcs) > 2:
                blocks.pop(pick)
            else:
                blocks[pick] = [text for n, text in enumerate(blocks[pick])
                                if text or n % 2 or self.rng.random() < 0.5]
        self.write(f"src/proj/{module}.py", [text for b in blocks for text in b])

    def add_test(self) -> None:
        module = self.rng.choice(MODULES)
        lines = self.read(f"tests/test_{module}.py")
        word = self.rng.choice(WORDS)
        test = [f"def test_{word}_{self.tick}(runner):",
                f'    result = runner.invoke(cli, ["--{word}", "x"])',
                "    assert result.exit_code == 0", '    assert "x" in result.output', "", ""]
        at = self.rng.choice([n for n, text in enumerate(lines) if text.startswith("def ")]
                             or [len(lines)])
        lines[at:at] = test
        self.write(f"tests/test_{module}.py", lines)

    def work(self, changelog_block: int) -> None:
        """What one branch does: one or two commits of code, tests and a changelog line."""
        for _ in range(self.rng.randint(1, 2)):
            for _ in range(self.rng.randint(1, 2)):
                self.edit_code()
            if self.rng.random() < 0.4:
                self.add_test()
            if self.rng.random() < 0.5:
                self.add_entry(changelog_block)
            if self.rng.random() < 0.08:
                self.tidy_changelog()
            self.commit(f"work at {self.tick}")

    # --- the release train ----------------------------------------------------------------

    def initial(self) -> None:
        self.write("CHANGES.rst", [".. currentmodule:: proj", "", "Version 1.0.1",
                                   "-------------", "", "Unreleased", "", "", "",
                                   "Version 1.0.0", "-------------", "",
                                   "Released 2023-11-14", "", "-   First release.", ""])
        for module in MODULES:
            code = [text for n in range(8) for text in self.function(f"{module}_{n}")]
            self.write(f"src/proj/{module}.py", ["import os", "", "", *code])
            self.write(f"tests/test_{module}.py", ["from proj import cli", "", ""])
        self.commit("initial")
        self.git("branch", "stable")

    def features(self, count: int) -> None:
        """`count` branches cut from one main tip, then merged one after another."""
        self.git("checkout", "-q", "main")
        names = []
        for n in range(count):
            name = f"feature-{self.tick}-{n}"
            self.git("checkout", "-q", "-b", name, "main")
            self.work(0)
            names.append(name)
        for name in names:
            self.merge(name, "main")
            self.git("branch", "-q", "-D", name)

    def fixes(self, count: int) -> None:
        names = []
        for n in range(count):
            name = f"fix-{self.tick}-{n}"
            self.git("checkout", "-q", "-b", name, "stable")
            self.work(0)
            names.append(name)
        for name in names:
            self.merge(name, "stable")
            self.git("branch", "-q", "-D", name)

    def release_cycle(self, minor: int) -> None:
        """Release stable and open its next patch version, merge stable into main, and open
        the next minor version on main: from then on main's changelog has two similar
        "Unreleased" blocks, and stable's fixes go into the second."""
        self.git("checkout", "-q", "stable")
        self.release()
        self.commit("release")
        self.new_version(f"1.{minor}.{self.tick % 9 + 1}")
        self.commit("start the next patch")
        self.merge("stable", "main")
        self.git("checkout", "-q", "main")
        self.new_version(f"1.{minor + 1}.0")
        self.commit("start the next minor")

    def build(self, merges: int) -> None:
        self.initial()
        minor = 0
        while self.merges < merges:
            roll = self.rng.random()
            if roll < 0.5:
                self.features(self.rng.randint(2, 4))
            elif roll < 0.92:
                self.fixes(self.rng.randint(1, 3))
                if self.rng.random() < 0.7:
                    self.merge("stable", "main")
            else:
                self.release_cycle(minor)
                minor += 1


def build(folder: Path, merges: int = 200, seed: int = 11) -> Path:
    """Make the repository in `folder` (which must not exist); at least `merges` merges."""
    Builder(folder, seed).build(merges)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--merges", type=int, default=200)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    build(args.folder, args.merges, args.seed)
    print(f"{args.folder}: history with at least {args.merges} merges")
    return 0


if __name__ == "__main__":
    sys.exit(main())

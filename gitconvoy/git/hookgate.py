"""Before paying for pygit2 and the state: did the refs that moved land anything?

The shims wake Python when a watched ref moved. When the only refs that moved are targets
(a pull on main while a convoy has work out — the common case), a feeder step can only
matter if that move landed in-flight work: a work branch with commits of its own became part
of the target, or a new target commit names an in-flight bead in a `Convoy-Bead:` trailer.
A target moving makes no bead ready (readiness follows the state, which is watched itself).

So this gate asks git once for the commits the targets gained since the last feed and
compares them with `.git/convoy/inflight` (written with the watch list). Anything else that
moved — the state ref or its remote copy, a work branch, an unknown ref — or any doubt (no
record, too many new commits, git failing) means: feed. The gate imports nothing heavier than
subprocess, so saying "nothing landed" costs an interpreter start and one `git log`.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field

WATCH_FILE = "watch"
SEEN_FILE = "hook-seen"
FEED_DUE_FILE = "feed-due"
ERRORS_FILE = "hook-errors.log"
INFLIGHT_FILE = "inflight"
FOR_EACH_REF_FORMAT = "--format=%(objectname) %(refname)"
MAX_NEW_COMMITS = 5000
_TRAILER_RE = re.compile(r"^Convoy-Bead:\s*(\S+)\s*$", re.MULTILINE | re.IGNORECASE)


@dataclass
class InFlight:
    """What `.git/convoy/inflight` records: target refs, and each in-flight bead's branch
    ref and base commit."""

    targets: set[str] = field(default_factory=set)  # branch names
    beads: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (ref, base)

    def render(self) -> str:
        lines = [f"target {t}" for t in sorted(self.targets)]
        lines += [f"bead {b} {ref} {base}" for b, (ref, base) in sorted(self.beads.items())]
        return "".join(f"{line}\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> InFlight:
        found = cls()
        for line in text.splitlines():
            words = line.split()
            if len(words) == 2 and words[0] == "target":
                found.targets.add(words[1])
            elif len(words) == 4 and words[0] == "bead":
                found.beads[words[1]] = (words[2], words[3])
        return found


def tips(listing: str) -> dict[str, str]:
    """`git for-each-ref` lines ("<sha> <ref>") as ref -> sha."""
    out: dict[str, str] = {}
    for line in listing.splitlines():
        sha, _, ref = line.partition(" ")
        if ref:
            out[ref] = sha
    return out


def moved_refs(seen: dict[str, str], now: dict[str, str]) -> set[str]:
    return {ref for ref in seen.keys() | now.keys() if seen.get(ref) != now.get(ref)}


def is_target(ref: str, targets: set[str]) -> bool:
    """refs/heads/<target> or a remote-tracking copy refs/remotes/<remote>/<target>."""
    if ref.startswith("refs/heads/"):
        return ref[len("refs/heads/"):] in targets
    if ref.startswith("refs/remotes/"):
        parts = ref.split("/", 3)
        return len(parts) == 4 and parts[3] in targets
    return False


def landed_any(inflight: InFlight, now: dict[str, str], new_commits: set[str],
               messages: str) -> bool:
    """Pure: do the target's new commits contain an in-flight bead's work or trailer?
    A remote-tracking copy of the work branch counts too (a worker elsewhere pushed it)."""
    for _bead, (ref, base) in inflight.beads.items():
        branch = ref[len("refs/heads/"):]
        copies = [r for r in now if r.startswith("refs/remotes/") and
                  r.split("/", 3)[3:] == [branch]]
        for tip in (now.get(ref), *(now[r] for r in copies)):
            if tip and tip != base and tip in new_commits:
                return True
    named = set(_TRAILER_RE.findall(messages))
    return bool(named & inflight.beads.keys())


def _git(args: list[str], git_dir: str) -> str | None:
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_DIR", "GIT_WORK_TREE")}
    env["LC_ALL"] = "C"
    try:
        proc = subprocess.run(["git", f"--git-dir={git_dir}", *args], capture_output=True,
                              text=True, env=env, stdin=subprocess.DEVNULL)
    except OSError:
        return None
    return proc.stdout if proc.returncode == 0 else None


def _read(path: str) -> str | None:
    """A runtime file's text; None when absent or not UTF-8 (then: feed, which rewrites it)."""
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def feed_needed(convoy_dir: str, git_dir: str) -> tuple[bool, str | None]:
    """(whether to run the feeder, the current watched-refs listing to record if not)."""
    if os.path.exists(os.path.join(convoy_dir, FEED_DUE_FILE)):
        return True, None
    patterns = (_read(os.path.join(convoy_dir, WATCH_FILE)) or "").split()
    seen_text = _read(os.path.join(convoy_dir, SEEN_FILE))
    inflight_text = _read(os.path.join(convoy_dir, INFLIGHT_FILE))
    if not patterns or seen_text is None or inflight_text is None:
        return True, None
    listing = _git(["for-each-ref", FOR_EACH_REF_FORMAT, *patterns], git_dir)
    if listing is None:
        return True, None
    seen, now = tips(seen_text), tips(listing)
    moved = moved_refs(seen, now)
    inflight = InFlight.parse(inflight_text)
    if any(not is_target(ref, inflight.targets) for ref in moved):
        return True, None  # the state, a work branch or something unknown moved
    current = listing.rstrip("\n")
    if not moved or not inflight.beads:
        return False, current
    new = [now[r] for r in moved if r in now]
    old = [seen[r] for r in moved if r in seen]
    log = _git(["log", f"--max-count={MAX_NEW_COMMITS + 1}", "--format=%x00%H%n%B", *new,
                "--not", *old, "--"], git_dir) if new else ""
    if log is None:
        return True, None
    entries = [e for e in log.split("\0") if e.strip()]
    if len(entries) > MAX_NEW_COMMITS:
        return True, None
    commits = {e.split("\n", 1)[0] for e in entries}
    if landed_any(inflight, now, commits, log):
        return True, None
    return False, current


def record_seen(convoy_dir: str, listing: str) -> None:
    path = os.path.join(convoy_dir, SEEN_FILE)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(listing)
    os.replace(tmp, path)

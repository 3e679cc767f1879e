"""The recent history of some state objects: the commits of the state ref that changed their
files, newest first, read in process by walking from the state commit.

Each commit is compared with its first parent through `changed_paths`, which opens only the
subtrees whose ids differ, so a step costs what the commit changed, not the size of the
state. The walk is bounded: a long history is cut at `max_walk` commits.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from dataclasses import dataclass

import pygit2

from gitconvoy.state.layout import object_path
from gitconvoy.state.trees import changed_paths


@dataclass(frozen=True)
class Change:
    commit: str
    when: str  # ISO-8601 with the committer's offset
    author: str
    subject: str
    ids: tuple[str, ...]  # the watched objects this commit changed


def _when(commit: pygit2.Commit) -> str:
    zone = _dt.timezone(_dt.timedelta(minutes=commit.commit_time_offset))
    return _dt.datetime.fromtimestamp(commit.commit_time, zone).isoformat(timespec="minutes")


def history(repo: pygit2.Repository, head: str, beads: Iterable[str],
            convoys: Iterable[str] = (), limit: int = 20, max_walk: int = 5000) -> list[Change]:
    """Up to `limit` commits reachable from `head` that changed one of the files of these
    beads or convoys."""
    watched = {object_path("beads", b): b for b in beads}
    watched.update({object_path("convoys", c): c for c in convoys})
    out: list[Change] = []
    walker = repo.walk(pygit2.Oid(hex=head), pygit2.enums.SortMode.TOPOLOGICAL |
                       pygit2.enums.SortMode.TIME)
    for walked, commit in enumerate(walker):
        if len(out) >= limit or walked >= max_walk:
            break
        parent = commit.parents[0].tree if commit.parents else None
        paths: list[str] = []
        changed_paths(repo, parent, commit.tree, "", paths)
        ids = tuple(sorted({watched[p] for p in paths if p in watched}))
        if not ids:
            continue
        out.append(Change(str(commit.id), _when(commit), commit.author.name,
                          commit.message.split("\n", 1)[0], ids))
    return out

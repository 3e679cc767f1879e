"""Codec figures (issue 12, item 2): the fast YAML path against PyYAML on a generated state.

Usage: python bench/bench_codec.py [--beads 10000] [--repeat 5] [--repo DIR]

Reads every file of a state built by bench/gen_state.py (10,000 beads unless told), then:
1. load time per 1,000 files: `load_yaml` (fast path) and `pyyaml_load` (libyaml's safe
   loader, what every read used before);
2. dump time per 1,000 files: `dump_yaml` (fast path) and `pyyaml_dump` (the libyaml
   dumper with the Python representer);
3. a round trip of every file, bytes → dict → Bead → dict → bytes, both ways, checking the
   fast path gives back the very bytes on the branch and that no file fell back to PyYAML.
Times are CPU time of this process (steady on a busy machine), best of --repeat runs.
Prints figures; never fails on time (a byte difference is an error).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pygit2

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_state import generate  # noqa: E402

from gitconvoy.state.codec import (  # noqa: E402
    NOT_CANONICAL,
    dump_yaml,
    load_yaml,
    parse_canonical,
    pyyaml_dump,
    pyyaml_load,
)
from gitconvoy.state.layout import KINDS, kind_of_path  # noqa: E402


def state_files(repo: pygit2.Repository, tree: pygit2.Tree, prefix: str = "") -> Iterator:
    for entry in tree:
        path = f"{prefix}{entry.name}"
        if entry.type_str == "tree":
            yield from state_files(repo, repo[entry.id], f"{path}/")
        elif path.endswith(".yaml"):
            yield path, bytes(repo[entry.id].data)


def best(run: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.process_time()
        run()
        times.append(time.process_time() - started)
    return min(times)


def round_trip(files: list[tuple[str, bytes]], load: Callable, dump: Callable) -> int:
    """Every file through the model and back; how many came back as other bytes."""
    changed = 0
    for path, raw in files:
        kind = kind_of_path(path)
        data = load(raw, path)
        if kind is not None:
            data = KINDS[kind].cls.from_dict(data, path).to_dict()
        changed += dump(data) != raw
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beads", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--repo", type=Path, help="an existing state to read (else generated)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        repo_dir = args.repo or Path(tmp) / "repo"
        if args.repo is None:
            generate(repo_dir, args.beads)
        repo = pygit2.Repository(str(repo_dir))
        tree = repo.revparse_single("refs/heads/convoy/state").peel(pygit2.Tree)
        files = list(state_files(repo, tree))
    texts = [(path, raw.decode()) for path, raw in files]
    fell_back = sum(parse_canonical(text) is NOT_CANONICAL for _, text in texts)
    parsed = [load_yaml(raw, path) for path, raw in files]
    per_k = 1000 / len(files)
    print(f"{len(files)} state files, {sum(len(r) for _, r in files) / 1e6:.1f} MB; "
          f"{fell_back} not in the canonical layout (read by PyYAML); best of {args.repeat}")

    fast_load = best(lambda: [load_yaml(raw, path) for path, raw in files], args.repeat)
    slow_load = best(lambda: [pyyaml_load(text, path) for path, text in texts], args.repeat)
    fast_dump = best(lambda: [dump_yaml(data) for data in parsed], args.repeat)
    slow_dump = best(lambda: [pyyaml_dump(data).encode() for data in parsed], args.repeat)
    print(f"load per 1k files:  fast {fast_load * per_k * 1000:7.1f} ms   "
          f"PyYAML {slow_load * per_k * 1000:7.1f} ms   ({slow_load / fast_load:.1f}x)")
    print(f"dump per 1k files:  fast {fast_dump * per_k * 1000:7.1f} ms   "
          f"PyYAML {slow_dump * per_k * 1000:7.1f} ms   ({slow_dump / fast_dump:.1f}x)")

    def slow_dump_bytes(data: Any) -> bytes:
        return pyyaml_dump(data).encode()

    def slow_load_bytes(raw: bytes, path: str) -> Any:
        return pyyaml_load(raw.decode(), path)

    started = time.process_time()
    changed = round_trip(files, load_yaml, dump_yaml)
    fast_trip = time.process_time() - started
    started = time.process_time()
    changed_slow = round_trip(files, slow_load_bytes, slow_dump_bytes)
    slow_trip = time.process_time() - started
    print(f"round trip of all {len(files)} files through the model: fast {fast_trip:.2f} s, "
          f"PyYAML {slow_trip:.2f} s; files changed: fast {changed}, PyYAML {changed_slow}")
    return 1 if changed or changed_slow else 0


if __name__ == "__main__":
    sys.exit(main())

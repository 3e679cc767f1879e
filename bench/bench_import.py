"""Import figures: a generated PRD (1,000 tasks in 50 sections) and a beads export (10,000).

Bars (issue 6): PRD import < 3 s for the whole `git convoy import` process; beads export
import < 10 s. Each run is a fresh repository in a temporary folder; the times are wall
clock for the whole process, as a user sees them. Run: python bench/bench_import.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def fresh_repo(base: Path, name: str) -> Path:
    path = base / name
    path.mkdir()
    git("init", "-q", "-b", "main", cwd=path)
    git("-c", "user.name=b", "-c", "user.email=b@x", "commit", "-q", "--allow-empty", "-m", "i",
        cwd=path)
    git("config", "user.name", "bench", cwd=path)
    git("config", "user.email", "bench@example.com", cwd=path)
    subprocess.run(["git", "convoy", "init", "--prefix", "bn"], cwd=path, check=True,
                   capture_output=True)
    return path


def generated_prd(sections: int = 50, per_section: int = 20) -> str:
    """Every fifth section waits for the one before; every task after its predecessor."""
    out = ["---", "priority: 2", "---", "# Generated product", "", "Benchmark PRD.", ""]
    for s in range(sections):
        marker = f" (after: Section {s - 1})" if s % 5 == 4 else ""
        out += [f"## Section {s}{marker}", "", f"Text of section {s}.", ""]
        for t in range(per_section):
            after = f" (after: task-{s}-{t - 1})" if t % 4 else ""
            out.append(f"- Task {s}-{t}{after} {{#task-{s}-{t}}}" if t % 10 == 0
                       else f"- Task {s}-{t}{after}")
        out.append("")
    return "\n".join(out)


def generated_export(count: int = 10_000) -> str:
    """Epics of 20 tasks; each task blocks the next; a sprinkle of closed and pinned beads."""
    lines = []
    stamp = "2026-01-01T00:00:00Z"
    epic = None
    for n in range(count):
        bead_id = f"bx-{n:05d}"
        row = {"id": bead_id, "title": f"Issue {n}", "description": f"Body of issue {n}.",
               "status": "closed" if n % 7 == 0 else ("pinned" if n % 101 == 0 else "open"),
               "priority": n % 5, "issue_type": "epic" if n % 21 == 0 else "task",
               "created_at": stamp, "updated_at": stamp, "labels": [f"l{n % 13}"],
               "dependencies": []}
        if row["status"] == "closed":
            row["closed_at"] = stamp
            row["close_reason"] = "done"
        if row["issue_type"] == "epic":
            epic = bead_id
        else:
            row["dependencies"].append({"issue_id": bead_id, "depends_on_id": epic,
                                        "type": "parent-child", "created_at": stamp})
            if n % 21 > 1:
                row["dependencies"].append({"issue_id": bead_id,
                                            "depends_on_id": f"bx-{n - 1:05d}",
                                            "type": "blocks", "created_at": stamp})
        lines.append(json.dumps(row))
    return "\n".join(lines) + "\n"


def timed(args: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args)} failed: {proc.stderr}")
    return elapsed, proc.stdout


def main() -> None:
    env_base = Path(tempfile.mkdtemp(prefix="bench-import-"))
    os.environ.setdefault("GIT_CONFIG_NOSYSTEM", "1")
    prd_repo = fresh_repo(env_base, "prd")
    (prd_repo / "PRD.md").write_text(generated_prd())
    first, out = timed(["git", "convoy", "import", "PRD.md"], prd_repo)
    again, _ = timed(["git", "convoy", "import", "PRD.md"], prd_repo)
    dry, _ = timed(["git", "convoy", "import", "PRD.md", "--dry-run"], prd_repo)
    print(f"PRD, 1,000 tasks in 50 sections ({out.splitlines()[1]})")
    print(f"  import (whole process):         {first:6.2f} s   bar < 3 s")
    print(f"  re-import, nothing changed:     {again:6.2f} s")
    print(f"  --dry-run with waves:           {dry:6.2f} s")

    beads_repo = fresh_repo(env_base, "beads")
    (beads_repo / "issues.jsonl").write_text(generated_export())
    first, out = timed(["git", "convoy", "import", "--from", "beads", "issues.jsonl"],
                       beads_repo)
    again, _ = timed(["git", "convoy", "import", "--from", "beads", "issues.jsonl"],
                     beads_repo)
    print(f"beads export, 10,000 issues ({out.splitlines()[1].strip()})")
    print(f"  import (whole process):         {first:6.2f} s   bar < 10 s")
    print(f"  re-import, nothing changed:     {again:6.2f} s")
    shutil.rmtree(env_base, ignore_errors=True)


if __name__ == "__main__":
    main()

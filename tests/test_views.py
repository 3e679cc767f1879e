"""Reviewing state in pull requests: `git convoy diff` and `status --format markdown`.

The diff tests run real commands on a real repository, then compare two commits of the state
branch; the markdown test checks the mermaid block line by line against the subset of the
flowchart grammar it uses, and that every bead and edge of the convoy is in it.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from conftest import STATE_REF, convoy, git, make_repo, ok, ref_of
from hypothesis import given, settings
from hypothesis import strategies as st

from gitconvoy.errors import SchemaError
from gitconvoy.render.markdown import MARKER, diff_markdown, md_text, mermaid_label
from gitconvoy.state.model import Bead, Config, Convoy, Dep, MergeRequest, Rig
from gitconvoy.state.statediff import diff_files

SHA = "1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d"


def diff_lines(*args: str) -> list[str]:
    return ok("diff", *args).splitlines()


def convoy_ids() -> list[str]:
    return [c["id"] for c in json.loads(ok("list", "--all", "--json"))]


# --- diff over real commands ------------------------------------------------------------------


def test_diff_of_a_sequence_of_commands_says_each_change(state_repo: Path) -> None:
    ok("rig", "add", "app")
    c0 = ref_of(state_repo)
    ok("bead", "create", "--type", "epic", "Auth", "--id", "auth")
    ok("bead", "create", "Add validation", "--id", "auth.1", "--parent", "auth", "-p", "1",
       "-l", "api")
    ok("bead", "create", "Rotate keys", "--id", "auth.2", "--parent", "auth", "--dep", "auth.1")
    ok("bead", "create", "Write docs", "--id", "doc", "-a", "carol")
    c1 = ref_of(state_repo)
    assert diff_lines(f"{c0}..{c1}") == [
        'auth: created "Auth" (epic, P2)',
        'auth.1: created "Add validation" (task, P1, parent auth)',
        "auth.1: labels + api",
        'auth.2: created "Rotate keys" (task, P2, parent auth)',
        "auth.2: deps + blocks auth.1",
        'doc: created "Write docs" (task, P2, @carol)',
    ]
    ok("bead", "update", "auth.2", "--assignee", "alice", "-l", "auth")
    ok("bead", "update", "auth.1", "--remove-label", "api", "-l", "core", "--assignee", "bob")
    ok("dep", "add", "auth.2", "doc", "--type", "waits-for")
    ok("dep", "remove", "auth.2", "auth.1")
    ok("bead", "update", "auth.2", "--title", "Rotate signing keys", "-p", "0")
    ok("bead", "close", "auth.1", "--reason", "landed in 1a2b3c4")
    ok("bead", "delete", "doc")
    ok("rig", "park", "app")
    ok("rig", "update", "app", "--capacity", "5")
    c2 = ref_of(state_repo)
    assert diff_lines(f"{c1}..{c2}") == [
        "rig app: parked",
        "rig app: capacity 3 → 5",
        "auth.1: open → closed (landed in 1a2b3c4)",
        "auth.1: assignee (none) → bob",
        "auth.1: labels + core − api",
        'auth.2: title "Rotate keys" → "Rotate signing keys"',
        "auth.2: priority P2 → P0",
        "auth.2: assignee (none) → alice",
        "auth.2: labels + auth",
        "auth.2: deps + waits-for doc − blocks auth.1",
        "doc: deleted (tombstone)",
    ]
    # one rev means rev..the state ref; the reverse range says the opposite
    assert diff_lines(c1) == diff_lines(f"{c1}..")
    assert "auth.1: closed → open" in diff_lines(f"{c2}..{c1}")
    # no rev: the state ref's last change
    assert diff_lines() == ["rig app: capacity 3 → 5"]

    ok("rig", "unpark", "app")
    ok("stage", "auth")
    (cid,) = convoy_ids()
    c3 = ref_of(state_repo)
    assert diff_lines(f"{c2}..{c3}") == [
        "rig app: unparked",
        f'{cid}: created convoy "Auth" (staged_ready, 3 beads)',
        f"{cid}: tracks + auth auth.1 auth.2",
    ]
    ok("bead", "update", "auth.2", "--remove-label", "auth")  # nothing blocks it now
    ok("dep", "remove", "auth.2", "doc")
    ok("launch", cid)
    lines = diff_lines("convoy/state~3")
    assert f"{cid}: staged_ready → open" in lines
    assert "auth.2: open → hooked" in lines
    assert "auth.2: branch (none) → convoy/auth.2" in lines
    main_tip = git("rev-parse", "HEAD")
    assert f"auth.2: base_commit (none) → {main_tip[:7]}" in lines


def test_json_and_markdown_carry_the_same_events(state_repo: Path) -> None:
    ok("bead", "create", "Fix", "--id", "x1")
    c0 = ref_of(state_repo)
    ok("bead", "update", "x1", "--title", "Fix <script>alert(1)</script> | pipes")
    ok("bead", "close", "x1", "--reason", "done")
    doc = json.loads(ok("diff", f"{c0}..", "--format", "json"))
    assert doc["from"] == c0 and doc["to"] == ref_of(state_repo)
    assert doc["counts"] == {"bead": 1}
    assert [e["text"] for e in doc["events"]] == diff_lines(f"{c0}..")
    title, status = doc["events"]
    assert (title["kind"], title["id"], title["change"], title["field"]) == \
        ("bead", "x1", "field", "title")
    assert (status["before"], status["after"], status["note"]) == ("open", "closed", "done")

    md = ok("diff", f"{c0}..", "--format", "markdown")
    assert md.startswith(MARKER)
    assert "1 bead changed" in md
    assert "**Beads**" in md
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert "\\| pipes" in md
    assert "- `x1`: open → closed (done)" in md
    empty = ok("diff", f"{ref_of(state_repo)}..", "--format", "markdown")
    assert "No changes to beads, convoys, rigs or merge requests." in empty
    assert ok("diff", "convoy/state..convoy/state").startswith("no state changes in")


def test_a_broken_state_file_is_named_and_the_rest_still_diffs(state_repo: Path) -> None:
    ok("bead", "create", "Good", "--id", "g1")
    ok("bead", "create", "Soon broken", "--id", "b1")
    before = ref_of(state_repo)
    wt = state_repo.parent / "statewt"
    git("worktree", "add", "-q", str(wt), "convoy/state")
    path = git("ls-files", "*/b1.yaml", cwd=wt)
    (wt / path).write_text((wt / path).read_text().replace("priority: 2", "priority: 9"))
    ok_text = (wt / git("ls-files", "*/g1.yaml", cwd=wt)).read_text()
    (wt / git("ls-files", "*/g1.yaml", cwd=wt)).write_text(ok_text.replace("Good", "Better"))
    git("commit", "-q", "-am", "hand edit", cwd=wt)
    assert diff_lines(f"{before}..") == [
        'g1: title "Good" → "Better"',
        f"{path}: unreadable (field 'priority': expected an integer 0–4, got 9)",
    ]
    git("revert", "--no-edit", "HEAD", cwd=wt)
    assert "b1: readable again" in diff_lines("convoy/state~1")


# --- a plan proposed on a branch, reviewed against convoy/state ------------------------------


def test_a_plan_on_a_proposal_branch_diffs_against_convoy_state(state_repo: Path) -> None:
    ok("rig", "add", "app")
    ok("bead", "create", "Existing", "--id", "old")
    git("branch", "proposal", "convoy/state")
    before = ref_of(state_repo)

    def on_proposal(*args: str) -> str:
        return git("-c", "convoy.ref=refs/heads/proposal", "convoy", *args)

    on_proposal("bead", "create", "--type", "epic", "Billing", "--id", "bill")
    on_proposal("bead", "create", "Invoice table", "--id", "bill.1", "--parent", "bill")
    on_proposal("bead", "create", "Send invoices", "--id", "bill.2", "--parent", "bill",
                "--dep", "bill.1")
    on_proposal("bead", "update", "old", "--assignee", "dana")
    on_proposal("stage", "bill")
    assert ref_of(state_repo) == before  # the proposal never touched convoy/state
    cid = json.loads(on_proposal("list", "--json"))[0]["id"]
    expected = [
        f'{cid}: created convoy "Billing" (staged_ready, 3 beads)',
        f"{cid}: tracks + bill bill.1 bill.2",
        'bill: created "Billing" (epic, P2)',
        'bill.1: created "Invoice table" (task, P2, parent bill)',
        'bill.2: created "Send invoices" (task, P2, parent bill)',
        "bill.2: deps + blocks bill.1",
        "old: assignee (none) → dana",
    ]
    assert diff_lines("convoy/state..proposal") == expected
    # a single rev is compared with the configured state ref: here, the proposal itself
    assert on_proposal("diff", "convoy/state").splitlines() == expected
    # convoy/state moves on meanwhile: A...B still shows only what the proposal adds
    ok("bead", "create", "Meanwhile on main state", "--id", "mid")
    assert diff_lines("convoy/state...proposal") == expected
    assert 'mid: created "Meanwhile on main state" (task, P2)' not in \
        diff_lines("convoy/state...proposal")
    assert "mid: file removed" in diff_lines("convoy/state..proposal")


# --- bad revisions ----------------------------------------------------------------------------


@pytest.mark.parametrize("spec, message", [
    ("nope", "error: unknown revision 'nope': expected a commit of the state branch"),
    ("convoy/state..nope", "error: unknown revision 'nope'"),
    ("convoy/state~40", "error: unknown revision 'convoy/state~40'"),
    ("main", "error: revision 'main' ("),
    ("main..convoy/state", "error: revision 'main' ("),
    ("main...convoy/state", "error: revision 'main' ("),
])
def test_bad_revisions_are_one_line_errors_and_write_nothing(
        state_repo: Path, spec: str, message: str) -> None:
    before = ref_of(state_repo)
    res = convoy("diff", spec)
    assert res.code == 1
    assert res.out == ""
    assert res.err.startswith(message) and res.err.count("\n") == 1, res.err
    assert ref_of(state_repo) == before


def test_unrelated_histories_and_a_missing_state_ref(state_repo: Path) -> None:
    other = git("commit-tree", git("rev-parse", "convoy/state^{tree}"), "-m", "orphan")
    git("update-ref", "refs/heads/elsewhere", other)
    res = convoy("diff", "convoy/state...elsewhere")
    assert res.code == 1 and "have no common history" in res.err
    assert ok("diff", "convoy/state..elsewhere").startswith("no state changes")
    git("update-ref", "-d", STATE_REF)
    res = convoy("diff", "elsewhere")
    assert res.code == 1
    assert res.err.startswith("error: no gitconvoy state in this repository")
    assert ref_of(state_repo) is None
    res = convoy("diff", "--format", "yaml")
    assert res.code == 2


# --- status --format markdown -----------------------------------------------------------------

NODE = re.compile(r'^  (n\d+)\["([^"]*)"\]$')
EDGE = re.compile(r"^  (n\d+) (-->|-\.->|-->\|[a-z-]+\|) (n\d+)$")
CLASSDEF = re.compile(r"^  classDef (\w+) ([a-z-]+:[^,\s;]+(,[a-z-]+:[^,;]+)*)$")
CLASS = re.compile(r"^  class (n\d+(,n\d+)*) (\w+)$")


def parse_mermaid(md: str) -> tuple[dict[str, str], set[tuple[str, str, str]], dict[str, str]]:
    """Nodes (id → label), edges (from label id, arrow, to label id), node → class; every line
    must match the grammar subset, every referenced node must be defined, every class too."""
    block = md.split("```mermaid\n", 1)[1].split("\n```", 1)[0].splitlines()
    assert block[0] == "graph TD"
    nodes: dict[str, str] = {}
    edges: list[tuple[str, str, str]] = []
    defined: set[str] = set()
    classes: dict[str, str] = {}
    for line in block[1:]:
        if m := NODE.match(line):
            assert m.group(1) not in nodes
            nodes[m.group(1)] = m.group(2)
        elif m := EDGE.match(line):
            edges.append((m.group(1), m.group(2), m.group(3)))
        elif m := CLASSDEF.match(line):
            defined.add(m.group(1))
        elif m := CLASS.match(line):
            for n in m.group(1).split(","):
                assert n not in classes
                classes[n] = m.group(3)
        else:
            raise AssertionError(f"not valid in our mermaid subset: {line!r}")
    assert set(classes) == set(nodes) and set(classes.values()) <= defined
    ids = {n: label.split(":", 1)[0] for n, label in nodes.items()}
    return ({ids[n]: label for n, label in nodes.items()},
            {(ids[a], arrow, ids[b]) for a, arrow, b in edges},
            {ids[n]: c for n, c in classes.items()})


def test_status_markdown_has_a_table_and_a_mermaid_dag_of_every_bead(state_repo: Path) -> None:
    ok("rig", "add", "app")
    ok("bead", "create", "Outside blocker", "--id", "ext")
    ok("bead", "create", "--type", "epic", 'Auth "v2" <b>', "--id", "auth")
    ok("bead", "create", "Add validation", "--id", "auth.1", "--parent", "auth", "-p", "1")
    ok("bead", "create", "Rotate keys # and | pipes", "--id", "auth.2", "--parent", "auth",
       "--dep", "auth.1", "-a", "alice")
    ok("bead", "create", "Wire it up", "--id", "auth.3", "--parent", "auth",
       "--dep", "waits-for:auth.2", "--dep", "ext")
    ok("bead", "close", "auth.1", "--reason", "landed in 1a2b3c4")
    ok("stage", "auth")
    (cid,) = convoy_ids()
    md = ok("status", cid, "--format", "markdown")
    assert md.startswith(f"### Convoy `{cid}`: Auth \"v2\" &lt;b&gt;")
    assert "**1/3 closed**" in md and "status `staged_ready`" in md and "1 gated" in md
    rows = [line for line in md.splitlines() if line.startswith("| `")]
    assert rows == [
        "| `auth` | Auth \"v2\" &lt;b&gt; | epic | open |  | — |",
        "| `auth.1` | Add validation | task | closed |  | done |",
        "| `auth.2` | Rotate keys \\# and \\| pipes | task | open | alice | 1 |",
        "| `auth.3` | Wire it up | task | open |  | gated |",
    ]
    nodes, edges, classes = parse_mermaid(md)
    assert set(nodes) == {"auth", "auth.1", "auth.2", "auth.3", "ext"}
    assert nodes["auth"] == "auth: Auth #quot;v2#quot; #lt;b#gt;"
    assert nodes["auth.2"] == "auth.2: Rotate keys #35; and | pipes"
    assert nodes["ext"] == "ext: Outside blocker (outside, open)"
    assert edges == {
        ("auth", "-.->", "auth.1"), ("auth", "-.->", "auth.2"), ("auth", "-.->", "auth.3"),
        ("auth.1", "-->", "auth.2"), ("auth.2", "-->|waits-for|", "auth.3"),
        ("ext", "-->", "auth.3"),
    }
    assert classes == {"auth": "st_open", "auth.1": "st_closed", "auth.2": "st_open",
                       "auth.3": "st_open", "ext": "outside"}
    # the other formats are unchanged: --json and --format json give the same document
    assert json.loads(ok("status", cid, "--json")) == \
        json.loads(ok("status", cid, "--format", "json"))
    assert ok("status", cid).startswith(f"{cid}  staged_ready  Auth")


# mermaid's own parser (what GitHub and GitLab run), under node. CI installs it with
#   npm install --prefix .ci/node mermaid jsdom
NODE_PREFIX = Path(__file__).resolve().parent.parent / ".ci" / "node"
MERMAID_CHECK = Path(__file__).resolve().parent / "mermaid_check.mjs"


def mermaid_block(md: str) -> str:
    return md.split("```mermaid\n", 1)[1].split("\n```", 1)[0] + "\n"


def graph_with_every_status_and_edge() -> str:
    """A convoy whose graph uses every class a status view can show (tombstones are left
    out of it), every arrow, and the characters that need care."""
    ok("rig", "add", "app")
    ok("bead", "create", "Outside blocker", "--id", "ext")
    ok("bead", "create", "--type", "epic", 'end "v2" <b> --> x; graph TD', "--id", "end")
    ok("bead", "create", "Rotate # | `x` [y] {z} (w) & %% ;", "--id", "a.1", "--parent", "end")
    ok("bead", "create", "Next", "--id", "a.2", "--parent", "end", "--dep", "waits-for:a.1",
       "--dep", "ext")
    ok("bead", "create", "Merge gate", "--id", "a.3", "--parent", "end",
       "--dep", "merge-blocks:a.2")
    for n, status in enumerate(("hooked", "in_progress", "blocked", "deferred")):
        ok("bead", "create", f"In state {status}", "--id", f"s.{n}", "--parent", "end",
           "--dep", "a.1")
        ok("bead", "update", f"s.{n}", "--status", status)
    ok("bead", "create", "Done", "--id", "s.c", "--parent", "end")
    ok("bead", "close", "s.c", "--reason", "landed")
    ok("stage", "end")
    (cid,) = convoy_ids()
    return mermaid_block(ok("status", cid, "--format", "markdown"))


def run_mermaid_parser(files: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["node", str(MERMAID_CHECK), str(NODE_PREFIX), *map(str, files)],
                          capture_output=True, text=True, timeout=180)


@pytest.mark.skipif(not (NODE_PREFIX / "node_modules" / "mermaid").is_dir(),
                    reason="mermaid is not installed for node: "
                           "npm install --prefix .ci/node mermaid jsdom")
def test_the_real_mermaid_parser_accepts_the_graph(state_repo: Path) -> None:
    graph = graph_with_every_status_and_edge()
    classes = set(re.findall(r"^  classDef (\w+) ", graph, re.MULTILINE))
    assert classes == {"st_open", "st_hooked", "st_in_progress", "st_blocked", "st_deferred",
                       "st_closed", "outside"}
    assert {"-->", "-.->", "-->|waits-for|", "-->|merge-blocks|"} <= set(
        re.findall(r"^  n\d+ (\S+) n\d+$", graph, re.MULTILINE))
    good = state_repo.parent / "convoy.mmd"
    good.write_text(graph)
    # the control: the same graph with one label's quote left raw must be refused
    broken = state_repo.parent / "broken.mmd"
    broken.write_text(graph.replace("#quot;v2#quot;", '"v2"', 1))
    [bad_line] = [n for n, line in enumerate(broken.read_text().splitlines(), 1)
                  if '"v2"' in line]
    proc = run_mermaid_parser([good, broken])
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 and proc.returncode == 1, proc.stdout + proc.stderr[-2000:]
    assert lines[0] == f"ok {good}", lines[0]
    assert lines[1].startswith(f"invalid {broken}: Parse error on line {bad_line}:"), lines[1]


def test_escapers_leave_no_live_syntax() -> None:
    assert md_text("a <b> *c* [d](e) `f` | g") == \
        "a &lt;b&gt; \\*c\\* \\[d\\](e) \\`f\\` \\| g"
    label = mermaid_label('x "y" <z> #1 `w`')
    assert '"' not in label and "<" not in label and ">" not in label and "`" not in label
    assert label == "x #quot;y#quot; #lt;z#gt; #35;1 'w'"


# --- the pure events: kinds the commands above do not reach easily ---------------------------


def test_merge_request_rig_and_config_events() -> None:
    mr = MergeRequest(id="mr-1", bead="a", branch="convoy/a", commit=SHA, target="main")
    merged = MergeRequest(id="mr-1", bead="a", branch="convoy/a", commit=SHA, target="main",
                          status="merged", merged_as="9f8e7d6c5b4a")
    conflict = MergeRequest(id="mr-1", bead="a", branch="convoy/a", commit=SHA,
                            target="main", status="conflict", conflict_bead="c-1",
                            conflict_files=["x.py"], retries=1)
    old_cfg = Config(prefix="t", rigs={"app": Rig("app")})
    new_cfg = Config(prefix="u", rigs={"web": Rig("web", target="dev", parked=True)},
                     default_rig="web")
    bead = Bead(id="a", title="A", description="one")
    changes = [
        ("mrs/mr-1.yaml", None, mr),
        ("mrs/mr-2.yaml", mr, merged),
        ("mrs/mr-3.yaml", mr, conflict),
        ("convoy.yaml", old_cfg, new_cfg),
        ("beads/0/0/0/a.yaml", bead, Bead(id="a", title="A", description="two",
                                          dispatch={"last_error": "exit 2"})),
        ("beads/0/0/0/z.yaml", bead, None),
        ("convoys/c.yaml", Convoy(id="c", title="C", status="open", tracks=["a"]),
         Convoy(id="c", title="C", status="closed", tracks=["a", "b"], closed_at="now",
                close_reason="every tracked bead is closed")),
        ("beads/1/1/1/q.yaml", None, SchemaError("beads/1/1/1/q.yaml", None, "not valid YAML")),
        (".gitattributes", None, None),
    ]
    assert [e.text() for e in diff_files(None, SHA, changes).events] == [
        "convoy.yaml: prefix t → u",
        "convoy.yaml: default_rig (none) → web",
        "rig app: file removed",
        "rig web: created (target dev, capacity 3, parked)",
        "c: open → closed (every tracked bead is closed)",
        "c: tracks + b",
        "a: description changed",
        "a: dispatch failed: exit 2",
        "a: file removed",
        "mr-1: created for a: convoy/a @ 1a2b3c4 → main (queued)",
        "mr-1: queued → merged (merged as 9f8e7d6)",
        "mr-1: queued → conflict (conflict bead c-1; x.py)",
        "mr-1: retries 0 → 1",
        "beads/1/1/1/q.yaml: unreadable (not valid YAML)",
    ]


def test_a_created_bead_with_every_extra() -> None:
    bead = Bead(id="b", title="B", type="bug", status="hooked", priority=0, parent="e",
                assignee="al", rig="app", labels=["x", "y"],
                deps=[Dep("c"), Dep("d", "related")])
    assert [e.text() for e in diff_files(None, SHA, [("beads/b.yaml", None, bead)]).events] == [
        'b: created "B" (bug, P0, hooked, parent e, @al, rig app)',
        "b: labels + x y",
        "b: deps + blocks c related d",
    ]


# --- scale: few changes in a big state ---------------------------------------------------------


@pytest.mark.slow
def test_diff_of_a_few_changes_in_ten_thousand_beads(state_repo: Path) -> None:
    batch = state_repo.parent / "batch.yaml"
    batch.write_text("".join(f"- {{id: big-{i}, title: Bead {i}}}\n" for i in range(10_000)))
    ok("bead", "create", "--batch", str(batch))
    before = ref_of(state_repo)
    edit = state_repo.parent / "edit.yaml"
    edit.write_text("".join(f"- {{id: new-{i}, title: New {i}, deps: [big-{i}]}}\n"
                            for i in range(50)))
    ok("bead", "create", "--batch", str(edit))
    for i in range(0, 50, 10):
        ok("bead", "update", f"big-{i}", "--assignee", "zed")
    started = time.perf_counter()
    lines = diff_lines(f"{before}..")
    took = time.perf_counter() - started
    assert len([x for x in lines if ": created " in x]) == 50
    assert len([x for x in lines if ": deps + blocks big-" in x]) == 50
    assert [x for x in lines if "zed" in x] == \
        [f"big-{i}: assignee (none) → zed" for i in sorted(range(0, 50, 10), key=str)]
    assert took < 5, f"diff took {took:.2f} s"  # generous: the figure is in docs/views.md


# --- the shipped CI example -------------------------------------------------------------------


def test_the_ci_example_describes_a_proposal_pushed_for_review(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    """Run the example workflow's description step (everything but the GitHub API call) in a
    clone that checked out a proposal branch, as the Actions runner does."""
    import yaml

    workflow = yaml.safe_load(
        (Path(__file__).parent.parent / "examples/ci/convoy-pr-comment.yml").read_text())
    assert workflow[True] == {"pull_request": {"branches": ["convoy/state"]}}  # YAML 1.1 'on'
    steps = {s.get("name"): s for s in workflow["jobs"]["describe"]["steps"]}
    script = steps["Describe the change"]["run"]
    assert "git convoy diff origin/convoy/state..HEAD --format markdown" in script

    author = make_repo(tmp_path / "author")
    monkeypatch.chdir(author)
    ok("init", "--prefix", "t")
    ok("rig", "add", "app")
    ok("bead", "create", "Existing", "--id", "old")
    remote = tmp_path / "remote.git"
    git("clone", "-q", "--bare", str(author), str(remote))
    git("remote", "add", "origin", str(remote))
    git("branch", "plan", "convoy/state")
    for args in (("bead", "create", "--type", "epic", "Billing", "--id", "bill"),
                 ("bead", "create", "Invoice table", "--id", "bill.1", "--parent", "bill"),
                 ("stage", "bill")):
        git("-c", "convoy.ref=refs/heads/plan", "convoy", *args)
    git("push", "-q", "origin", "plan")

    runner = tmp_path / "runner"
    git("clone", "-q", str(remote), str(runner))
    git("checkout", "-q", "--detach", "origin/plan", cwd=runner)
    proc = subprocess.run(["bash", "-c", script], cwd=runner, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    comment = (runner / "convoy-comment.md").read_text()
    assert comment.startswith(MARKER)
    assert '- `bill.1`: created "Invoice table" (task, P2, parent bill)' in comment
    assert "### Convoy `convoy-" in comment and "```mermaid\ngraph TD\n" in comment
    assert '["bill.1: Invoice table"]' in comment


def test_a_long_markdown_diff_folds_and_stays_short() -> None:
    beads = [(f"beads/0/0/0/b{i:04d}.yaml", None, Bead(id=f"b{i:04d}", title=f"T{i}"))
             for i in range(1200)]
    md = diff_markdown(diff_files(None, SHA, beads), "a..b")
    assert "<details><summary>Beads (1200 changes)</summary>" in md
    assert md.count("\n- `b") == 500
    assert "- … 700 more: run `git convoy diff a..b` to see them all" in md
    assert len(md) < 65_536
    small = diff_markdown(diff_files(None, SHA, beads[:3]), "a..b")
    assert "<details>" not in small and "**Beads**" in small


_IDS = ["a", "b", "c"]
_bead_strategy = st.builds(
    Bead, id=st.just("x"), title=st.sampled_from(["T", "U"]),
    type=st.sampled_from(["task", "epic"]),
    status=st.sampled_from(["open", "hooked", "tombstone"]),
    priority=st.integers(0, 4), assignee=st.sampled_from([None, "al", "bo"]),
    labels=st.lists(st.sampled_from(["p", "q", "r"]), unique=True).map(sorted),
    deps=st.lists(st.builds(Dep, on=st.sampled_from(_IDS),
                            type=st.sampled_from(["blocks", "related"])),
                  unique=True).map(sorted),
    updated_at=st.sampled_from([None, "2026-01-01T00:00:00Z"]),
)


@settings(max_examples=200, deadline=None)
@given(_bead_strategy, _bead_strategy)
def test_every_reported_field_change_has_an_event_and_nothing_else_does(
        old: Bead, new: Bead) -> None:
    """Property: a change to any field a reviewer sees gives exactly one event for it; a change
    of bookkeeping only (updated_at) gives none."""
    events = diff_files(SHA, SHA, [("beads/0/0/0/x.yaml", old, new)]).events
    seen = {e.field if e.change != "deleted" else "status" for e in events}
    expected = {name for name in ("title", "type", "status", "priority", "assignee",
                                  "labels", "deps") if getattr(old, name) != getattr(new, name)}
    assert seen == expected
    assert len(events) == len(expected)
    for e in events:
        if e.change == "set":
            assert e.added or e.removed


def test_review_events_name_the_epic_the_decision_and_the_findings() -> None:
    from gitconvoy.state.model import Review

    pending = Review(id="rv-1", epic="e", branch="integration/e", base="main", tip=SHA)
    rejected = Review(id="rv-1", epic="e", branch="integration/e", base="main", tip=SHA,
                      status="rejected", reason="tests missing", decided_by="al",
                      fix_bead="e.9", findings=["no tests for x.py", "conflict marker in y"],
                      report="long\ntext")
    changes = [("reviews/rv-1.yaml", None, pending), ("reviews/rv-1.yaml", pending, rejected)]
    assert [e.text() for e in diff_files(None, SHA, changes).events] == [
        "rv-1: created review of e: integration/e @ 1a2b3c4 (pending)",
        "rv-1: pending → rejected (tests missing; by al; fix bead e.9)",
        "rv-1: findings + conflict marker in y; no tests for x.py",
        "rv-1: report set",
    ]


def test_a_convoy_too_big_for_mermaid_gets_a_note_instead_of_a_broken_graph(
        state_repo: Path) -> None:
    ok("rig", "add", "app", "--capacity", "1000")
    batch = state_repo.parent / "batch.yaml"
    items = ["- {id: big, title: Big, type: epic}"]
    items += [f"- {{id: big.{i}, title: Part {i}, parent: big"
              + (f", deps: [big.{i - 1}]}}" if i else "}") for i in range(300)]
    batch.write_text("\n".join(items) + "\n")
    ok("bead", "create", "--batch", str(batch))
    ok("stage", "big")
    md = ok("status", convoy_ids()[0], "--format", "markdown")
    assert "```mermaid" not in md
    assert "_Graph left out: 301 beads and 599 edges are more than mermaid draws" in md
    assert md.count("\n| `big.") == 300

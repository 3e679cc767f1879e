"""Output is inert: what a state writer puts into a field cannot act on the reader's terminal.

Titles, assignees, labels, convoy titles, rig names, branch names, reasons, findings and
reports come from the shared state branch. Text and markdown output show every control
character in them as a visible escape (`\\x1b`, `\\r`, `\\n`, `\\x9b`, …), so no field can set
the window title (OSC), clear the screen (CSI), move the cursor back (CR) or forge a line of
its own (LF); `--json` carries the exact strings.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import STATE_REF, convoy, git, git_convoy, ok
from test_bad_input import plant

import gitconvoy
from gitconvoy import hookrun
from gitconvoy.render.markdown import md_code, md_text, mermaid_label
from gitconvoy.render.shapes import json_text
from gitconvoy.render.text import inert
from gitconvoy.state.layout import object_path

# OSC (window title; on some terminals the clipboard), CSI (clear screen), a carriage
# return and a newline that would forge a line, TAB, a one-character C1 CSI, DEL, BEL, a
# bidi override and a line separator.
EVIL = "\x1b]0;pwned\x07\x1b[2J\r\nFORGED LINE\tx\x9b31m\x7f\x85\u202eevil\u2028end"
# Anything a terminal acts on, except the newline that ends each line.
RAW = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
COMMIT = "2" * 40
EPIC, TASK, OTHER, BLOCKED = "t-epic", "t-task", "t-other", "t-blocked"
CONVOY = "convoy-evil"
RIG = f"rig{EVIL}"
COMMANDS = Path(gitconvoy.__file__).parent / "commands"


def evil(field: str) -> str:
    return f"{field}:{EVIL}"


def dump(data: dict) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def hostile_state(repo: Path) -> str:
    """Every field the schema lets a writer fill with text, filled with control characters
    (branch fields are refused at read unless git's rules hold: tests/test_rough_edges.py);
    returns the commit before it, for `diff`."""
    before = git("rev-parse", STATE_REF, cwd=repo)
    plant(repo, "convoy.yaml", dump({
        "schema": 1, "prefix": "t", "default_rig": RIG,
        "rigs": {RIG: {"target": "hostile/rig-target", "capacity": 2}},
    }))
    beads = {
        EPIC: {"title": evil("epic"), "type": "epic"},
        TASK: {"title": evil("title"), "assignee": evil("assignee"),
               "labels": [evil("label")], "parent": EPIC, "description": evil("desc"),
               "acceptance": evil("acceptance"), "rig": RIG, "branch": "hostile/branch",
               "target": "hostile/target", "created_by": evil("creator"),
               "dispatch": {"last_error": evil("last-error")},
               "deps": [{"on": f"t-dep{EVIL}", "type": "related"}]},
        OTHER: {"title": evil("closed"), "status": "closed", "closed_at": "2024-01-01T00:00:00Z",
                "close_reason": evil("reason"), "parent": EPIC},
        BLOCKED: {"title": evil("blocked"), "deps": [{"on": TASK, "type": "blocks"}],
                  "parent": EPIC, "assignee": evil("assignee2")},
    }
    for bead_id, fields in beads.items():
        plant(repo, object_path("beads", bead_id), dump({"id": bead_id, **fields}))
    plant(repo, f"convoys/{CONVOY}.yaml", dump({
        "id": CONVOY, "title": evil("convoy"), "status": "open",
        "tracks": [TASK, BLOCKED, OTHER], "warnings": [evil("warning")],
    }))
    plant(repo, "mrs/mr-evil.yaml", dump({
        "id": "mr-evil", "bead": TASK, "branch": "hostile/mr-branch", "commit": COMMIT,
        "target": "hostile/mr-target", "status": "rejected", "reason": evil("mr-reason"),
        "worker": evil("worker"),
    }))
    plant(repo, "reviews/rv-evil.yaml", dump({
        "id": "rv-evil", "epic": EPIC, "branch": "hostile/rv-branch", "base": "hostile/base",
        "tip": COMMIT, "status": "rejected", "findings": [evil("finding")],
        "reason": evil("rv-reason"), "note": evil("note"),
        "report": f"# Report\n{evil('report')}\n",
    }))
    plant(repo, f"beads/{EVIL.replace(chr(10), '').replace(chr(0x2028), '')}.yaml",
          "id: x\ntitle: misplaced\n")  # a broken file whose very name is hostile
    return before


READS = [
    ["bead", "list"], ["bead", "list", "--all"], ["bead", "show", EPIC, TASK, OTHER, BLOCKED],
    ["ready"], ["blocked"], ["status", CONVOY], ["status", CONVOY, "--format", "markdown"],
    ["list"], ["list", "--all"], ["refinery", "status"], ["doctor"],
    ["review", "show", EPIC], ["review", "show", EPIC, "--report"], ["dep", "list", TASK],
    ["dep", "list", BLOCKED], ["dep", "cycles"], ["rig", "list"], ["stage", EPIC],
    ["feed"],
]


def assert_inert(args: list[str], out: str, err: str) -> None:
    for stream, text in (("stdout", out), ("stderr", err)):
        found = RAW.search(text)
        assert found is None, (f"git convoy {' '.join(args)}: raw {found.group()!r} on "
                               f"{stream}:\n{text}")
    assert "internal error" not in err and "Traceback" not in err, err


@pytest.fixture
def hostile(state_repo: Path) -> str:
    return hostile_state(state_repo)


@pytest.mark.parametrize("args", READS, ids=lambda a: " ".join(a)[:40])
def test_every_read_prints_state_fields_inert(hostile: str, args: list[str]) -> None:
    res = convoy(*args)
    assert_inert(args, res.out, res.err)
    assert res.code in (0, 1), res.err  # doctor fails the state check: a file is broken


def test_the_escapes_are_visible_and_no_line_is_forged(hostile: str) -> None:
    out = ok("bead", "show", TASK)
    shown = r"\x1b]0;pwned\x07\x1b[2J\r\nFORGED LINE\tx\x9b31m\x7f\x85\u202eevil\u2028end"
    assert f"title:{shown}" in out
    assert not any(line.startswith("FORGED") for line in out.splitlines())
    assert "    desc:\\x1b]0;pwned" in out  # a description is an indented block
    listing = ok("bead", "list")
    assert len(listing.splitlines()) == 4  # four beads, one line each


def test_diff_in_every_format(hostile: str) -> None:
    for fmt in ("text", "markdown"):
        res = convoy("diff", f"{hostile}..", "--format", fmt)
        assert res.code == 0, res.err
        assert_inert(["diff", fmt], res.out, res.err)
        assert "pwned" in res.out
    data = json.loads(ok("diff", f"{hostile}..", "--format", "json"))
    assert any(EVIL in str(value) for e in data["events"] for value in e.values())


JSON_READS = {
    ("bead", "show", TASK, "--json"): lambda d: (d["title"], d["assignee"], d["labels"][0],
                                                 d["description"]),
    ("bead", "list", "--json"): lambda d: tuple(b["title"] for b in d if b["id"] == TASK),
    ("status", CONVOY, "--json"): lambda d: (d["title"], d["warnings"][0]),
    ("list", "--json"): lambda d: (d[0]["title"],),
    ("review", "show", EPIC, "--json"): lambda d: (d["reason"], d["findings"][0], d["note"]),
    ("refinery", "status", "--json"): lambda d: (d["queue"][0]["reason"],),
    ("rig", "list", "--json"): lambda d: (d[0]["name"][3:],),
    ("dep", "list", TASK, "--json"): lambda d: (d["depends_on"][0]["on"][5:],),
}


@pytest.mark.parametrize("args", list(JSON_READS), ids=lambda a: " ".join(a)[:40])
def test_json_carries_the_exact_strings(hostile: str, args: tuple[str, ...]) -> None:
    res = convoy(*args)
    assert res.code == 0, res.err
    assert_inert(list(args), res.out, res.err)  # \u escapes only: nothing raw on the terminal
    values = JSON_READS[args](json.loads(res.out))
    assert values and all(isinstance(v, str) and v.endswith(EVIL) for v in values), values


def test_through_the_installed_entry_point(hostile: str, state_repo: Path) -> None:
    for args in (["bead", "list"], ["status", CONVOY], ["review", "show", EPIC, "--report"]):
        proc = git_convoy(*args, cwd=state_repo)
        assert_inert(args, proc.stdout, proc.stderr)
        assert "pwned" in proc.stdout


def test_an_error_naming_a_hostile_value_is_one_inert_line(state_repo: Path) -> None:
    res = convoy("bead", "show", f"t-{EVIL}")
    assert res.code == 1
    assert_inert(["bead", "show"], res.out, res.err)
    assert len(res.err.splitlines()) == 1 and res.err.startswith("error: ")


def test_hook_output_is_inert(monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(hookrun, "run_hook", lambda name, args: [evil("fed")])
    assert hookrun.main_hook("post-merge", []) == 0
    captured = capsys.readouterr()
    assert_inert(["hook"], captured.out, captured.err)
    assert captured.err.count("\n") == 1


@pytest.mark.parametrize("char", [chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]]
                         + ["\u2028", "\u2029", "\u202a", "\u202e", "\u2066", "\u2069"],
                         ids=lambda c: f"U+{ord(c):04X}")
def test_each_control_character_has_a_visible_escape(char: str) -> None:
    shown = inert(f"a{char}b")
    assert RAW.search(shown) is None and "\n" not in shown
    assert shown.startswith("a\\") and shown.endswith("b")
    assert json.loads(json_text({"v": char})) == {"v": char}
    assert RAW.search(json_text({"v": char})) is None
    for escape in (md_text, md_code, mermaid_label):
        assert RAW.search(escape(char)) is None and "\n" not in escape(char)


def test_printable_text_is_kept_as_it_is() -> None:
    text = "Pay the invoice: café, 日本語, emoji 👩‍💻, Ω, a\\back slash and \u00a0nbsp"
    assert inert(text) == text
    assert json.loads(json_text(text)) == text and "日本語" in json_text(text)


def test_a_backtick_in_an_id_cannot_close_its_code_span() -> None:
    assert md_code("convoy-1") == "`convoy-1`"
    assert md_code("a`b") == "`` a`b ``"
    assert md_code("x``<img src=y>") == "``` x``<img src=y> ```"


def test_commands_print_only_through_the_inert_edge() -> None:
    """The house rule that keeps this true for commands not yet written: a command prints a
    line for people with `say` (commands/io.py) and data with `print_json`, never directly."""
    direct = re.compile(r"click\.(echo|secho)\(|\bprint\(|sys\.std(out|err)\.write\(")
    offenders = [
        f"{path.name}:{n}" for path in sorted(COMMANDS.glob("*.py")) if path.name != "io.py"
        for n, line in enumerate(path.read_text().splitlines(), 1) if direct.search(line)
    ]
    assert offenders == []

"""The warm read: `ready`, `blocked` and `bead list` answered from the answer stored for the
state commit (gitconvoy.state.answers), without pygit2, YAML or click.

The story: a full read stores its answer; the next read of the same commit prints the same
bytes without loading pygit2, YAML or click; anything that moves the state, the ref's name
or the files makes it read in full again; a damaged, cut-off or foreign answer is never
served. Equality of the two paths is checked on generated states too.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
from pathlib import Path

import click
import pytest
from conftest import STATE_REF, convoy, git, ok
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_bad_input import plant

from gitconvoy.commands import beads as bead_commands
from gitconvoy.commands import coldread, quick
from gitconvoy.state import answers, model, reffiles
from gitconvoy.state.layout import object_path
from gitconvoy.state.model import Bead, Dep
from gitconvoy.state.store import Store

HEAVY = ("pygit2", "yaml", "click")
READS = [
    ("ready",), ("ready", "--json"), ("ready", "-n", "1"), ("ready", "--limit=2", "--json"),
    ("ready", "-n0"), ("blocked",), ("blocked", "--json"), ("bead", "list"),
    ("bead", "list", "--all", "--json"), ("bead", "list", "-s", "open", "-t", "bug"),
    ("bead", "list", "--label", "ui", "--assignee", "alice"), ("bead", "list", "--parent", "x"),
]


@pytest.fixture(autouse=True)
def only_known_git_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The warm path steps aside for any GIT_* variable it does not know; CI may set some."""
    for name in list(os.environ):
        if name.startswith("GIT_") and name not in reffiles.HARMLESS_GIT_ENV:
            monkeypatch.delenv(name)


def a_plan(repo: Path) -> dict[str, str]:
    """Something of everything the three reads show: an epic held back by a blocker, a
    manual block, a closed dep, labels, an assignee, a title a terminal would act on."""
    epic = ok("bead", "create", "Checkout", "-t", "epic")
    gate = ok("bead", "create", "Gate", "-p", "0")
    ok("dep", "add", epic, gate)
    child = ok("bead", "create", "Pay\x1b]0;pwned\x07 the bill", "--parent", epic,
               "-l", "ui", "-a", "alice")
    done = ok("bead", "create", "Done already", "-t", "bug")
    ok("bead", "close", done)
    free = ok("bead", "create", "Free to go", "--dep", done, "-t", "bug", "-l", "ui")
    held = ok("bead", "create", "Held by hand")
    ok("bead", "update", held, "--status", "blocked")
    return {"epic": epic, "gate": gate, "child": child, "free": free, "held": held}


def run(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Through the entry point; a cold read's detached cache writer is waited for, so the
    next step sees what it leaves."""
    proc = subprocess.run(["git", "convoy", *args], cwd=repo, capture_output=True,
                          env={**os.environ, **(env or {})})
    place = reffiles.find_repository(str(repo))
    if place is not None:
        coldread.wait_for_writer(place.common_dir)
    return proc


def warm_imports(repo: Path, *args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run through the installed entry point with -X importtime; the modules it loaded."""
    proc = run(repo, *args, env={"PYTHONPROFILEIMPORTTIME": "1"})
    lines = proc.stderr.decode().splitlines()
    modules = [line.rsplit("|", 1)[1].strip() for line in lines
               if line.startswith("import time:")]
    stderr = "".join(f"{line}\n" for line in lines if not line.startswith("import time:"))
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout,
                                       stderr.encode()), modules


def heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in HEAVY]


def cache_dir(repo: Path) -> Path:
    return repo / ".git" / "convoy" / "cache"


def same(a: subprocess.CompletedProcess, b: subprocess.CompletedProcess) -> bool:
    return (a.returncode, a.stdout, a.stderr) == (b.returncode, b.stdout, b.stderr)


# --- the warm path through the entry point ----------------------------------------------------


@pytest.mark.parametrize("args", READS, ids=" ".join)
def test_a_warm_read_prints_the_same_bytes_without_pygit2_yaml_or_click(
        state_repo: Path, args: tuple[str, ...]) -> None:
    a_plan(state_repo)
    full, loaded = warm_imports(state_repo, *args)  # no answer yet: the full path stores it
    assert "pygit2" in loaded and full.returncode == 0
    warm, loaded = warm_imports(state_repo, *args)
    assert heavy(loaded) == []
    assert same(warm, full)


def test_what_the_plan_reads_like(state_repo: Path) -> None:
    ids = a_plan(state_repo)
    run(state_repo, "ready")
    warm = run(state_repo, "ready").stdout.decode()
    assert [line.split()[0] for line in warm.splitlines()] == [ids["gate"], ids["free"]]
    assert "\\x1b]0;pwned\\x07" in run(state_repo, "blocked").stdout.decode()
    assert "status is blocked (set by hand)" in run(state_repo, "blocked").stdout.decode()


def test_nothing_ready_is_said_on_stderr_warm_too(state_repo: Path) -> None:
    full = run(state_repo, "ready")
    warm, loaded = warm_imports(state_repo, "ready")
    assert heavy(loaded) == [] and same(warm, full)
    assert warm.stderr == b"nothing is ready\n" and warm.stdout == b""


def test_broken_files_are_warned_about_on_the_warm_path_too(state_repo: Path) -> None:
    ok("bead", "create", "Fine")
    plant(state_repo, object_path("beads", "t-bad"), "id: t-bad\ntitle: x\npriority: 9\n")
    full = run(state_repo, "ready")
    warm, loaded = warm_imports(state_repo, "ready")
    assert heavy(loaded) == [] and same(warm, full)
    assert warm.stderr.startswith(b"warning: skipped beads/")


def test_a_bead_json_cannot_carry_gets_no_answer_and_reads_stay_right(state_repo: Path) -> None:
    """A date or an integer key in a dispatch would come back changed from JSON: that
    state is read in full every time, never served changed."""
    plant(state_repo, object_path("beads", "t-odd"), "id: t-odd\ntitle: odd dispatch\n"
          "dispatch:\n  when: 2024-01-02\n  7: seven\n")
    full = run(state_repo, "ready")
    assert full.returncode == 0 and b"t-odd" in full.stdout
    assert not (cache_dir(state_repo) / "ready.answer").exists()
    again, loaded = warm_imports(state_repo, "ready")
    assert "pygit2" in loaded and same(again, full)


# --- freshness: what makes a read go the full way again --------------------------------------


def test_a_write_moves_the_commit_and_the_next_read_shows_it(state_repo: Path) -> None:
    a_plan(state_repo)
    run(state_repo, "ready")
    new = run(state_repo, "bead", "create", "Brand new", "-p", "0").stdout.decode().strip()
    got, loaded = warm_imports(state_repo, "ready")
    assert "pygit2" in loaded  # another commit: read in full (and stored)
    assert new in got.stdout.decode()
    again, loaded = warm_imports(state_repo, "ready")
    assert heavy(loaded) == [] and same(again, got)


def test_a_ref_moved_by_plain_git_is_followed(state_repo: Path) -> None:
    a_plan(state_repo)
    first = run(state_repo, "ready")
    before = git("rev-parse", STATE_REF, cwd=state_repo)
    ok("bead", "create", "Later", "-p", "0")
    run(state_repo, "ready")
    git("update-ref", STATE_REF, before, cwd=state_repo)  # back to the first commit
    back, loaded = warm_imports(state_repo, "ready")
    assert "pygit2" in loaded and same(back, first)  # the stored answer was the later one
    again, loaded = warm_imports(state_repo, "ready")
    assert heavy(loaded) == [] and same(again, first)


def test_packed_refs_are_read(state_repo: Path) -> None:
    a_plan(state_repo)
    full = run(state_repo, "ready")
    git("pack-refs", "--all", cwd=state_repo)
    assert not (state_repo / ".git" / STATE_REF).exists()
    warm, loaded = warm_imports(state_repo, "ready")
    assert heavy(loaded) == [] and same(warm, full)


@pytest.mark.parametrize("where", ["local", "global", "included"])
def test_a_changed_convoy_ref_is_never_served_from_the_old_name(
        state_repo: Path, where: str) -> None:
    a_plan(state_repo)
    run(state_repo, "ready")
    assert heavy(warm_imports(state_repo, "ready")[1]) == []
    if where == "local":
        git("config", "convoy.ref", "elsewhere", cwd=state_repo)
    elif where == "global":
        home = Path(os.environ["HOME"])
        with open(home / ".gitconfig", "a") as fh:
            fh.write("[convoy]\n\tref = elsewhere\n")
    else:
        extra = state_repo.parent / "extra.cfg"
        extra.write_text("")
        git("config", "include.path", str(extra), cwd=state_repo)
        run(state_repo, "ready")  # remembered with the (empty) included file
        assert heavy(warm_imports(state_repo, "ready")[1]) == []
        extra.write_text("[convoy]\n\tref = elsewhere\n")
    got = run(state_repo, "ready")
    assert got.returncode == 1
    assert b"refs/heads/elsewhere does not exist" in got.stderr


def test_git_c_and_git_dir_take_the_full_path(state_repo: Path) -> None:
    a_plan(state_repo)
    full = run(state_repo, "ready")
    for env in ({"GIT_CONFIG_PARAMETERS": "'convoy.ref'='refs/heads/convoy/state'"},
                {"GIT_DIR": str(state_repo / ".git")}):
        proc = run(state_repo, "ready", env={**env, "PYTHONPROFILEIMPORTTIME": "1"})
        assert b"pygit2" in proc.stderr
        assert proc.stdout == full.stdout
    got = subprocess.run(["git", "-c", "convoy.ref=nothing", "convoy", "ready"], cwd=state_repo,
                         capture_output=True)
    assert got.returncode == 1 and b"refs/heads/nothing does not exist" in got.stderr


def test_a_linked_worktree_reads_warm_and_the_same(state_repo: Path) -> None:
    a_plan(state_repo)
    other = state_repo.parent / "linked"
    git("worktree", "add", "-q", str(other), "-b", "side", cwd=state_repo)
    sub = other / "deep" / "er"
    sub.mkdir(parents=True)
    main_full = run(state_repo, "ready")
    linked_full = run(sub, "ready")
    warm, loaded = warm_imports(sub, "ready")
    assert heavy(loaded) == [] and same(warm, linked_full) and same(warm, main_full)


# --- untrusted answers ------------------------------------------------------------------------


def test_deleting_the_cache_is_safe(state_repo: Path) -> None:
    a_plan(state_repo)
    full = run(state_repo, "blocked")
    shutil.rmtree(cache_dir(state_repo))
    again, loaded = warm_imports(state_repo, "blocked")
    assert "pygit2" in loaded and same(again, full)


def test_every_damaged_answer_reads_in_full_and_right(state_repo: Path) -> None:
    """Flipped bytes, cut-off files, junk, and the answer of another command or commit:
    never served, the output is the full read's."""
    a_plan(state_repo)
    want = {args: run(state_repo, *args) for args in (("ready",), ("ready", "--json"))}
    path = cache_dir(state_repo) / "ready.answer"
    good = path.read_bytes()
    rng = random.Random(1206)
    damaged = [good[:n] for n in (0, 10, len(good) // 2, len(good) - 1)]
    for _ in range(12):
        bad = bytearray(good)
        bad[rng.randrange(len(bad))] ^= rng.randrange(1, 256)
        damaged.append(bytes(bad))
    damaged += [b"\x80" * 64, os.urandom(2048), (cache_dir(state_repo) / "blocked.answer")
                .read_bytes() if (cache_dir(state_repo) / "blocked.answer").exists() else b""]
    for n, data in enumerate(damaged):
        for args, full in want.items():
            path.write_bytes(data)
            got, loaded = warm_imports(state_repo, *args)
            assert "pygit2" in loaded, f"case {n}: a damaged answer was served"
            assert same(got, full), f"case {n}"


def test_an_answer_of_another_commit_is_not_served(state_repo: Path) -> None:
    a_plan(state_repo)
    run(state_repo, "ready")
    old = (cache_dir(state_repo) / "ready.answer").read_bytes()
    ok("bead", "create", "Newer", "-p", "0")
    full = run(state_repo, "ready")
    (cache_dir(state_repo) / "ready.answer").write_bytes(old)
    got, loaded = warm_imports(state_repo, "ready")
    assert "pygit2" in loaded and same(got, full)


def test_a_forged_answer_with_a_right_digest_is_still_checked(state_repo: Path) -> None:
    """Rows that are not beads (recomputed digest) make --json read in full, never crash."""
    a_plan(state_repo)
    full = run(state_repo, "ready", "--json")
    path = cache_dir(state_repo) / "ready.answer"
    head, _, body = path.read_bytes().partition(b"\n")
    rows_at = body.index(b"\n[")
    forged_body = body[:rows_at + 1] + body[rows_at + 1:].replace(b'"open"', b'"opened"', 1)
    path.write_bytes(answers.MAGIC + hashlib.sha256(forged_body).hexdigest().encode()
                     + b"\n" + forged_body)
    got, loaded = warm_imports(state_repo, "ready", "--json")
    assert "pygit2" in loaded and same(got, full)


def test_junk_in_the_remembered_refs_reads_in_full(state_repo: Path) -> None:
    a_plan(state_repo)
    full = run(state_repo, "ready")
    refs = Path(reffiles.refs_file(str(state_repo / ".git")))
    for junk in (b"", b"gitconvoy-refs sha256:00\n1\n", os.urandom(300), refs.read_bytes()[:-3]):
        refs.write_bytes(junk)
        got, loaded = warm_imports(state_repo, "ready")
        assert "pygit2" in loaded and same(got, full)
    assert heavy(warm_imports(state_repo, "ready")[1]) == []  # remembered again


# --- the two paths agree: in process, on generated states -------------------------------------


def warm(*args: str) -> tuple[str, str] | None:
    """(stderr, stdout) of the warm path, or None if it would not answer."""
    texts = quick.answer(list(args))
    return None if texts is None else (texts[0] + texts[2], texts[1])


def replace_beads(beads: list[Bead]) -> None:
    store = Store.open()

    def mutate(tx) -> None:
        for bead_id in list(tx.beads.keys()):
            tx.remove("beads", bead_id)
        for bead in beads:
            tx.put(bead)

    store.transact(mutate, "test: replace the beads")


IDS = [f"g-{n}" for n in range(12)]


@st.composite
def generated_beads(draw: st.DrawFn) -> list[Bead]:
    chosen = draw(st.lists(st.sampled_from(IDS), unique=True, max_size=len(IDS)))
    out = []
    for bead_id in chosen:
        status = draw(st.sampled_from(model.BEAD_STATUSES))
        others = st.sampled_from(IDS + ["gone"])
        out.append(Bead(
            id=bead_id,
            title=draw(st.sampled_from(["Plain", "Tab\there", "Esc \x1b[2J", "Ünï ✓", "a\nb"])),
            type=draw(st.sampled_from(model.BEAD_TYPES)), status=status,
            priority=draw(st.integers(0, 4)),
            assignee=draw(st.sampled_from([None, "alice", "bob"])),
            labels=draw(st.lists(st.sampled_from(["ui", "db"]), unique=True)),
            parent=draw(st.one_of(st.none(), others)),
            deps=sorted(set(draw(st.lists(st.builds(Dep, others,
                                                    st.sampled_from(model.DEP_TYPES)),
                                          max_size=3)))),
            created_at=draw(st.sampled_from([None, "2024-01-01T00:00:00Z",
                                             "2024-01-02T00:00:00Z"])),
            closed_at="2024-01-03T00:00:00Z" if status == "closed" else None,
        ))
    return out


@given(generated_beads())
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_warm_path_prints_what_the_full_path_prints(state_repo: Path,
                                                         beads: list[Bead]) -> None:
    replace_beads(beads)
    for args in READS + [("bead", "list", "-s", "tombstone"), ("ready", "-n", "3")]:
        full = convoy(*args)  # in process: always the full path, which stores the answer
        assert full.code == 0, full.err
        assert warm(*args) == (full.err, full.out), args


# --- the parser agrees with click --------------------------------------------------------------


TOKENS = ["--json", "--limit", "-n", "3", "0", "-3", "x", "--limit=4", "-n2", "--", "-h",
          "--all", "-s", "open", "closed", "nope", "-t", "bug", "--assignee", "alice",
          "--label", "ui", "-l", "--parent", "p-1", "--status=blocked", "--type", "epic",
          "--lim", "-sopen", "--json=1", "٣"]


def click_params(words: tuple[str, ...], args: list[str]) -> dict | None:
    command: click.Command = {("ready",): bead_commands.ready,
                              ("blocked",): bead_commands.blocked,
                              ("bead", "list"): bead_commands.bead.commands["list"]}[words]
    try:
        ctx = command.make_context(" ".join(words), list(args))
    except (click.exceptions.Exit, click.ClickException):
        return None
    return ctx.params


@given(st.sampled_from(list(quick.COMMANDS)), st.lists(st.sampled_from(TOKENS), max_size=6))
@settings(max_examples=400, deadline=None)
def test_what_the_warm_parser_takes_click_reads_the_same(words: tuple[str, ...],
                                                         args: list[str]) -> None:
    parsed = quick.parse([*words, *args])
    if parsed is None:
        return  # click answers (an error, or the full path)
    params = click_params(words, args)
    assert params is not None, f"click refuses {args} but the warm path took it"
    name, options = parsed
    spec = quick.COMMANDS[words][1]
    defaults = {"as_json": False, "limit": 0, "statuses": (), "types": (), "assignee": None,
                "labels": (), "parent": None, "show_all": False}
    for key in {k for k, _ in spec.values()}:
        assert options.get(key, defaults[key]) == params[key], (args, key)


def test_the_warm_parser_knows_the_models_choices() -> None:
    assert frozenset(model.BEAD_STATUSES) == quick.STATUSES
    assert frozenset(model.BEAD_TYPES) == quick.TYPES

"""Shell completion: `git convoy completion bash|zsh|fish` and `git convoy __complete ids`.

bash runs for real: a bash process sources git's own completion and ours, sets COMP_WORDS
and COMP_CWORD as readline would for `git convoy st<TAB>`, calls git's completion function
and prints COMPREPLY. zsh runs our function with stand-ins for compadd and _describe; fish
answers `complete -C`. Each shell's test skips when that shell (or git's completion) is
missing.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import STATE_REF, convoy, ok, ref_of

GIT_BASH = Path("/usr/share/bash-completion/completions/git")
BASH_COMPLETION = Path("/usr/share/bash-completion/bash_completion")


@pytest.fixture
def planned(state_repo: Path) -> Path:
    """Beads t-auth (epic), t-auth.1, t-auth.2, t-doc; rigs app and web; a staged convoy."""
    ok("rig", "add", "app")
    ok("rig", "add", "web", "--target", "main")
    ok("bead", "create", "--type", "epic", "Auth", "--id", "t-auth")
    ok("bead", "create", "Add validation", "--id", "t-auth.1", "--parent", "t-auth",
       "--rig", "app")
    ok("bead", "create", "Rotate keys\ttab \x1b[31m", "--id", "t-auth.2", "--parent", "t-auth",
       "--rig", "app")
    ok("bead", "create", "Write docs", "--id", "t-doc")
    ok("stage", "t-auth", "--title", "Auth convoy")
    return state_repo


def convoy_id() -> str:
    import json

    return json.loads(ok("list", "--all", "--json"))[0]["id"]


def script(tmp_path: Path, shell: str) -> Path:
    path = tmp_path / f"git-convoy.{shell}"
    path.write_text(ok("completion", shell) + "\n")
    return path


# --- the words ----------------------------------------------------------------------------------


def test_complete_ids_lists_names_by_kind_and_prefix(planned: Path) -> None:
    assert ok("__complete", "ids", "bead").splitlines() == [
        "t-auth", "t-auth.1", "t-auth.2", "t-doc"]
    assert ok("__complete", "ids", "bead", "--prefix", "t-auth.").splitlines() == [
        "t-auth.1", "t-auth.2"]
    assert ok("__complete", "ids", "epic").splitlines() == ["t-auth"]
    assert ok("__complete", "ids", "convoy,epic").splitlines() == ["t-auth", convoy_id()]
    assert ok("__complete", "ids", "rig").splitlines() == ["app", "web"]
    described = ok("__complete", "ids", "task", "--describe").splitlines()
    assert described[1] == "t-auth.2\ttask, open: Rotate keys tab [31m"  # no control chars


def test_complete_ids_follows_the_state_and_writes_nothing_to_it(planned: Path) -> None:
    before = ref_of(planned, STATE_REF)
    ok("__complete", "ids", "bead")
    assert ref_of(planned, STATE_REF) == before
    cache = planned / ".git" / "convoy" / "cache" / "complete-ids.tsv"
    assert cache.read_text().splitlines()[0] == f"# gitconvoy completion words v1 {before}"
    ok("bead", "create", "New work", "--id", "t-new")
    assert "t-new" in ok("__complete", "ids", "bead").splitlines()
    ok("bead", "delete", "t-new")
    assert "t-new" not in ok("__complete", "ids", "bead").splitlines()


def test_an_edited_word_file_cannot_reach_the_terminal(planned: Path) -> None:
    ok("__complete", "ids", "bead")
    cache = planned / ".git" / "convoy" / "cache" / "complete-ids.tsv"
    head = cache.read_text().splitlines()[0]
    cache.write_text(f"{head}\ntask\tt-evil\x1b]0;x\x07\tx\ntask\tt-ok\tfine \x1b[2J\n")
    assert ok("__complete", "ids", "bead", "--describe").splitlines() == ["t-ok\tfine [2J"]


def test_complete_ids_is_quiet_outside_a_repository_or_without_state(tmp_path: Path,
                                                                    monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert convoy("__complete", "ids", "bead").out == ""
    subprocess.run(["git", "init", "-q"], check=True)
    res = convoy("__complete", "ids", "bead")
    assert (res.code, res.out, res.err) == (0, "", "")


def test_a_warm_tab_does_not_import_pygit2(planned: Path) -> None:
    ok("__complete", "ids", "bead")  # warms the word file
    probe = ("import sys\nfrom gitconvoy.cli import main\n"
             "try:\n    main(['__complete', 'ids', 'bead'])\nexcept SystemExit:\n    pass\n"
             "print('pygit2' in sys.modules, 'yaml' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == ["t-auth", "t-auth.1", "t-auth.2", "t-doc", "False False"]


def test_the_completion_command_is_hidden_from_help_but_the_script_is_not(planned: Path):
    assert "__complete" not in ok("--help")
    assert "completion" in ok("--help")
    res = convoy("completion", "tcsh")
    assert res.code == 2 and "tcsh" in res.err


# --- bash, for real ------------------------------------------------------------------------------


def bash(cwd: Path, ours: Path, words: list[str], setup: str = "") -> list[str]:
    """COMPREPLY for `words` (the last one is being completed), as git's completion gives it."""
    line = " ".join(words)
    body = "\n".join([
        setup or f"source {GIT_BASH}\nsource {shlex.quote(str(ours))}",
        f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})",
        f"COMP_CWORD={len(words) - 1}",
        f"COMP_LINE={shlex.quote(line)}",
        "COMP_POINT=${#COMP_LINE}",
        "COMP_TYPE=9; COMP_KEY=9",
        "__git_wrap__git_main" if words[0] == "git" else "_git_convoy_standalone",
        'printf "%s\\n" "${COMPREPLY[@]}"',
    ])
    proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", body], cwd=cwd,
                          capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr
    return sorted(w.rstrip() for w in proc.stdout.splitlines() if w.strip())


needs_git_bash = pytest.mark.skipif(
    not GIT_BASH.exists() or shutil.which("bash") is None,
    reason=f"git's bash completion ({GIT_BASH}) is not installed")


@needs_git_bash
@pytest.mark.parametrize("words, expected", [
    (["git", "convoy", "st"], ["stage", "status", "step"]),
    (["git", "convoy", "bead", "sh"], ["show"]),
    (["git", "convoy", "bead", "show", "t-auth."], ["t-auth.1", "t-auth.2"]),
    (["git", "convoy", "bead", "show", "t-auth.1", "t-d"], ["t-doc"]),
    (["git", "convoy", "dep", "add", "t-doc", "t-auth."], ["t-auth.1", "t-auth.2"]),
    (["git", "convoy", "bead", "create", "--type", "e"], ["epic"]),
    (["git", "convoy", "bead", "create", "x", "--parent", ""], ["t-auth"]),
    (["git", "convoy", "bead", "update", "t-doc", "--rig", ""], ["app", "web"]),
    (["git", "convoy", "status", "--format=m"], ["--format=markdown"]),
    (["git", "convoy", "stage", "--t"], ["--title"]),
    (["git", "convoy", "rig", "park", "w"], ["web"]),
    (["git", "convoy", "completion", ""], ["bash", "fish", "zsh"]),
    (["git", "convoy", "integration", "land", ""], ["t-auth"]),
    (["git", "-C", ".", "convoy", "bead", "show", "t-d"], ["t-doc"]),
    (["git-convoy", "bead", "sh"], ["show"]),
    (["git-convoy", "bead", "show", "t-auth."], ["t-auth.1", "t-auth.2"]),
])
def test_bash_completes_git_convoy(planned: Path, tmp_path: Path, words, expected) -> None:
    assert bash(planned, script(tmp_path, "bash"), words) == expected


@needs_git_bash
def test_bash_completes_convoy_ids_for_graph_and_report(planned: Path, tmp_path: Path) -> None:
    ours = script(tmp_path, "bash")
    assert bash(planned, ours, ["git", "convoy", "graph", ""]) == sorted(["t-auth", convoy_id()])
    assert bash(planned, ours, ["git", "convoy", "launch", "c"]) == [convoy_id()]


@needs_git_bash
def test_bash_leaves_file_arguments_to_readline(planned: Path, tmp_path: Path) -> None:
    assert bash(planned, script(tmp_path, "bash"), ["git", "convoy", "import", ""]) == []


@pytest.mark.skipif(not (GIT_BASH.exists() and BASH_COMPLETION.exists()),
                    reason="bash-completion (the package) is not installed")
def test_bash_completion_loads_our_file_from_the_documented_folder(planned: Path,
                                                                   tmp_path: Path) -> None:
    """The install line in docs/completion.md: git's completion asks bash-completion's loader
    for `git-convoy`, which finds our file in the user's completions folder."""
    folder = tmp_path / "data" / "bash-completion" / "completions"
    folder.mkdir(parents=True)
    (folder / "git-convoy").write_text(ok("completion", "bash"))
    setup = (f"export XDG_DATA_HOME={shlex.quote(str(tmp_path / 'data'))}\n"
             f"source {BASH_COMPLETION}\nsource {GIT_BASH}")
    assert bash(planned, Path("/dev/null"), ["git", "convoy", "bead", "show", "t-d"],
                setup=setup) == ["t-doc"]


# --- zsh and fish -------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
@pytest.mark.parametrize("words, expected", [
    (["convoy", "st"], ["stage", "status", "step"]),
    (["convoy", "bead", "show", "t-auth."], ["t-auth.1", "t-auth.2"]),
    (["convoy", "bead", "create", "--type", ""], ["bug", "chore", "decision", "epic",
                                                  "feature", "task"]),
    (["git-convoy", "rig", "park", ""], ["app", "web"]),
    (["convoy", "status", "--"], ["--format", "--help", "--json", "--pretty"]),
    (["convoy", "import", ""], ["FILES"]),
])
def test_zsh_completes_git_convoy(planned: Path, tmp_path: Path, words, expected) -> None:
    ours = script(tmp_path, "zsh")
    body = "\n".join([
        # stand-ins for the completion builtins: print what would be offered
        'compadd () { [[ $1 == -a ]] && print -l -- ${(P)2} || print -l -- "$@" }',
        '_describe () { local -a l; l=( ${(P)4} ); print -l -- ${l%%:*} }',
        "_files () { print FILES }",
        "compset () { : }",
        f"words=({' '.join(shlex.quote(w) for w in words)})",
        f"CURRENT={len(words)}",
        f"source {shlex.quote(str(ours))}",
    ])
    proc = subprocess.run(["zsh", "-f", "-c", body], cwd=planned, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    offered = sorted(proc.stdout.split())
    # zsh filters by the typed prefix itself; our words must hold what is expected
    prefix = words[-1]
    assert sorted(w for w in offered if w.startswith(prefix)) == expected


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
@pytest.mark.parametrize("line, expected", [
    ("git-convoy st", ["stage", "status", "step"]),
    ("git-convoy bead show t-auth.", ["t-auth.1", "t-auth.2"]),
    ("git convoy st", ["stage", "status", "step"]),
    ("git convoy bead update t-doc --rig ", ["app", "web"]),
    ("git convoy status --format=j", ["--format=json"]),
])
def test_fish_completes_git_convoy(planned: Path, tmp_path: Path, line, expected) -> None:
    ours = script(tmp_path, "fish")
    command = f"source {shlex.quote(str(ours))}; complete -C{shlex.quote(line)}"
    proc = subprocess.run(["fish", "--no-config", "-c", command], cwd=planned,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    offered = sorted({w.split("\t")[0] for w in proc.stdout.splitlines()})
    assert offered == expected

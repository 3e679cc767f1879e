"""The plugin's own git settings, kept in `.git/convoy/config` and pulled into the repository
config with one `include.path` line, so uninstalling removes exactly one line and one file.

It registers the merge driver that `.gitattributes` on the state ref names (`merge=convoy`).
"""

from __future__ import annotations

import os

from gitconvoy.git.gitcli import run_git
from gitconvoy.state.store import Store

SETTINGS_FILE = "config"
INCLUDE_VALUE = "convoy/config"  # relative to .git/config, so it names .git/convoy/config
MERGE_DRIVER_NAME = "gitconvoy field-by-field merge of state files"
MERGE_DRIVER = "git convoy merge-driver %O %A %B %P"


def settings_text() -> str:
    """The settings file, byte for byte (stable, so `status` can say whether it is current)."""
    return (
        "# gitconvoy settings: written by 'git convoy hooks install',\n"
        "# removed by 'git convoy hooks uninstall'. Included from .git/config (include.path).\n"
        '[merge "convoy"]\n'
        f"\tname = {MERGE_DRIVER_NAME}\n"
        f"\tdriver = {MERGE_DRIVER}\n"
    )


def settings_path(store: Store) -> str:
    return os.path.join(store.common_dir, "convoy", SETTINGS_FILE)


def _local(store: Store, *args: str, check: bool = True) -> tuple[int, str]:
    res = run_git(["config", "--local", *args], git_dir=store.common_dir, check=check)
    return res.code, res.out


def included(store: Store) -> bool:
    code, out = _local(store, "--get-all", "include.path", check=False)
    return code == 0 and INCLUDE_VALUE in out.splitlines()


def settings_current(store: Store) -> bool:
    try:
        with open(settings_path(store), encoding="utf-8") as fh:
            return fh.read() == settings_text()
    except OSError:
        return False


def install_settings(store: Store) -> list[str]:
    """Write the settings file and include it once; what changed, as lines for the user."""
    done: list[str] = []
    path = settings_path(store)
    if not settings_current(store):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(settings_text())
        done.append(f"wrote {path} (merge driver 'convoy')")
    if not included(store):
        _local(store, "--add", "include.path", INCLUDE_VALUE)
        done.append(f"added include.path = {INCLUDE_VALUE} to the repository config")
    return done


def uninstall_settings(store: Store) -> list[str]:
    done: list[str] = []
    if included(store):
        _local(store, "--fixed-value", "--unset-all", "include.path", INCLUDE_VALUE)
        done.append(f"removed include.path = {INCLUDE_VALUE} from the repository config")
    path = settings_path(store)
    if os.path.exists(path):
        os.remove(path)
        done.append(f"removed {path}")
    return done


def merge_driver_registered(store: Store) -> str | None:
    """The merge driver git will run for `merge=convoy`, as git resolves it (includes too)."""
    res = run_git(["config", "merge.convoy.driver"], git_dir=store.common_dir, check=False)
    return res.out.strip() or None if res.code == 0 else None

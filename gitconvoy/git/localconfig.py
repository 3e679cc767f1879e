"""Commands a rig runs (dispatch, check), read only from places the user controls.

Never from the state ref, which any writer can push: from local git config
(`convoy.rig.<name>.<key>`), else from `.convoy/config.toml` committed on the rig's target
branch (reviewed like code):

    [rig.app]
    dispatch = "./start-worker.sh"
    check = "pytest -q"
"""

from __future__ import annotations

import tomllib
from typing import Any

import pygit2

from gitconvoy.errors import ConvoyError
from gitconvoy.state.model import Rig
from gitconvoy.state.store import Store

KEYS = ("dispatch", "check", "timeout", "worktree", "delete-branch")


def project_config(store: Store, branch: str) -> dict[str, Any]:
    """`.convoy/config.toml` as committed on `branch` (empty when absent)."""
    tip = store.head_of(f"refs/heads/{branch}")
    if tip is None:
        return {}
    tree = store.repo[tip].peel(pygit2.Tree)
    try:
        blob = store.repo[tree[".convoy/config.toml"].id]
    except KeyError:
        return {}
    try:
        return tomllib.loads(blob.data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConvoyError(f".convoy/config.toml on {branch}: {exc}") from None


def rig_setting(store: Store, rig: Rig, key: str) -> str | None:
    """A rig's setting: local git config first, then the project's committed config."""
    value = store.config_get(f"convoy.rig.{rig.name}.{key}")
    if value is not None:
        return value
    section = project_config(store, rig.target).get("rig", {}).get(rig.name, {})
    found = section.get(key)
    return None if found is None else str(found)

"""The canonical YAML of state files: how the store writes them and how every read parses
them (libyaml, safe loading only, no anchors or aliases)."""

from __future__ import annotations

from typing import Any

from gitconvoy.errors import SchemaError


def _yaml() -> Any:
    """Imported on first use: a read served from the cache never pays for it."""
    import yaml

    return yaml


_DUMPER: list[Any] = []


def _dumper() -> Any:
    """libyaml's safe dumper, writing multi-line text as `|` blocks so diffs read as text."""
    if not _DUMPER:
        yaml = _yaml()

        class StateDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore
            pass

        def represent_str(dumper: Any, data: str) -> Any:
            if "\n" in data:
                return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
            return dumper.represent_str(data)

        StateDumper.add_representer(str, represent_str)
        _DUMPER.append(StateDumper)
    return _DUMPER[0]


def dump_yaml(data: dict[str, Any]) -> bytes:
    text = _yaml().dump(
        data, Dumper=_dumper(), sort_keys=False, allow_unicode=True, width=100,
        default_flow_style=False,
    )
    return text.encode("utf-8")


def load_yaml(raw: bytes, path: str) -> Any:
    """safe_load, plus a refusal of anchors and aliases (a billion-laughs file is an error)."""
    yaml = _yaml()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SchemaError(path, None, "is not valid UTF-8") from None
    try:
        if "&" in text or "*" in text:
            for event in yaml.parse(text, Loader=loader):
                if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                    line = event.start_mark.line + 1
                    raise SchemaError(
                        path, None, f"line {line}: YAML anchors and aliases are not allowed"
                    )
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise SchemaError(path, None, f"{where}{problem}") from None

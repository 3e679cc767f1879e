"""Who writes a commit, with git's precedence: the environment (GIT_AUTHOR_*,
GIT_COMMITTER_*, as CI sets them), then git config (user.name, user.email, author.* and
committer.*), then EMAIL for the address, else a clear error. Never a made-up identity: a
landing on a shared branch must say who made it, exactly as `git commit` would.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from gitconvoy.errors import ConvoyError

_RAW = re.compile(r"^@?(\d+)(?:\s+([+-]\d{4}))?$")
_ISO = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2})?)(?:\.\d+)?"
                  r"\s*(Z|[+-]\d{2}:?\d{2})?$")


@dataclass(frozen=True)
class Who:
    name: str
    email: str
    time: int | None = None  # seconds since the epoch; None: now
    offset: int | None = None  # minutes east of UTC; None: local


def parse_date(text: str, variable: str) -> tuple[int, int]:
    """The date formats git documents for GIT_*_DATE: raw (`@1700000000 +0100`), ISO 8601 and
    RFC 2822. (seconds since the epoch, offset in minutes)."""
    value = text.strip()
    found = _RAW.match(value)
    if found:
        return int(found.group(1)), _minutes(found.group(2) or "+0000")
    found = _ISO.match(value)
    if found:
        day, clock, zone = found.groups()
        if clock.count(":") == 1:
            clock += ":00"
        stamp = datetime.fromisoformat(f"{day}T{clock}" + _iso_zone(zone))
        if stamp.tzinfo is None:
            stamp = stamp.astimezone()
        offset = stamp.utcoffset()
        return int(stamp.timestamp()), int(offset.total_seconds() // 60) if offset else 0
    import email.utils  # only here: importing it costs a quick create ~10 ms

    try:
        stamp = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        stamp = None
    if stamp is None:
        raise ConvoyError(f"{variable}={text!r} is not a date git understands: use "
                          "'@<seconds> <+hhmm>', ISO 8601 or RFC 2822")
    offset = stamp.utcoffset()
    return int(stamp.timestamp()), int(offset.total_seconds() // 60) if offset else 0


def _iso_zone(zone: str | None) -> str:
    if not zone:
        return ""
    if zone == "Z":
        return "+00:00"
    return zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"


def _minutes(zone: str) -> int:
    sign = -1 if zone.startswith("-") else 1
    return sign * (int(zone[1:3]) * 60 + int(zone[3:5]))


def resolve(role: str, config_get: Callable[[str], str | None],
            environ: Mapping[str, str] | None = None) -> Who:
    """`role` is "author" or "committer"."""
    env = os.environ if environ is None else environ
    upper = role.upper()
    name = env.get(f"GIT_{upper}_NAME") or config_get(f"{role}.name") or config_get("user.name")
    address = (env.get(f"GIT_{upper}_EMAIL") or config_get(f"{role}.email")
               or config_get("user.email") or env.get("EMAIL"))
    if not name or not address:
        missing = "user.name" if not name else "user.email"
        raise ConvoyError(f"who is writing? {missing} is not set: run 'git config --global "
                          f"{missing} …' (or set GIT_{upper}_{'NAME' if not name else 'EMAIL'})"
                          ", as for git commit")
    date = env.get(f"GIT_{upper}_DATE")
    if date:
        seconds, offset = parse_date(date, f"GIT_{upper}_DATE")
        return Who(name, address, seconds, offset)
    return Who(name, address)

"""The canonical YAML of state files: how the store writes them and how every read parses
them (libyaml, safe loading only, no anchors or aliases).

PyYAML defines the format. Beside it sits a fast path for the exact subset the store
writes, because PyYAML is slow at both ends even with libyaml: its loader builds every
object through the pure-Python constructor (0.77 s for the 10k files of a large state) and
its dumper represents every value in Python (0.32 s per 1,000 beads written). The fast path
is an accelerator, never a second dialect:

- `emit_canonical` writes a mapping of strings, integers, booleans, nulls, lists and
  mappings byte for byte as the dumper below does (its quoting, its `|` blocks, its folding
  of long lines at column 100), and answers None for anything it is not sure of; PyYAML then
  writes that value.
- `parse_canonical` accepts a text only if emitting the value it read gives that very text
  back. Whatever it accepts is therefore PyYAML's own output for that value, which PyYAML
  reads back as that value; anything else (hand edits, another writer's layout, a hostile
  state branch) goes to libyaml as before.
"""

from __future__ import annotations

import re
from typing import Any

from gitconvoy.errors import SchemaError


def _yaml() -> Any:
    """Imported on first use: a read served from the cache never pays for it."""
    import yaml

    return yaml


_DUMPER: list[Any] = []
_LIBYAML: list[bool] = []


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


def pyyaml_dump(data: Any) -> str:
    """The reference writer: what `dump_yaml` writes, by PyYAML for any value."""
    return _yaml().dump(
        data, Dumper=_dumper(), sort_keys=False, allow_unicode=True, width=_WIDTH,
        default_flow_style=False,
    )


def dump_yaml(data: dict[str, Any]) -> bytes:
    text = emit_canonical(data)
    if text is None:
        text = pyyaml_dump(data)
    return text.encode("utf-8")


def load_yaml(raw: bytes, path: str) -> Any:
    """safe_load, plus a refusal of anchors and aliases (a billion-laughs file is an error);
    a file in the canonical layout is read without PyYAML's constructor."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SchemaError(path, None, "is not valid UTF-8") from None
    value = parse_canonical(text)
    if value is not NOT_CANONICAL:
        return value
    return pyyaml_load(text, path)


def pyyaml_load(text: str, path: str) -> Any:
    """The reference reader: libyaml's safe loader, refusing anchors and aliases."""
    yaml = _yaml()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
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


# --- the canonical subset: how the dumper lays out what the store writes ----------------

_WIDTH = 100  # the dumper folds plain and single-quoted text at spaces past this column
_KEY_BYTES = 100  # libyaml writes a key over 128 bytes as a complex `? key`; stay well below
_INT_LIMIT = 10**18
_STR_TAG = "tag:yaml.org,2002:str"

# Characters libyaml writes as themselves (printable, with allow_unicode) and that break no
# line. Anything else (tab, CR, other controls, NEL, U+2028/2029, a BOM, U+FFFE/FFFF, the
# astral planes) makes it double-quote and escape the text: left to PyYAML.
# Spelled as the complement of what libyaml writes (\n, \x20-\x7e, \u00a0-\u2027, \u202a-\ud7ff,
# \ue000-\ufefe, \uff00-\ufffd): the negated class of those ranges took 5-7 ms to compile, a
# twentieth of a quick create (tests/test_codec.py checks both sets on every code point).
_UNSAFE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff"
                     r"\U00010000-\U0010ffff]")

# libyaml's reasons not to write a text plain in block context: an indicator first ("- ",
# "? ", ": ", "#", quotes, brackets, …), a document marker, a space at either end, ": " or
# a final ":" anywhere, " #" anywhere.
_NOT_PLAIN = re.compile(
    r"\A(?:[-?:](?: |\Z)|[#,\[\]{}&*!|>'\"%@`]|---|\.\.\.| )| \Z|: |:\Z| #"
)

_RESOLVERS: dict[str, list[tuple[str, Any]]] = {}


def _resolvers(first: str) -> list[tuple[str, Any]]:
    """The dumper's own implicit resolvers (bool, int, float, null, timestamp, …) that apply
    to a plain text starting with `first`, in the order PyYAML tries them."""
    found = _RESOLVERS.get(first)
    if found is None:
        table = _dumper().yaml_implicit_resolvers
        found = _RESOLVERS[first] = list(table.get(first, [])) + list(table.get(None, []))
    return found


# YAML 1.1's implicit types that a plain text opening with a letter can take: the booleans
# and null, each only as these exact spellings (lower, Capitalised, UPPER). Anything else
# that opens with a letter other than these words reads as text, so the common case (ids,
# titles, statuses) never asks PyYAML's resolvers (nor imports PyYAML).
_WORDS = ("yes", "no", "true", "false", "on", "off", "null")
_NOT_TEXT_WORDS = {form for word in _WORDS for form in (word, word.capitalize(), word.upper())}
# The store's own time stamps: a YAML timestamp, so written quoted.
_STAMP = re.compile(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?Z\Z")


def _plain_reads_as_text(text: str) -> bool:
    first = text[0]
    if first.isalpha() and first.isascii():
        return text not in _NOT_TEXT_WORDS
    if first.isdigit() and _STAMP.match(text):
        return False
    return _resolved_as_text(text)


def _resolved_as_text(text: str) -> bool:
    """PyYAML's own answer: its implicit resolvers for the first character, in order."""
    for tag, regexp in _resolvers(text[0]):
        if regexp.match(text):
            return tag == _STR_TAG
    return True


def _plain_ok(text: str) -> bool:
    return bool(text) and _NOT_PLAIN.search(text) is None and _plain_reads_as_text(text)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# How short texts (ids, keys, statuses, times) are written, as they recur in every file.
_ONE_LINE: dict[str, str] = {}
_CACHED_LEN = 64
_CACHE_SIZE = 100_000


def _one_line(text: str) -> str | None:
    """`text` written plain or single-quoted, before any folding; None when it holds a line
    break or a character the dumper escapes."""
    written = _ONE_LINE.get(text)
    if written is not None:
        return written
    if "\n" in text or _UNSAFE.search(text):
        return None
    written = text if _plain_ok(text) else _quote(text)
    if len(text) <= _CACHED_LEN and len(_ONE_LINE) < _CACHE_SIZE:
        _ONE_LINE[text] = written
    return written


def _fold(written: str, column: int, indent: int) -> str:
    """Break `written` (starting at `column`) the way libyaml does: at a single space past
    the width, the space replaced by a line break and `indent` spaces; never at a quoted
    text's first or last character."""
    quoted = written[0] == "'"
    pieces = []
    start = 0
    last = len(written) - 1
    at = written.find(" ")
    while at != -1:
        if (column + at - start > _WIDTH and written[at - 1] != " " and at < last
                and written[at + 1] != " " and not (quoted and at in (1, last - 1))):
            pieces.append(written[start:at])
            start = at + 1
            column = indent
        at = written.find(" ", at + 1)
    pieces.append(written[start:])
    return ("\n" + " " * indent).join(pieces)


def _literal(value: str, indent: int) -> str | None:
    """A multi-line text as a `|` block, unless libyaml would need an indentation or keep
    indicator, or double quotes (a space before a line break or at the very end)."""
    if (value[0] in " \n" or value.endswith((" ", "\n\n")) or " \n" in value
            or _UNSAFE.search(value)):
        return None
    pad = " " * indent
    body = value[:-1] if value[-1] == "\n" else value
    lines = "\n".join(pad + line if line else "" for line in body.split("\n"))
    return (" |\n" if value[-1] == "\n" else " |-\n") + lines


def _text(value: str, column: int, indent: int) -> str | None:
    """A string value written at `column` (after its separating space), whose continuation
    lines are indented by `indent`; None when the dumper would not write it this way."""
    written = _one_line(value)
    if written is None:
        return _literal(value, indent) if "\n" in value else None
    if column + len(written) > _WIDTH + 1 and " " in written:
        written = _fold(written, column, indent)
    return " " + written


def written_scalar(value: str, column: int, indent: int) -> str | None:
    """A string value as the emitter writes it at `column` (after its separating space,
    which it includes), continuation lines indented by `indent`; None when outside the
    subset. gitconvoy.state.beadtext proves each value it reads canonical with it."""
    return _text(value, column, indent)


FOLD_COLUMN = _WIDTH + 1  # a one-line value ending past this column may be folded


def written_texts() -> dict[str, str]:
    """The emitter's memo of short texts, as it writes them on one line (plain or quoted):
    a reader may look a value up here first (never mutate it)."""
    return _ONE_LINE


# --- the emitter's rules as patterns: a file of the common shapes proved in one match ------
# In a `printable` text, each pattern below matches only texts `written_scalar` writes
# exactly so (a test holds them to it); what they leave out (digits first, doubled quotes,
# folded lines) is proved value by value instead. Their classes leave out the ASCII controls
# and stay small; the file was checked `printable` for the rest (with the big Unicode
# classes in every field, the file pattern took 0.4 s to compile).

# The YAML 1.1 words of _NOT_TEXT_WORDS (lower, Capitalised, UPPER), as a short pattern.
WORDS_PATTERN = "(?:" + "|".join(f"[{w[0]}{w[0].upper()}]{w[1:]}|{w.upper()}"
                                 for w in _WORDS) + ")"
STAMP_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?Z"


def printable(text: str) -> bool:
    """True unless a character beyond ASCII is one the emitter escapes (the patterns below
    leave out the ASCII ones themselves): a caller checks a whole file once."""
    return text.isascii() or _UNSAFE.search(text) is None


def fits_pattern(column: int) -> str:
    """A lookahead: the rest of the line, written at `column`, is not folded (it ends by
    the fold column, or has no space to fold at)."""
    return rf"(?:(?=[^\n]{{0,{FOLD_COLUMN - column}}}\n)|(?=[^ \n]*+\n))"


def plain_pattern() -> str:
    """Text written plain on one line: an ASCII letter first (so no indicator, and no
    implicit type but the YAML 1.1 words), then text with no `: `, no ` #`, no final `:` or
    space. The caller adds `fits_pattern` before it and the line end after. (Runs of one
    class, so a match costs a step per `:` or `#`, not per word.)"""
    return (rf"(?!{WORDS_PATTERN}\n)[A-Za-z]"
            r"(?:[^\x00-\x1f\x7f:#]++|:(?=[^\x00-\x20\x7f])|(?<! )#)*+(?<! )")


def name_pattern() -> str:
    """`plain_pattern` for text with no space (a name, an id, a branch): shorter, and
    never folded, so it needs no `fits_pattern`."""
    return rf"(?!{WORDS_PATTERN}\n)[A-Za-z](?:[^\x00-\x20\x7f:]++|:(?=[^\x00-\x20\x7f]))*+"


def quoted_pattern() -> str:
    """The inside of a single-quoted one-line text with no quote in it, which the emitter
    must quote: empty, a YAML 1.1 word, a store time stamp, or a text plain YAML cannot
    hold (an indicator first; `: `, ` #`, a final `:` or space)."""
    must = (rf"(?=')|(?:{STAMP_PATTERN}|{WORDS_PATTERN})(?=')"
            r"""|(?=[-?:](?: |')|[#,\[\]{}&*!|>"%@`]|---|\.\.\.| )"""
            r"|(?=[^\n']*?: )|(?=[^\n']*? #)|(?=[^\n']*?[ :]')")
    return rf"(?:{must})[^\x00-\x1f\x7f']*+"


def literal_pattern() -> str:
    """A multi-line text as the emitter writes it for a top-level key: a `|` (or `|-`, with
    two lines at least) block indented by two, no line ending in a space, the first line
    not starting with one, the first and last lines not empty."""
    first = r"[^\x00-\x20\x7f][^\x00-\x1f\x7f]*+(?<! )"
    more = r"\n++  [^\x00-\x1f\x7f]*+(?<=[^\x00-\x20\x7f])"
    return rf"(?:\|\n  {first}(?:{more})*+|\|-\n  {first}(?:{more})++)"


def literal_text(written: str) -> str:
    """The text of a block `literal_pattern` matched."""
    keep = written[1] == "\n"
    body = ("\n" + written[2 if keep else 3:]).replace("\n  ", "\n")[1:]
    return body + "\n" if keep else body


def _key(key: Any) -> str | None:
    if type(key) is not str:
        return None
    written = _one_line(key)
    if written is None or (len(key) * 3 > _KEY_BYTES and len(key.encode()) > _KEY_BYTES):
        return None
    return written


def _leaf(value: Any, head: str, indent: int, seen: set[int]) -> str | None:
    """`head` and a value that fits on its line (or opens a `|` block), else None."""
    kind = type(value)
    if kind is str:
        written = _text(value, len(head) + 1, indent + 2)
        return None if written is None else head + written
    if kind is bool:
        return head + (" true" if value else " false")
    if kind is int:
        return head + f" {value}" if -_INT_LIMIT < value < _INT_LIMIT else None
    if value is None:
        return head + " null"
    if (kind is list or kind is dict) and not value and id(value) not in seen:
        seen.add(id(value))
        return head + (" []" if kind is list else " {}")
    return None


def _mapping(data: dict, indent: int, out: list[str], seen: set[int], first: str) -> bool:
    """Append a block mapping's lines; `first` starts its first line (a `- ` when it is a
    sequence item, else its indentation)."""
    if id(data) in seen:
        return False  # the dumper would write an anchor and an alias
    seen.add(id(data))
    pad = " " * indent
    for key, value in data.items():
        if type(key) is str and len(key) * 3 <= _KEY_BYTES:
            written = _ONE_LINE.get(key) or _one_line(key)
        else:
            written = _key(key)
        if written is None:
            return False
        head = first + written + ":"
        first = pad
        kind = type(value)
        if kind is str:  # the common line, inline: a short known text that cannot fold
            text = _ONE_LINE.get(value)
            if text is not None and len(head) + len(text) <= _WIDTH:
                out.append(f"{head} {text}")
                continue
        if kind is dict and value:
            out.append(head)
            if not _mapping(value, indent + 2, out, seen, pad + "  "):
                return False
        elif kind is list and value:
            out.append(head)
            if not _sequence(value, indent, out, seen):
                return False
        else:
            line = _leaf(value, head, indent, seen)
            if line is None:
                return False
            out.append(line)
    return True


def _sequence(items: list, indent: int, out: list[str], seen: set[int]) -> bool:
    """Append a block sequence's lines (at its mapping's indentation, as the dumper does)."""
    if id(items) in seen:
        return False
    seen.add(id(items))
    head = " " * indent + "-"
    for item in items:
        kind = type(item)
        if kind is dict and item:
            if not _mapping(item, indent + 2, out, seen, head + " "):
                return False
        else:
            line = _leaf(item, head, indent, seen)
            if line is None:
                return False
            out.append(line)
    return True


def _emit(data: Any) -> str | None:
    if type(data) is not dict or not data:
        return None
    out: list[str] = []
    try:
        if not _mapping(data, 0, out, set(), ""):
            return None
    except RecursionError:
        return None
    out.append("")
    return "\n".join(out)


def emit_canonical(data: Any) -> str | None:
    """`data` as the dumper writes it, or None when it is outside the subset written here
    (then PyYAML writes it): a non-empty mapping whose keys are short one-line strings and
    whose values are strings, integers, booleans, None, lists and mappings of those. The
    layout is libyaml's: without it PyYAML's own emitter writes everything, as before."""
    return _emit(data) if _has_libyaml() else None


def _has_libyaml() -> bool:
    """Whether PyYAML has libyaml, asked without importing PyYAML (a write that stays in the
    canonical subset never needs it): its C module can be found."""
    if not _LIBYAML:
        import importlib.machinery
        import importlib.util
        import os

        try:
            spec = importlib.util.find_spec("yaml")  # finds the package, imports nothing
        except (ImportError, ValueError):
            spec = None
        folders = list(spec.submodule_search_locations or []) if spec else []
        names = [f"_yaml{suffix}" for suffix in importlib.machinery.EXTENSION_SUFFIXES]
        _LIBYAML.append(any(os.path.exists(os.path.join(folder, name))
                            for folder in folders for name in names))
    return _LIBYAML[0]


# --- reading the canonical subset back ------------------------------------------------


class _NotCanonical(Exception):
    """The text is not the fast emitter's output: PyYAML reads it."""


NOT_CANONICAL: Any = object()  # what parse_canonical answers for any other text
_INT = re.compile(r"-?(?:0|[1-9][0-9]*)\Z")
_WORDS: dict[str, Any] = {"null": None, "true": True, "false": False}


def _quoted_end(text: str, start: int) -> int:
    """The index just past the single-quoted text opening at `start`, or -1."""
    at = start + 1
    while True:
        at = text.find("'", at)
        if at == -1:
            return -1
        if text.startswith("'", at + 1):
            at += 2
            continue
        return at + 1


def _unquote(text: str) -> str:
    return text[1:-1].replace("''", "'")


def _quoted_key(line: str) -> tuple[str, str]:
    """A line's single-quoted key and the rest after `: ` ("" when the value follows
    below)."""
    end = _quoted_end(line, 0)
    if end == -1:
        raise _NotCanonical
    if line.startswith(": ", end):
        rest = line[end + 2:]
        if rest:
            return _unquote(line[:end]), rest
    elif end == len(line) - 1 and line.endswith(":"):
        return _unquote(line[:end]), ""
    raise _NotCanonical


def _typed(plain: str) -> Any:
    """A one-line plain value: the words and integers the emitter writes plain, else text
    (the emitter decides afterwards whether that text would have been written plain)."""
    if plain in _WORDS:
        return _WORDS[plain]
    if plain[0] in "-0123456789" and _INT.match(plain):
        return int(plain)
    return plain


def _plain(rest: str, lines: list[str], at: int, indent: int) -> tuple[Any, int]:
    pad = " " * indent
    parts = [rest]
    while at + 1 < len(lines) and lines[at + 1].startswith(pad):
        at += 1
        parts.append(lines[at][indent:])
    if len(parts) > 1:
        return " ".join(parts), at + 1
    return _typed(rest), at + 1


def _quoted(rest: str, lines: list[str], at: int, indent: int) -> tuple[str, int]:
    pad = " " * indent
    while (end := _quoted_end(rest, 0)) == -1:
        at += 1
        if at == len(lines) or not lines[at].startswith(pad):
            raise _NotCanonical
        rest += " " + lines[at][indent:]
    if end != len(rest):
        raise _NotCanonical
    return _unquote(rest), at + 1


def _block(rest: str, lines: list[str], at: int, indent: int) -> tuple[str, int]:
    pad = " " * indent
    body = []
    at += 1
    while at < len(lines) and (lines[at].startswith(pad) or not lines[at]):
        body.append(lines[at][indent:])
        at += 1
    if not body or not body[-1]:
        raise _NotCanonical
    return "\n".join(body) + ("\n" if rest == "|" else ""), at


def _scalar(rest: str, lines: list[str], at: int, indent: int) -> tuple[Any, int]:
    """The value written after `key:` or `-` on line `at`; `indent` is where its
    continuation lines start."""
    if rest.startswith("'"):
        return _quoted(rest, lines, at, indent)
    if rest == "|" or rest == "|-":
        return _block(rest, lines, at, indent)
    if rest == "[]":
        return [], at + 1
    if rest == "{}":
        return {}, at + 1
    if not rest:
        raise _NotCanonical
    return _plain(rest, lines, at, indent)


def _read_mapping(lines: list[str], at: int, indent: int) -> tuple[dict, int]:
    """A block mapping whose keys start at column `indent`. The common line, `key: value`
    on one line, is read inline; anything longer goes through `_scalar`."""
    out: dict[str, Any] = {}
    count = len(lines)
    pad = " " * indent
    more = pad + "  "
    items = pad + "- "
    while at < count:
        line = lines[at]
        if indent:
            if not line.startswith(pad):
                break
            line = line[indent:]
        first = line[:1]
        if first == "'":
            end = line.find("': ")
            key = line[1:end]
            if end > 0 and "'" not in key:
                rest = line[end + 3:]
                if not rest:
                    raise _NotCanonical
            else:
                key, rest = _quoted_key(line)
        else:
            key, colon, rest = line.partition(": ")
            if first == " " or first == "-" and key[1:2] == " ":
                raise _NotCanonical
            if not colon:
                if not line.endswith(":"):
                    raise _NotCanonical
                key = line[:-1]
            elif not rest:
                raise _NotCanonical
        if key in out:
            raise _NotCanonical
        at += 1
        following = lines[at] if at < count else ""
        if not rest:
            if following.startswith(items):
                out[key], at = _read_sequence(lines, at, indent)
            else:
                out[key], at = _read_mapping(lines, at, indent + 2)
        elif following.startswith(more):
            out[key], at = _scalar(rest, lines, at - 1, indent + 2)
        elif rest[0] == "'":
            if len(rest) < 2 or rest[-1] != "'":
                raise _NotCanonical
            value = rest[1:-1]
            out[key] = value.replace("''", "'") if "'" in value else value
        elif rest in _WORDS:
            out[key] = _WORDS[rest]
        elif rest[0] in "-0123456789" and _INT.match(rest):
            out[key] = int(rest)
        elif rest[0] not in "|[{":
            out[key] = rest
        else:
            out[key], at = _scalar(rest, lines, at - 1, indent + 2)
    if not out:
        raise _NotCanonical
    return out, at


def _read_sequence(lines: list[str], at: int, indent: int) -> tuple[list, int]:
    out: list[Any] = []
    count = len(lines)
    head = " " * indent + "- "
    cut = indent + 2
    more = " " * cut
    while at < count and lines[at].startswith(head):
        rest = lines[at][cut:]
        if rest.startswith("'"):
            end = _quoted_end(rest, 0)
            mapping = end != -1 and rest.startswith(":", end)
        else:
            mapping = ": " in rest or rest.endswith(":")
        if mapping:
            lines[at] = more + rest
            item, at = _read_mapping(lines, at, cut)
        elif (rest and rest[0] not in "'|[{"
              and (at + 1 == count or not lines[at + 1].startswith(more))):
            item = _typed(rest)
            at += 1
        else:
            item, at = _scalar(rest, lines, at, cut)
        out.append(item)
    return out, at


def parse_canonical(text: str) -> Any:
    """The value `text` holds when it is exactly what `emit_canonical` writes for that
    value, else NOT_CANONICAL (then PyYAML must read it)."""
    if not text.endswith("\n"):
        return NOT_CANONICAL
    lines = text.split("\n")
    lines.pop()
    try:
        value, at = _read_mapping(lines, 0, 0)
    except (_NotCanonical, RecursionError, ValueError):
        return NOT_CANONICAL
    if at != len(lines) or _emit(value) != text:
        return NOT_CANONICAL
    return value

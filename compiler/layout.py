"""A small Wadler-style layout engine: documents of text, line breaks, groups and indentation.

A group is printed flat (its ``line``s as spaces, ``softline``s as nothing) when it fits in
the remaining width and contains no hard line break; otherwise each of its lines breaks. The
formatter (:mod:`compiler.formatter`) builds documents; this module only lays them out.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Line:
    """A break: ``flat`` text when the enclosing group fits, else a newline. ``hard`` always breaks."""

    flat: str = " "
    hard: bool = False


@dataclass(frozen=True, slots=True)
class Concat:
    parts: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class Group:
    doc: object


@dataclass(frozen=True, slots=True)
class Nest:
    indent: int
    doc: object


LINE = Line(" ")
SOFTLINE = Line("")
HARDLINE = Line("", hard=True)


def concat(*parts: object) -> Concat:
    return Concat(tuple(p for p in parts if p != ""))


def has_hard_break(doc: object, cache: dict[int, bool]) -> bool:
    """Whether a document contains a forced break (a hard line or text with a newline)."""
    key = id(doc)
    if key in cache:
        return cache[key]
    result: bool
    if isinstance(doc, str):
        result = "\n" in doc
    elif isinstance(doc, Line):
        result = doc.hard
    elif isinstance(doc, Concat):
        result = any(has_hard_break(p, cache) for p in doc.parts)
    elif isinstance(doc, Group | Nest):
        result = has_hard_break(doc.doc, cache)
    else:  # pragma: no cover - documents are built by the formatter only
        raise TypeError(f"not a document: {doc!r}")
    cache[key] = result
    return result


def render(doc: object, width: int = 100) -> str:
    """Lay a document out in ``width`` columns."""
    out: list[str] = []
    column = 0
    # A separating space right after a forced break (e.g. after a trailing comment) is dropped.
    at_line_start = True
    hard_cache: dict[int, bool] = {}
    # Work stack of (indent, flat?, doc); processed iteratively so depth is not limited.
    stack: list[tuple[int, bool, object]] = [(0, False, doc)]
    while stack:
        indent, flat, item = stack.pop()
        if isinstance(item, str):
            if item == " " and at_line_start:
                continue
            if item:
                at_line_start = False
            out.append(item)
            newline = item.rfind("\n")
            column = len(item) - newline - 1 if newline != -1 else column + len(item)
        elif isinstance(item, Line):
            if flat and not item.hard:
                if item.flat:
                    at_line_start = False
                out.append(item.flat)
                column += len(item.flat)
            else:
                if at_line_start and out and out[-1].startswith("\n") and not out[-1].strip(" \n"):
                    # Two breaks in a row (a comment's break, then the layout's): keep one.
                    out.pop()
                # Strip trailing spaces before the newline.
                while out and out[-1].endswith(" "):
                    out[-1] = out[-1].rstrip(" ")
                out.append("\n" + " " * indent)
                column = indent
                at_line_start = True
        elif isinstance(item, Concat):
            for part in reversed(item.parts):
                stack.append((indent, flat, part))
        elif isinstance(item, Nest):
            stack.append((indent + item.indent, flat, item.doc))
        elif isinstance(item, Group):
            if flat:
                stack.append((indent, True, item.doc))
            else:
                fits = not has_hard_break(item.doc, hard_cache) and _fits(
                    item.doc, width - column, stack
                )
                stack.append((indent, fits, item.doc))
    return "".join(out)


def _fits(doc: object, remaining: int, rest: list[tuple[int, bool, object]]) -> bool:
    """Whether ``doc`` laid out flat, plus the text up to the next break after it, fits."""
    todo: list[tuple[bool, object]] = [(True, doc)]
    rest_index = len(rest) - 1
    while remaining >= 0:
        if not todo:
            # Continue into what follows the group, up to its first possible break.
            if rest_index < 0:
                return True
            _, rest_flat, following = rest[rest_index]
            rest_index -= 1
            todo.append((rest_flat, following))
            continue
        flat, item = todo.pop()
        if isinstance(item, str):
            remaining -= len(item)
        elif isinstance(item, Line):
            if not flat or item.hard:
                return True
            remaining -= len(item.flat)
        elif isinstance(item, Concat):
            todo.extend((flat, p) for p in reversed(item.parts))
        elif isinstance(item, Nest | Group):
            todo.append((flat, item.doc))
    return False

"""The formatter behind ``dfc fmt`` and the language server: one canonical layout for .dsql files.

It works on concrete syntax (parse trees that keep every token) so nothing the author wrote
is lost: string literals are printed exactly as written (their form and content are data),
and every comment is kept, attached to the token it precedes or trails. Keywords are upper
case, ``df.*`` names lower case, named arguments use ``=>``, operators have one space around
them, and an expression that does not fit in the line width breaks before its operators with
one operand per line. ``parse(format(x))`` yields the same IR as ``parse(x)``, and formatting
is idempotent; a file with syntax errors is returned unchanged.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from functools import cache

from lark import Lark, Token, Tree

from compiler.diagnostics import DiagnosticSink
from compiler.ir import Comment
from compiler.layout import HARDLINE, LINE, SOFTLINE, Group, Nest, concat, render
from compiler.lower import lower
from compiler.parser import grammar_text, parse
from compiler.source import SourceFile

INDENT = 4
WIDTH = 100

Subtree = Tree[Token]


@cache
def _concrete_parser() -> Lark:
    """The grammar again, keeping punctuation tokens so they can carry comments."""
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="basic",
        strict=True,
        regex=True,
        propagate_positions=True,
        maybe_placeholders=False,
        keep_all_tokens=True,
    )


def format_text(text: str, filename: str = "<input>", width: int = WIDTH) -> str:
    """The canonically formatted text, or ``text`` itself when it has syntax errors."""
    source = SourceFile(filename, text)
    sink = DiagnosticSink()
    parsed = parse(source, sink)
    # Lexical mistakes found while lowering (two literals on one line, bad escapes) count too:
    # laying such a file out could turn a mistake into a different, valid program.
    lower(parsed)
    if any(d.code.startswith("DFC1") and d.is_error for d in sink.items):
        return text
    trees: list[tuple[Subtree, list[Token]]] = []
    for statement in parsed.statements:
        tree = _concrete_tree(statement.tokens)
        if tree is None:
            return text
        trees.append((tree, statement.tokens))
    return _Formatter(source, parsed.comments, width).file(trees)


def _concrete_tree(tokens: list[Token]) -> Subtree | None:
    parser = _concrete_parser().parse_interactive(start="start")
    try:
        for token in tokens:
            parser.feed_token(token)
        tree: Subtree = parser.feed_eof(tokens[-1])  # type: ignore[no-untyped-call]
    except Exception:
        return None
    return tree


@dataclass
class _Attached:
    leading: dict[int, list[Comment]] = field(default_factory=dict)
    trailing: dict[int, list[Comment]] = field(default_factory=dict)


class _Formatter:
    def __init__(self, source: SourceFile, comments: list[Comment], width: int) -> None:
        self.source = source
        self.comments = comments
        self.width = width
        self.attached = _Attached()

    # -- file level ---------------------------------------------------------------------------

    def file(self, statements: list[tuple[Subtree, list[Token]]]) -> str:
        text = self.source.text
        starts = [c.span.start for c in self.comments]
        used = [False] * len(self.comments)
        chunks: list[str] = []
        previous_end = 0
        for tree, tokens in statements:
            first, last = tokens[0].start_pos or 0, tokens[-1].end_pos or 0
            # Comments before this statement (and after the previous one) stand on their own.
            lo = bisect.bisect_left(starts, previous_end)
            hi = bisect.bisect_left(starts, first)
            between = [i for i in range(lo, hi) if not used[i]]
            # A comment on the same line right after the previous statement trails it.
            if (
                chunks
                and between
                and "\n" not in text[previous_end : self.comments[between[0]].span.start]
            ):
                chunks[-1] = chunks[-1] + "  " + self.comments[between[0]].text.rstrip()
                used[between[0]] = True
                between = between[1:]
            cursor = previous_end
            for i in between:
                comment = self.comments[i]
                chunks.append(
                    _blank_before(text, cursor, comment.span.start, bool(chunks))
                    + comment.text.rstrip()
                )
                used[i] = True
                cursor = comment.span.end
            # Comments inside the statement attach to its tokens.
            inner = [i for i in range(hi, bisect.bisect_left(starts, last)) if not used[i]]
            self._attach(tokens, [self.comments[i] for i in inner])
            for i in inner:
                used[i] = True
            doc = self.statement(tree)
            body = render(concat(doc, ";"), self.width)
            chunks.append(_blank_before(text, cursor, first, bool(chunks)) + body)
            previous_end = self._statement_end(last)
        rest = [self.comments[i] for i in range(len(self.comments)) if not used[i]]
        for comment in rest:
            if chunks and "\n" not in text[previous_end : comment.span.start]:
                chunks[-1] = chunks[-1] + "  " + comment.text.rstrip()
            else:
                chunks.append(
                    _blank_before(text, previous_end, comment.span.start, bool(chunks))
                    + comment.text.rstrip()
                )
            previous_end = comment.span.end
        return "\n".join(chunks) + "\n" if chunks else ""

    def _statement_end(self, last: int) -> int:
        """Offset just past the statement's ``;`` (or its last token when there is none)."""
        text = self.source.text
        i = last
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        return i + 1 if i < len(text) and text[i] == ";" else last

    def _attach(self, tokens: list[Token], comments: list[Comment]) -> None:
        """Give each comment to the token it trails (same line) or else to the next token."""
        text = self.source.text
        positions = [t.start_pos or 0 for t in tokens]
        for comment in comments:
            index = bisect.bisect_left(positions, comment.span.start)
            previous = tokens[index - 1] if index > 0 else None
            if (
                previous is not None
                and "\n" not in text[previous.end_pos or 0 : comment.span.start]
            ):
                self.attached.trailing.setdefault(id(previous), []).append(comment)
            elif index < len(tokens):
                self.attached.leading.setdefault(id(tokens[index]), []).append(comment)
            elif previous is not None:
                self.attached.trailing.setdefault(id(previous), []).append(comment)
        # Tokens in the concrete tree are the same objects the parser was fed.

    # -- tokens -------------------------------------------------------------------------------

    def token(self, token: Token, text: str | None = None) -> object:
        shown = str(token) if text is None else text
        parts: list[object] = []
        for comment in self.attached.leading.get(id(token), ()):
            parts.append(comment.text.rstrip())
            parts.append(HARDLINE if _needs_break(comment) else " ")
        parts.append(shown)
        for comment in self.attached.trailing.get(id(token), ()):
            parts.append(
                " " + comment.text.rstrip()
                if comment.text.startswith("/*")
                else "  " + comment.text.rstrip()
            )
            if not comment.text.startswith("/*") or _needs_break(comment):
                parts.append(HARDLINE)
        return concat(*parts)

    # -- syntax -------------------------------------------------------------------------------

    def statement(self, tree: Subtree) -> object:
        stmt = tree.children[0]
        assert isinstance(stmt, Tree)
        if stmt.data == "select_stmt":
            keyword, expr = stmt.children
            assert isinstance(keyword, Token)
            return concat(self.token(keyword, "SELECT"), " ", self.node(expr))
        return self.node(stmt.children[0])

    def node(self, item: Subtree | Token) -> object:
        if isinstance(item, Token):
            return self.token(item, _token_text(item))
        method = getattr(self, f"_{item.data}", None)
        if method is None:  # pragma: no cover - every rule has a printer
            raise KeyError(f"no printer for rule {item.data}")
        result: object = method(item)
        return result

    def _chain(self, tree: Subtree) -> object:
        children = tree.children
        first = self.node(children[0])
        rest: list[object] = []
        for i in range(1, len(children), 2):
            operator, operand = children[i], children[i + 1]
            assert isinstance(operator, Token)
            rest.append(concat(LINE, self.token(operator), " ", self.node(operand)))
        return Group(concat(first, Nest(INDENT, concat(*rest))))

    _seq = _race = _join = _chain

    def _if_else(self, tree: Subtree) -> object:
        condition, ask, then, otherwise_op, otherwise = tree.children
        assert isinstance(ask, Token) and isinstance(otherwise_op, Token)
        return Group(
            concat(
                self.node(condition),
                Nest(
                    INDENT,
                    concat(
                        LINE,
                        self.token(ask),
                        " ",
                        self.node(then),
                        LINE,
                        self.token(otherwise_op),
                        " ",
                        self.node(otherwise),
                    ),
                ),
            )
        )

    def _if_then(self, tree: Subtree) -> object:
        condition, ask, then = tree.children
        assert isinstance(ask, Token)
        return Group(
            concat(
                self.node(condition),
                Nest(INDENT, concat(LINE, self.token(ask), " ", self.node(then))),
            )
        )

    def _loop(self, tree: Subtree) -> object:
        operator, body = tree.children
        assert isinstance(operator, Token)
        return concat(self.token(operator), " ", self.node(body))

    def _bind(self, tree: Subtree) -> object:
        target, operator, name = tree.children
        assert isinstance(operator, Token)
        return concat(self.node(target), " ", self.token(operator), " ", self.node(name))

    def _undo(self, tree: Subtree) -> object:
        forward, operator, undo = tree.children
        assert isinstance(operator, Token)
        return Group(
            concat(
                self.node(forward),
                Nest(INDENT, concat(LINE, self.token(operator), " ", self.node(undo))),
            )
        )

    def _cast(self, tree: Subtree) -> object:
        value, operator, type_name = tree.children
        assert isinstance(operator, Token)
        return concat(self.node(value), self.token(operator), self.node(type_name))

    def _type_name(self, tree: Subtree) -> object:
        return concat(*(self.node(child) for child in tree.children))

    def _paren(self, tree: Subtree) -> object:
        open_, inner, close = tree.children
        assert isinstance(open_, Token) and isinstance(close, Token)
        return Group(
            concat(
                self.token(open_),
                Nest(INDENT, concat(SOFTLINE, self.node(inner))),
                SOFTLINE,
                self.token(close),
            )
        )

    def _negative(self, tree: Subtree) -> object:
        minus, number = tree.children
        assert isinstance(minus, Token)
        return concat(self.token(minus), self.node(number))

    def _number(self, tree: Subtree) -> object:
        return self.node(tree.children[0])

    def _null(self, tree: Subtree) -> object:
        return self.node(tree.children[0])

    _true = _false = _null

    def _literal(self, tree: Subtree) -> object:
        parts: list[object] = []
        for index, child in enumerate(tree.children):
            assert isinstance(child, Token)
            if index:
                # Adjacent literals join only across a line break: keep one.
                parts.append(HARDLINE)
            parts.append(self.token(child))
        if len(parts) == 1:
            return parts[0]
        return concat(*parts)

    def _concat(self, tree: Subtree) -> object:
        left = tree.children[0]
        operator = tree.children[1]
        assert isinstance(operator, Token)
        right = Tree("literal", tree.children[2:])
        return concat(self.node(left), " ", self.token(operator), " ", self._literal(right))

    def _call(self, tree: Subtree) -> object:
        name, open_, *middle, close = tree.children
        assert isinstance(open_, Token) and isinstance(close, Token)
        arguments = middle[0] if middle else None
        head = concat(self.node(name), self.token(open_))
        if arguments is None:
            return concat(head, self.token(close))
        assert isinstance(arguments, Tree)
        items: list[object] = []
        children = arguments.children
        for _index, child in enumerate(children):
            if isinstance(child, Token) and child.type == "COMMA":
                items.append(concat(self.token(child), LINE))
            else:
                items.append(self.node(child))
        return Group(
            concat(head, Nest(INDENT, concat(SOFTLINE, *items)), SOFTLINE, self.token(close))
        )

    def _qualified_name(self, tree: Subtree) -> object:
        return concat(*(self.node(child) for child in tree.children))

    def _positional(self, tree: Subtree) -> object:
        return self.node(tree.children[0])

    def _named(self, tree: Subtree) -> object:
        name, arrow, value = tree.children
        assert isinstance(name, Token) and isinstance(arrow, Token)
        return concat(self.token(name), " ", self.token(arrow, "=>"), " ", self.node(value))


def _needs_break(comment: Comment) -> bool:
    return comment.text.startswith("--") or "\n" in comment.text


def _token_text(token: Token) -> str:
    kind = token.type
    text = str(token)
    if kind == "IDENT" and not text.startswith('"'):
        return text.lower()
    if kind in ("SELECT", "NULL", "TRUE", "FALSE"):
        return text.upper()
    return text


def _blank_before(text: str, start: int, end: int, has_previous: bool) -> str:
    """One blank line where the author left at least one, else nothing."""
    if not has_previous:
        return ""
    gap = text[start:end]
    return "\n" if gap.count("\n") >= 2 else ""

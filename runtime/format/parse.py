"""Parser for ``--format`` templates: text -> a tree of nodes (the tokens of each
action come from ``lex``).

The syntax is Go's text/template minus ``define``/``template``/``block`` (docker's
``--format`` never needs them), with Go's parse error texts. Split from the lexer
(lex.py) and the executor (template.py) so each reads alone; the tree is plain slotted
classes. A node list holds literal text (str) and Action / Control / Jump nodes.
"""

from __future__ import annotations

from runtime.format.funcs import FUNCS
from runtime.format.lex import KEYWORDS, WS, ParseError, Tok, lex_action

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Operand:
    """One argument of a command: ``.A.B``, ``$x.C``, ``.``, a literal, ``nil``, a function
    name, or a parenthesized pipeline (``value`` holds the literal, variable or Pipe)."""

    __slots__ = ("kind", "pos", "src", "value", "names")

    def __init__(self, kind: str, pos: int, src: str, value: Any = None,
                 names: list[str] | None = None) -> None:
        self.kind = kind  # field var dot lit nil ident pipe
        self.pos, self.src, self.value = pos, src, value
        self.names: list[str] = [] if names is None else names


class Cmd:
    """One stage of a pipeline: operands, the first being what is called or evaluated."""

    __slots__ = ("pos", "src", "args")

    def __init__(self, pos: int, src: str, args: list[Operand]) -> None:
        self.pos, self.src, self.args = pos, src, args


class Pipe:
    """``$x := a | b``: the commands, and the variables it declares or assigns."""

    __slots__ = ("pos", "decl", "assign", "cmds")

    def __init__(self, pos: int, decl: list[str], assign: bool, cmds: list[Cmd]) -> None:
        self.pos, self.decl, self.assign, self.cmds = pos, decl, assign, cmds


class Action:
    """``{{pipeline}}``: printed unless it declares a variable."""

    __slots__ = ("pos", "pipe")

    def __init__(self, pos: int, pipe: Pipe) -> None:
        self.pos, self.pipe = pos, pipe


class Control:
    """``{{if}}``, ``{{with}}`` or ``{{range}}`` with its body and ``{{else}}`` body."""

    __slots__ = ("kind", "pos", "pipe", "body", "else_body")

    def __init__(self, kind: str, pos: int, pipe: Pipe, body: list[Any],
                 else_body: list[Any]) -> None:
        self.kind = kind  # if with range
        self.pos, self.pipe, self.body, self.else_body = pos, pipe, body, else_body


class Jump:
    """``{{break}}`` or ``{{continue}}`` inside a range."""

    __slots__ = ("kind", "pos")

    def __init__(self, kind: str, pos: int) -> None:
        self.kind, self.pos = kind, pos  # break continue


class _Parser:
    """Builds the tree from text and actions; checks functions and variables as Go does."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.items = self._split(text)
        self.i = 0
        self.vars: list[str] = ["$"]
        self.range_depth = 0

    def _split(self, text: str) -> list[Any]:
        items: list[Any] = []
        p, trim_next = 0, False
        while True:
            j = text.find("{{", p)
            chunk = text[p:] if j < 0 else text[p:j]
            k = j + 2
            trim_left = j >= 0 and text.startswith("-", k) and text[k + 1: k + 2] in tuple(WS)
            if trim_next:
                chunk = chunk.lstrip(WS)
            if trim_left:
                chunk = chunk.rstrip(WS)
                k += 1
            if chunk:
                items.append(chunk)
            if j < 0:
                return items
            q = k
            while q < len(text) and text[q] in WS and trim_left:
                q += 1
            if text.startswith("/*", q):
                close = text.find("*/", q + 2)
                if close < 0:
                    raise ParseError(j, "unclosed comment")
                r = close + 2
                if text.startswith("}}", r):
                    p, trim_next = r + 2, False
                elif text.startswith(" -}}", r):
                    p, trim_next = r + 4, True
                else:
                    raise ParseError(j, "comment ends before closing delimiter")
                continue
            toks, p, trim_next = lex_action(text, k)
            items.append((j, toks))

    def parse(self) -> list[Any]:
        nodes, term = self._list()
        if term is not None:
            raise ParseError(term[0], f"unexpected {{{{{term[1]}}}}}")
        return nodes

    def _list(self) -> tuple[list[Any], tuple[int, str, list[Tok]] | None]:
        """Nodes up to an {{end}} or {{else ...}}, which is returned unconsumed-ish."""
        nodes: list[Any] = []
        while self.i < len(self.items):
            item = self.items[self.i]
            self.i += 1
            if isinstance(item, str):
                nodes.append(item)
                continue
            pos, toks = item
            if not toks:
                raise ParseError(pos, "missing value for command")
            head = toks[0]
            word = head.value if head.kind == "ident" else None
            if word in ("end", "else"):
                return nodes, (pos, word, toks[1:])
            if word in ("if", "with", "range"):
                nodes.append(self._control(word, pos, toks[1:]))
            elif word in ("break", "continue"):
                if self.range_depth == 0:
                    raise ParseError(pos, f"{{{{{word}}}}} outside {{{{range}}}}")
                nodes.append(Jump(word, pos))
            elif word in ("define", "template", "block"):
                raise ParseError(pos, f"{{{{{word}}}}} is not supported by box")
            else:
                nodes.append(Action(pos, self._pipe(toks, "command", pos)))
        return nodes, None

    def _control(self, kind: str, pos: int, toks: list[Tok]) -> Control:
        mark = len(self.vars)
        pipe = self._pipe(toks, kind, pos, allow_two=kind == "range")
        self.range_depth += kind == "range"
        body, term = self._list()
        self.range_depth -= kind == "range"
        else_body: list[Any] = []
        if term is None:
            raise ParseError(len(self.text), "unexpected EOF")
        if term[1] == "else":
            rest = term[2]
            if rest and rest[0].kind == "ident" and rest[0].value in ("if", "with"):
                del self.vars[mark:]
                else_body = [self._control(rest[0].value, term[0], rest[1:])]
                return Control(kind, pos, pipe, body, else_body)
            if rest:
                raise ParseError(term[0], "unexpected token in {{else}}")
            else_body, term = self._list()
            if term is None or term[1] != "end":
                raise ParseError(term[0] if term else len(self.text),
                                  "unexpected EOF" if term is None else "expected end; found "
                                                                        "{{else}}")
        del self.vars[mark:]
        return Control(kind, pos, pipe, body, else_body)

    def _pipe(self, toks: list[Tok], ctx: str, pos: int, allow_two: bool = False) -> Pipe:
        decl: list[str] = []
        assign = False
        kinds = [t.kind for t in toks]
        if kinds[:2] in (["var", "decl"], ["var", "assign"]):
            decl, assign = [toks[0].value], kinds[1] == "assign"
            toks = toks[2:]
        elif allow_two and kinds[:4] == ["var", "comma", "var", "decl"]:
            decl = [toks[0].value, toks[2].value]
            toks = toks[4:]
        if assign and decl[0] not in self.vars:
            raise ParseError(pos, f'undefined variable "{decl[0]}"')
        self.toks, self.k = toks, 0
        pipe = self._pipeline(pos, ctx, decl, assign)
        if self.k < len(self.toks):
            t = self.toks[self.k]
            raise ParseError(
                t.pos, f"unexpected {self.text[t.pos : t.end]!r} in {ctx}".replace("'", '"')
            )
        if not assign:
            self.vars.extend(decl)
        return pipe

    def _pipeline(self, pos: int, ctx: str, decl: list[str], assign: bool) -> Pipe:
        cmds: list[Cmd] = []
        while True:
            args: list[Operand] = []
            while self.k < len(self.toks) and self.toks[self.k].kind not in ("pipe", "rparen"):
                args.append(self._operand())
            if not args:
                raise ParseError(pos, f"missing value for {ctx}")
            src = self.text[args[0].pos: self.toks[self.k - 1].end]
            cmds.append(Cmd(args[0].pos, src, args))
            if self.k < len(self.toks) and self.toks[self.k].kind == "pipe":
                self.k += 1
                continue
            return Pipe(pos, decl, assign, cmds)

    def _operand(self) -> Operand:
        t = self.toks[self.k]
        self.k += 1
        src = self.text[t.pos:t.end]
        if t.kind == "field":
            op = Operand("field", t.pos, src, names=[t.value])
        elif t.kind == "var":
            if t.value not in self.vars:
                raise ParseError(t.pos, f'undefined variable "{t.value}"')
            op = Operand("var", t.pos, src, t.value)
        elif t.kind == "dot":
            op = Operand("dot", t.pos, src)
        elif t.kind in ("str", "num"):
            op = Operand("lit", t.pos, src, t.value)
        elif t.kind == "lparen":
            inner = self._pipeline(t.pos, "parenthesized pipeline", [], False)
            if self.k >= len(self.toks) or self.toks[self.k].kind != "rparen":
                raise ParseError(t.pos, "unclosed left paren")
            self.k += 1
            op = Operand("pipe", t.pos, self.text[t.pos:self.toks[self.k - 1].end], inner)
        elif t.kind == "ident" and t.value in ("true", "false"):
            op = Operand("lit", t.pos, src, t.value == "true")
        elif t.kind == "ident" and t.value == "nil":
            op = Operand("nil", t.pos, src)
        elif t.kind == "ident" and t.value not in KEYWORDS:
            if t.value not in FUNCS:
                raise ParseError(t.pos, f'function "{t.value}" not defined')
            op = Operand("ident", t.pos, src, t.value)
        else:
            raise ParseError(t.pos, f"unexpected {src!r} in operand".replace("'", '"'))
        while (
            self.k < len(self.toks)
            and self.toks[self.k].kind == "field"
            and self.toks[self.k].pos == self.toks[self.k - 1].end
            and op.kind in ("field", "var", "pipe")
        ):
            op.names.append(self.toks[self.k].value)
            op.src = self.text[op.pos:self.toks[self.k].end]
            self.k += 1
        return op


def parse(text: str) -> list[Any]:
    """The node list of a whole template; raises ParseError."""
    return _Parser(text).parse()

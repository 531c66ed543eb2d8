"""The subset of Go's text/template that docker users type into ``--format``.

Docker renders ``--format`` with Go templates plus a few helper functions
(docker/cli ``templates``: json split join title lower upper pad truncate), so
people carry templates between ``docker`` and ``box``. This module parses and runs
those templates over plain dicts (Docker's JSON shapes) and Python objects, with
Go's output rules (``<no value>`` for a missing map key, ``map[a:1]`` for maps,
``[a b]`` for slices) and Go's error texts, raised as ``InvalidArgument``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import quote_plus

from runtime.errors import InvalidArgument

# ----------------------------------------------------------------------------- values


class _NoValue:
    """Go's invalid reflect.Value: what a missing map key evaluates to."""

    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE: Any = _NoValue()


class _Headers:
    """The dot while rendering a ``table`` header: fields become column titles."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers

    def title(self, names: list[str]) -> str:
        joined = ".".join(names)
        if joined in self.headers:
            return self.headers[joined]
        return self.headers.get(names[-1], names[-1].upper())


class TemplateError(Exception):
    """Internal: carries Go's message until the public edge wraps it."""


def go_type(v: Any) -> str:
    """Go's name for the type a value would have after encoding/json decoding."""
    if v is None or v is NO_VALUE:
        return "interface {}"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list | tuple):
        return "[]interface {}"
    if isinstance(v, dict):
        return "map[string]interface {}"
    return type(v).__name__


def go_float(f: float, exp_low: int = -4, exp_high: int = 21, json_style: bool = False) -> str:
    """Shortest float text the Go way: ``%v`` switches to ``1e+21`` at 10^21."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if str(f).startswith("-") and not json_style else "0"
    sign, digits, exp = Decimal(repr(f)).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    point = len(digits) + int(exp) - 1  # decimal exponent of the first digit
    neg = "-" if sign else ""
    if point < exp_low or point >= exp_high:
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        e = f"{abs(point):02d}" if not json_style else str(abs(point))
        return f"{neg}{mant}e{'-' if point < 0 else '+'}{e}"
    if point < 0:
        return f"{neg}0.{'0' * (-point - 1)}{ds}"
    if len(ds) <= point + 1:
        return neg + ds + "0" * (point + 1 - len(ds))
    return f"{neg}{ds[:point + 1]}.{ds[point + 1:]}"


def go_print(v: Any, top: bool = True) -> str:
    """fmt.Sprint of a value; a nil or missing value at the top prints ``<no value>``."""
    if v is NO_VALUE or v is None:
        return "<no value>" if top else "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return go_float(v)
    if isinstance(v, int | str):
        return str(v)
    if isinstance(v, list | tuple):
        return "[" + " ".join(go_print(e, False) for e in v) + "]"
    if isinstance(v, dict):
        keys = sorted(v, key=lambda k: (str(type(k)), k))
        return "map[" + " ".join(f"{go_print(k, False)}:{go_print(v[k], False)}" for k in keys) + "]"
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return "{" + " ".join(go_print(getattr(v, f.name), False) for f in dataclasses.fields(v)) + "}"
    return str(v)


def go_quote(s: str) -> str:
    """strconv.Quote: Go-escaped, printable runes kept."""
    out = ['"']
    short = {'"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b", "\f": "\\f",
             "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
    for ch in s:
        if ch in short:
            out.append(short[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "".join(out) + '"'


def go_json(v: Any) -> str:
    """docker's ``json`` helper: compact encoding/json, keys in the order given,
    no HTML escaping (docker/cli calls SetEscapeHTML(false))."""
    if v is None or v is NO_VALUE:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError(f"json: unsupported value: {go_float(v)}")
        return go_float(v, -6, 21, json_style=True)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    if isinstance(v, list | tuple):
        return "[" + ",".join(go_json(e) for e in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(f"{go_json(str(k))}:{go_json(x)}" for k, x in v.items()) + "}"
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return go_json({f.name: getattr(v, f.name) for f in dataclasses.fields(v)})
    if hasattr(v, "__dict__"):
        return go_json({k: x for k, x in vars(v).items() if not k.startswith("_")})
    return go_json(str(v))


_VERB_RE = re.compile(r"%([-+# 0]*)(\d+)?(?:\.(\d*))?(.)", re.S)


def go_sprintf(fmt: str, args: list[Any]) -> str:
    """fmt.Sprintf for the verbs people use: v s d q x X f e g t c b o and %%."""
    out: list[str] = []
    pos, argi = 0, 0
    for m in _VERB_RE.finditer(fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        flags, width, prec, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        if verb == "%":
            out.append("%")
            continue
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[argi]
        argi += 1
        text = _format_verb(verb, arg, prec)
        if width and len(text) < int(width):
            fill = int(width) - len(text)
            if "-" in flags:
                text += " " * fill
            elif "0" in flags and verb in "dfeEgGxXbo" and text[:1] != "%":
                sign = text[0] if text[:1] in "+-" else ""
                text = sign + "0" * fill + text[len(sign):]
            else:
                text = " " * fill + text
        out.append(text)
    out.append(fmt[pos:])
    if argi < len(args):
        extra = ", ".join(f"{go_type(a)}={go_print(a, False)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _format_verb(verb: str, arg: Any, prec: str | None) -> str:
    bad = f"%!{verb}({go_type(arg)}={go_print(arg, False)})"
    if arg is None or arg is NO_VALUE:
        return "<nil>" if verb == "v" else f"%!{verb}(<nil>)"
    if verb == "v":
        return go_print(arg, False)
    if isinstance(arg, list | tuple) and verb in "sqdv":
        return "[" + " ".join(_format_verb(verb, e, prec) for e in arg) + "]"
    if verb == "s":
        if isinstance(arg, str):
            return arg[: int(prec)] if prec else arg
        return bad if isinstance(arg, bool | int | float) else go_print(arg, False)
    if verb == "q":
        if isinstance(arg, str):
            return go_quote(arg)
        return "'" + chr(arg) + "'" if isinstance(arg, int) and not isinstance(arg, bool) else bad
    if verb == "t":
        return go_print(arg) if isinstance(arg, bool) else bad
    if isinstance(arg, bool):
        return bad
    if verb in "dxXbo" and isinstance(arg, int):
        return format(arg, {"d": "d", "x": "x", "X": "X", "b": "b", "o": "o"}[verb])
    if verb in "xX" and isinstance(arg, str):
        h = arg.encode().hex()
        return h.upper() if verb == "X" else h
    if verb == "c" and isinstance(arg, int):
        return chr(arg)
    if verb in "feEgGF" and isinstance(arg, float):
        if verb in "gG" and not prec:
            return go_float(arg)
        return format(arg, f".{prec or 6}{verb.lower() if verb == 'F' else verb}")
    return bad


def go_truth(v: Any) -> bool:
    """Go's isTrue: zero values are false; structs are always true."""
    if v is None or v is NO_VALUE:
        return False
    if isinstance(v, bool | int | float | str | list | tuple | dict):
        return bool(v)
    return True


# ----------------------------------------------------------------------------- functions


def _need_str(v: Any) -> str:
    if not isinstance(v, str):
        raise TemplateError(f"wrong type for value; expected string; got {go_type(v)}")
    return v


def _go_title(s: str) -> str:
    """strings.Title: upper-case the first letter of each word, leave the rest."""
    out, prev_sep = [], True
    for ch in s:
        out.append(ch.upper() if prev_sep and len(ch.upper()) == 1 else ch)
        prev_sep = not (ch.isalnum() or ch == "_")
    return "".join(out)


def _go_split(s: str, sep: str) -> list[str]:
    return list(s) if sep == "" else s.split(sep)


def _join(items: Any, sep: str) -> str:
    if not isinstance(items, list | tuple):
        raise TemplateError(f"wrong type for value; expected []string; got {go_type(items)}")
    return _need_str(sep).join(e if isinstance(e, str) else go_print(e, False) for e in items)


def _pad(s: Any, prefix: int, suffix: int) -> str:
    s = _need_str(s)
    return s if s == "" else " " * prefix + s + " " * suffix


def _truncate(s: Any, n: int) -> str:
    s = _need_str(s)
    return s if len(s) < n else s[:n]


def _length(v: Any) -> int:
    if isinstance(v, str):
        return len(v.encode())
    if isinstance(v, list | tuple | dict):
        return len(v)
    if v is None or v is NO_VALUE:
        raise TemplateError("error calling len: len of nil pointer")
    raise TemplateError(f"error calling len: len of type {go_type(v)}")


def _index(item: Any, *keys: Any) -> Any:
    for k in keys:
        if item is None or item is NO_VALUE:
            raise TemplateError("error calling index: index of untyped nil")
        if isinstance(item, dict):
            item = item.get(k, NO_VALUE)
        elif isinstance(item, list | tuple | str):
            if not isinstance(k, int) or isinstance(k, bool):
                raise TemplateError(f"error calling index: cannot index slice/array with type {go_type(k)}")
            if not 0 <= k < len(item):
                raise TemplateError(f"error calling index: index out of range: {k}")
            item = item[k] if not isinstance(item, str) else item.encode()[k]
        else:
            raise TemplateError(f"error calling index: can't index item of type {go_type(item)}")
    return item


def _slice(item: Any, *idx: int) -> Any:
    if not isinstance(item, list | tuple | str):
        raise TemplateError(f"error calling slice: can't slice item of type {go_type(item)}")
    lo = idx[0] if idx else 0
    hi = idx[1] if len(idx) > 1 else len(item)
    if not 0 <= lo <= hi <= len(item):
        raise TemplateError(f"error calling slice: index out of range: {hi}")
    return item[lo:hi]


def _cmp_args(a: Any, b: Any) -> None:
    num = (int, float)
    if isinstance(a, bool) != isinstance(b, bool) or (
        not (isinstance(a, num) and isinstance(b, num)) and type(a) is not type(b)
        and a is not None and b is not None
    ):
        raise TemplateError("incompatible types for comparison")


def _eq(a: Any, *bs: Any) -> bool:
    a = None if a is NO_VALUE else a
    for b in bs:
        b = None if b is NO_VALUE else b
        _cmp_args(a, b)
        if a == b:
            return True
    return False


def _ordered(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def cmp(a: Any, b: Any) -> bool:
        _cmp_args(a, b)
        if isinstance(a, bool) or not isinstance(a, int | float | str):
            raise TemplateError("invalid type for comparison")
        return op(a, b)
    return cmp


def _sprint(*args: Any) -> str:
    out = []
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(go_print(a, False))
    return "".join(out)


def _html(*args: Any) -> str:
    s = _sprint(*args)
    for a, b in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&#34;"), ("'", "&#39;")):
        s = s.replace(a, b)
    return s


# name -> (function, min args, max args or None)
FUNCS: dict[str, tuple[Callable[..., Any], int, int | None]] = {
    "json": (go_json, 1, 1),
    "split": (lambda s, sep: _go_split(_need_str(s), _need_str(sep)), 2, 2),
    "join": (_join, 2, 2),
    "title": (lambda s: _go_title(_need_str(s)), 1, 1),
    "lower": (lambda s: "".join(c.lower() if len(c.lower()) == 1 else c for c in _need_str(s)), 1, 1),
    "upper": (lambda s: "".join(c.upper() if len(c.upper()) == 1 else c for c in _need_str(s)), 1, 1),
    "pad": (_pad, 3, 3),
    "truncate": (_truncate, 2, 2),
    "len": (_length, 1, 1),
    "index": (_index, 1, None),
    "slice": (_slice, 1, 3),
    "print": (_sprint, 0, None),
    "println": (lambda *a: " ".join(go_print(x, False) for x in a) + "\n", 0, None),
    "printf": (lambda f, *a: go_sprintf(_need_str(f), list(a)), 1, None),
    "not": (lambda v: not go_truth(v), 1, 1),
    "and": (lambda *a: a[-1], 1, None),  # evaluated lazily in _call
    "or": (lambda *a: a[-1], 1, None),
    "eq": (_eq, 2, None),
    "ne": (lambda a, b: not _eq(a, b), 2, 2),
    "lt": (_ordered(lambda a, b: a < b), 2, 2),
    "le": (_ordered(lambda a, b: a <= b), 2, 2),
    "gt": (_ordered(lambda a, b: a > b), 2, 2),
    "ge": (_ordered(lambda a, b: a >= b), 2, 2),
    "html": (_html, 0, None),
    "urlquery": (lambda *a: quote_plus(_sprint(*a)), 0, None),
}

# docker/cli HeaderFunctions: in a table header these leave the column title alone.
HEADER_IDENTITY = {"json", "split", "join", "title", "lower", "upper", "truncate", "index"}



# ----------------------------------------------------------------------------- lexer

_WS = " \t\r\n"
_KEYWORDS = {"if", "else", "end", "range", "with", "break", "continue", "define", "template", "block"}
_NUM_RE = re.compile(r"[+-]?(0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(\d[\d_]*)?\.?\d[\d_]*([eE][+-]?\d+)?)")
_WORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESC = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a",
        "b": "\b", "f": "\f", "v": "\v"}


@dataclasses.dataclass
class _Tok:
    kind: str  # field var dot str num char ident pipe lparen rparen decl assign comma
    pos: int
    end: int
    value: Any = None


class _ParseError(Exception):
    def __init__(self, pos: int, msg: str) -> None:
        super().__init__(msg)
        self.pos = pos


def _unquote(body: str, pos: int) -> str:
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1: i + 2]
        if nxt in _ESC:
            out.append(_ESC[nxt])
            i += 2
        elif nxt in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[nxt]
            digits = body[i + 2: i + 2 + width]
            if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise _ParseError(pos, "invalid syntax")
            out.append(chr(int(digits, 16)))
            i += 2 + width
        elif nxt[:1].isdigit():
            out.append(chr(int(body[i + 1: i + 4], 8)))
            i += 4
        else:
            raise _ParseError(pos, "invalid syntax")
    return "".join(out)


def _lex_action(text: str, p: int) -> tuple[list[_Tok], int, bool]:
    """Tokens of one action starting after ``{{``; returns (tokens, end, trim_right)."""
    toks: list[_Tok] = []
    n = len(text)
    while True:
        if p >= n:
            raise _ParseError(p, "unclosed action")
        ch = text[p]
        if ch in _WS:
            q = p
            while q < n and text[q] in _WS:
                q += 1
            if text.startswith("-}}", q):
                return toks, q + 3, True
            p = q
            continue
        if text.startswith("}}", p):
            return toks, p + 2, False
        start = p
        if ch == "." and p + 1 < n and (text[p + 1].isalpha() or text[p + 1] == "_"):
            m = _WORD_RE.match(text, p + 1)
            assert m
            toks.append(_Tok("field", start, m.end(), m.group()))
            p = m.end()
        elif ch == "$":
            m = _WORD_RE.match(text, p + 1)
            end = m.end() if m else p + 1
            toks.append(_Tok("var", start, end, text[start:end]))
            p = end
        elif ch == '"':
            q = p + 1
            while q < n and text[q] != '"':
                q += 2 if text[q] == "\\" else 1
            if q >= n:
                raise _ParseError(start, "unterminated quoted string")
            toks.append(_Tok("str", start, q + 1, _unquote(text[p + 1:q], start)))
            p = q + 1
        elif ch == "`":
            q = text.find("`", p + 1)
            if q < 0:
                raise _ParseError(start, "unterminated raw quoted string")
            toks.append(_Tok("str", start, q + 1, text[p + 1:q]))
            p = q + 1
        elif ch == "'":
            q = p + 1
            while q < n and text[q] != "'":
                q += 2 if text[q] == "\\" else 1
            val = _unquote(text[p + 1:q], start) if q < n else ""
            if q >= n or len(val) != 1:
                raise _ParseError(start, "unterminated character constant")
            toks.append(_Tok("num", start, q + 1, ord(val)))
            p = q + 1
        elif ch.isdigit() or (ch in "+-." and p + 1 < n and (text[p + 1].isdigit() or text[p + 1] == ".")):
            m = _NUM_RE.match(text, p)
            word = m.group() if m else ch
            end = p + len(word)
            if end < n and (text[end].isalnum() or text[end] == "."):
                raise _ParseError(start, f'bad number syntax: "{text[p:end + 1]}"')
            try:
                value: Any = int(word.replace("_", ""), 0)
            except ValueError:
                try:
                    value = float(word.replace("_", ""))
                except ValueError:
                    raise _ParseError(start, f'bad number syntax: "{word}"') from None
            toks.append(_Tok("num", start, end, value))
            p = end
        elif ch == ".":
            toks.append(_Tok("dot", start, p + 1))
            p += 1
        elif ch.isalpha() or ch == "_":
            m = _WORD_RE.match(text, p)
            assert m
            toks.append(_Tok("ident", start, m.end(), m.group()))
            p = m.end()
        elif text.startswith(":=", p):
            toks.append(_Tok("decl", start, p + 2))
            p += 2
        elif ch in "|(),=":
            kind = {"|": "pipe", "(": "lparen", ")": "rparen", ",": "comma", "=": "assign"}[ch]
            toks.append(_Tok(kind, start, p + 1))
            p += 1
        else:
            raise _ParseError(start, f"unexpected {ch!r} in command".replace("'", '"'))


# ----------------------------------------------------------------------------- parser


@dataclasses.dataclass
class Operand:
    kind: str  # field var dot lit nil ident pipe
    pos: int
    src: str
    value: Any = None
    names: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Cmd:
    pos: int
    src: str
    args: list[Operand]


@dataclasses.dataclass
class Pipe:
    pos: int
    decl: list[str]
    assign: bool
    cmds: list[Cmd]


@dataclasses.dataclass
class Action:
    pos: int
    pipe: Pipe


@dataclasses.dataclass
class Control:
    kind: str  # if with range
    pos: int
    pipe: Pipe
    body: list[Any]
    else_body: list[Any]


@dataclasses.dataclass
class Jump:
    kind: str  # break continue
    pos: int


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
            trim_left = j >= 0 and text.startswith("-", k) and text[k + 1: k + 2] in tuple(_WS)
            if trim_next:
                chunk = chunk.lstrip(_WS)
            if trim_left:
                chunk = chunk.rstrip(_WS)
                k += 1
            if chunk:
                items.append(chunk)
            if j < 0:
                return items
            q = k
            while q < len(text) and text[q] in _WS and trim_left:
                q += 1
            if text.startswith("/*", q):
                close = text.find("*/", q + 2)
                if close < 0:
                    raise _ParseError(j, "unclosed comment")
                r = close + 2
                if text.startswith("}}", r):
                    p, trim_next = r + 2, False
                elif text.startswith(" -}}", r):
                    p, trim_next = r + 4, True
                else:
                    raise _ParseError(j, "comment ends before closing delimiter")
                continue
            toks, p, trim_next = _lex_action(text, k)
            items.append((j, toks))

    def parse(self) -> list[Any]:
        nodes, term = self._list()
        if term is not None:
            raise _ParseError(term[0], f"unexpected {{{{{term[1]}}}}}")
        return nodes

    def _list(self) -> tuple[list[Any], tuple[int, str, list[_Tok]] | None]:
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
                raise _ParseError(pos, "missing value for command")
            head = toks[0]
            word = head.value if head.kind == "ident" else None
            if word in ("end", "else"):
                return nodes, (pos, word, toks[1:])
            if word in ("if", "with", "range"):
                nodes.append(self._control(word, pos, toks[1:]))
            elif word in ("break", "continue"):
                if self.range_depth == 0:
                    raise _ParseError(pos, f"{{{{{word}}}}} outside {{{{range}}}}")
                nodes.append(Jump(word, pos))
            elif word in ("define", "template", "block"):
                raise _ParseError(pos, f"{{{{{word}}}}} is not supported by box")
            else:
                nodes.append(Action(pos, self._pipe(toks, "command", pos)))
        return nodes, None

    def _control(self, kind: str, pos: int, toks: list[_Tok]) -> Control:
        mark = len(self.vars)
        pipe = self._pipe(toks, kind, pos, allow_two=kind == "range")
        self.range_depth += kind == "range"
        body, term = self._list()
        self.range_depth -= kind == "range"
        else_body: list[Any] = []
        if term is None:
            raise _ParseError(len(self.text), "unexpected EOF")
        if term[1] == "else":
            rest = term[2]
            if rest and rest[0].kind == "ident" and rest[0].value in ("if", "with"):
                del self.vars[mark:]
                else_body = [self._control(rest[0].value, term[0], rest[1:])]
                return Control(kind, pos, pipe, body, else_body)
            if rest:
                raise _ParseError(term[0], "unexpected token in {{else}}")
            else_body, term = self._list()
            if term is None or term[1] != "end":
                raise _ParseError(term[0] if term else len(self.text),
                                  "unexpected EOF" if term is None else "expected end; found {{else}}")
        del self.vars[mark:]
        return Control(kind, pos, pipe, body, else_body)

    def _pipe(self, toks: list[_Tok], ctx: str, pos: int, allow_two: bool = False) -> Pipe:
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
            raise _ParseError(pos, f'undefined variable "{decl[0]}"')
        self.toks, self.k = toks, 0
        pipe = self._pipeline(pos, ctx, decl, assign)
        if self.k < len(self.toks):
            t = self.toks[self.k]
            raise _ParseError(t.pos, f"unexpected {self.text[t.pos:t.end]!r} in {ctx}".replace("'", '"'))
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
                raise _ParseError(pos, f"missing value for {ctx}")
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
                raise _ParseError(t.pos, f'undefined variable "{t.value}"')
            op = Operand("var", t.pos, src, t.value)
        elif t.kind == "dot":
            op = Operand("dot", t.pos, src)
        elif t.kind in ("str", "num"):
            op = Operand("lit", t.pos, src, t.value)
        elif t.kind == "lparen":
            inner = self._pipeline(t.pos, "parenthesized pipeline", [], False)
            if self.k >= len(self.toks) or self.toks[self.k].kind != "rparen":
                raise _ParseError(t.pos, "unclosed left paren")
            self.k += 1
            op = Operand("pipe", t.pos, self.text[t.pos:self.toks[self.k - 1].end], inner)
        elif t.kind == "ident" and t.value in ("true", "false"):
            op = Operand("lit", t.pos, src, t.value == "true")
        elif t.kind == "ident" and t.value == "nil":
            op = Operand("nil", t.pos, src)
        elif t.kind == "ident" and t.value not in _KEYWORDS:
            if t.value not in FUNCS:
                raise _ParseError(t.pos, f'function "{t.value}" not defined')
            op = Operand("ident", t.pos, src, t.value)
        else:
            raise _ParseError(t.pos, f"unexpected {src!r} in operand".replace("'", '"'))
        while (self.k < len(self.toks) and self.toks[self.k].kind == "field"
               and self.toks[self.k].pos == self.toks[self.k - 1].end and op.kind in ("field", "var", "pipe")):
            op.names.append(self.toks[self.k].value)
            op.src = self.text[op.pos:self.toks[self.k].end]
            self.k += 1
        return op


# ----------------------------------------------------------------------------- exec


class _ExecError(Exception):
    def __init__(self, pos: int, src: str, msg: str) -> None:
        super().__init__(msg)
        self.pos, self.src, self.msg = pos, src, msg


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_UNSET = object()


class _Exec:
    """One run of a template over one value (Go's ``state``)."""

    def __init__(self, root: Any, missing_key: str, header: bool) -> None:
        self.vars: list[tuple[str, Any]] = [("$", root)]
        self.missing_key = missing_key
        self.header = header
        self.out: list[str] = []

    def walk(self, dot: Any, nodes: list[Any]) -> None:
        for n in nodes:
            if isinstance(n, str):
                self.out.append(n)
            elif isinstance(n, Action):
                v = self.pipe(dot, n.pipe)
                if not n.pipe.decl:
                    self.out.append(go_print(v))
            elif isinstance(n, Jump):
                raise _Break() if n.kind == "break" else _Continue()
            elif n.kind == "range":
                self.range(dot, n)
            else:
                mark = len(self.vars)
                v = self.pipe(dot, n.pipe)
                if go_truth(v):
                    self.walk(v if n.kind == "with" else dot, n.body)
                else:
                    self.walk(dot, n.else_body)
                del self.vars[mark:]

    def range(self, dot: Any, n: Control) -> None:
        mark = len(self.vars)
        val = self.pipe(dot, Pipe(n.pipe.pos, [], False, n.pipe.cmds))
        if val is None or val is NO_VALUE:
            pairs: list[tuple[Any, Any]] = []
        elif isinstance(val, dict):
            pairs = [(k, val[k]) for k in sorted(val, key=lambda k: (str(type(k)), k))]
        elif isinstance(val, list | tuple):
            pairs = list(enumerate(val))
        elif isinstance(val, int) and not isinstance(val, bool):
            pairs = [(i, i) for i in range(val)]
        else:
            raise _ExecError(n.pipe.cmds[0].pos, n.pipe.cmds[0].src, f"range can't iterate over {go_print(val, False)}")
        for key, elem in pairs:
            del self.vars[mark:]
            if len(n.pipe.decl) == 1:
                self.vars.append((n.pipe.decl[0], elem))
            elif len(n.pipe.decl) == 2:
                self.vars += [(n.pipe.decl[0], key), (n.pipe.decl[1], elem)]
            try:
                self.walk(elem, n.body)
            except _Break:
                break
            except _Continue:
                continue
        del self.vars[mark:]
        if not pairs:
            self.walk(dot, n.else_body)

    def pipe(self, dot: Any, pipe: Pipe) -> Any:
        value: Any = _UNSET
        for cmd in pipe.cmds:
            value = self.command(dot, cmd, value)
        if pipe.assign:
            for i in range(len(self.vars) - 1, -1, -1):
                if self.vars[i][0] == pipe.decl[0]:
                    self.vars[i] = (pipe.decl[0], value)
                    break
        elif pipe.decl:
            self.vars.append((pipe.decl[0], value))
        return value

    def command(self, dot: Any, cmd: Cmd, final: Any) -> Any:
        first = cmd.args[0]
        if first.kind == "ident":
            return self.call(dot, first, cmd, final)
        extra = [self.arg(dot, a) for a in cmd.args[1:]] + ([] if final is _UNSET else [final])
        if first.kind == "nil":
            raise _ExecError(first.pos, first.src, "nil is not a command")
        if first.kind in ("field", "var", "pipe") and first.names:
            return self.chain(dot, first, extra)
        if extra:
            raise _ExecError(first.pos, first.src, f"can't give argument to non-function {first.src}")
        return self.arg(dot, first)

    def arg(self, dot: Any, op: Operand) -> Any:
        if op.kind == "lit":
            return op.value
        if op.kind == "nil":
            return None
        if op.kind == "dot":
            return dot
        if op.kind == "ident":
            return self.call(dot, op, Cmd(op.pos, op.src, [op]), _UNSET)
        return self.chain(dot, op, [])

    def chain(self, dot: Any, op: Operand, args: list[Any]) -> Any:
        if op.kind == "var":
            recv = next(v for name, v in reversed(self.vars) if name == op.value)
        elif op.kind == "pipe":
            recv = self.pipe(dot, op.value)
        else:
            recv = dot
        for i, name in enumerate(op.names):
            last = i == len(op.names) - 1
            if isinstance(recv, _Headers):
                return recv.title(op.names[i:])
            if recv is None or recv is NO_VALUE:
                raise _ExecError(op.pos, op.src, f"nil pointer evaluating interface {{}}.{name}")
            if isinstance(recv, dict):
                if name in recv:
                    recv = recv[name]
                elif self.missing_key == "error":
                    raise _ExecError(op.pos, op.src, f'map has no entry for key "{name}"')
                else:
                    recv = NO_VALUE
            elif isinstance(recv, str | int | float | bool | list | tuple) or name.startswith("_") \
                    or not hasattr(recv, name):
                raise _ExecError(op.pos, op.src, f"can't evaluate field {name} in type {go_type(recv)}")
            else:
                attr = getattr(recv, name)
                if callable(attr) and not isinstance(attr, type):
                    try:
                        recv = attr(*args) if last else attr()
                    except TypeError as e:
                        raise _ExecError(op.pos, op.src, f"error calling {name}: {e}") from None
                    if last:
                        return recv
                else:
                    recv = attr
            if last and args:
                raise _ExecError(op.pos, op.src, f"can't give argument to non-function {op.src}")
        return recv

    def call(self, dot: Any, ident: Operand, cmd: Cmd, final: Any) -> Any:
        name = ident.value
        fn, lo, hi = FUNCS[name]
        nargs = len(cmd.args) - 1 + (final is not _UNSET)
        if nargs < lo or (hi is not None and nargs > hi):
            want = f"at least {lo}" if hi is None else str(lo)
            raise _ExecError(ident.pos, ident.src, f"wrong number of args for {name}: want {want} got {nargs}")
        if name in ("and", "or"):  # Go evaluates these lazily
            v: Any = None
            for a in cmd.args[1:]:
                v = self.arg(dot, a)
                if go_truth(v) != (name == "and"):
                    return v
            return final if final is not _UNSET else v
        args = [self.arg(dot, a) for a in cmd.args[1:]] + ([] if final is _UNSET else [final])
        if self.header and name in HEADER_IDENTITY:
            return args[0]
        try:
            return fn(*args)
        except TemplateError as e:
            raise _ExecError(cmd.pos, cmd.src, str(e)) from None
        except (ValueError, TypeError) as e:
            raise _ExecError(cmd.pos, cmd.src, f"error calling {name}: {e}") from None


# ----------------------------------------------------------------------------- public


def _where(text: str, pos: int) -> tuple[int, int]:
    """Go's ErrorContext: 1-based line, byte offset within the line."""
    before = text[:pos]
    line_start = before.rfind("\n") + 1
    return before.count("\n") + 1, len(before[line_start:].encode())


class Template:
    """A compiled ``--format`` template; ``render`` runs it over one value."""

    def __init__(self, text: str, nodes: list[Any], missing_key: str) -> None:
        self.text = text
        self.nodes = nodes
        self.missing_key = missing_key

    def render(self, obj: Any) -> str:
        """Go's Execute; an error is InvalidArgument with Go's message, as docker prints it."""
        ex = _Exec(obj, self.missing_key, header=False)
        try:
            ex.walk(obj, self.nodes)
        except _ExecError as e:
            line, col = _where(self.text, e.pos)
            raise _invalid(f'template: :{line}:{col}: executing "" at <{e.src}>: {e.msg}', self.text) from None
        except RecursionError:
            raise _invalid("template: :1: exceeded maximum template depth", self.text) from None
        return "".join(ex.out)

    def render_header(self, headers: dict[str, str]) -> str:
        """The header row of a ``table`` format: each field shows its column title.

        Like docker/cli, errors here are ignored and whatever rendered is kept."""
        ex = _Exec(_Headers(headers), "default", header=True)
        try:
            ex.walk(ex.vars[0][1], self.nodes)
        except (_ExecError, _Break, _Continue, RecursionError):
            pass
        return "".join(ex.out)


def _invalid(go_message: str, text: str) -> InvalidArgument:
    err = InvalidArgument(f"template parsing error: {go_message}")
    err.template = text  # type: ignore[attr-defined]
    return err


def expand_escapes(text: str) -> str:
    r"""docker/cli's preFormat: the two characters ``\t`` and ``\n`` typed in a shell
    become a tab and a newline before the template is parsed."""
    return text.replace("\\t", "\t").replace("\\n", "\n")


def compile_template(text: str, *, expand: bool = True, missing_key: str = "default") -> Template:
    r"""Parse a Go template. ``expand`` turns typed ``\t``/``\n`` into tab/newline (what
    ``docker ps --format`` does; ``docker inspect`` does not). ``missing_key="error"`` is
    Go's ``missingkey=error`` option, which ``docker inspect`` uses on raw JSON."""
    if missing_key not in ("default", "error"):
        raise InvalidArgument(f"invalid missingkey option {missing_key!r}: use 'default' or 'error'")
    source = expand_escapes(text) if expand else text
    try:
        nodes = _Parser(source).parse()
    except _ParseError as e:
        line, _ = _where(source, e.pos)
        raise _invalid(f"template: :{line}: {e}", text) from None
    return Template(source, nodes, missing_key)

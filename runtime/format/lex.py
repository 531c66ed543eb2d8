"""Lexer for ``--format`` templates: one action (what is between ``{{`` and ``}}``) ->
tokens, with Go's text/template rules for strings, numbers, words and trim markers, and
its error texts (``ParseError``). Apart from the parser (parse.py), which splits the
text into actions and builds the tree from these tokens.
"""

from __future__ import annotations

import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


WS = " \t\r\n"
KEYWORDS = {"if", "else", "end", "range", "with", "break", "continue", "define", "template",
             "block"}
_NUM_RE = re.compile(
    r"[+-]?(0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(\d[\d_]*)?\.?\d[\d_]*([eE][+-]?\d+)?)"
)
_WORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESC = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a",
        "b": "\b", "f": "\f", "v": "\v"}


class Tok:
    """One token of an action; ``pos``/``end`` index the template text."""

    __slots__ = ("kind", "pos", "end", "value")

    def __init__(self, kind: str, pos: int, end: int, value: Any = None) -> None:
        self.kind = kind  # field var dot str num ident pipe lparen rparen decl assign comma
        self.pos, self.end, self.value = pos, end, value


class ParseError(Exception):
    """Go's parse error text, and where in the template it happened."""

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
                raise ParseError(pos, "invalid syntax")
            out.append(chr(int(digits, 16)))
            i += 2 + width
        elif nxt[:1].isdigit():
            out.append(chr(int(body[i + 1: i + 4], 8)))
            i += 4
        else:
            raise ParseError(pos, "invalid syntax")
    return "".join(out)


def lex_action(text: str, p: int) -> tuple[list[Tok], int, bool]:
    """Tokens of one action starting after ``{{``; returns (tokens, end, trim_right)."""
    toks: list[Tok] = []
    n = len(text)
    while True:
        if p >= n:
            raise ParseError(p, "unclosed action")
        ch = text[p]
        if ch in WS:
            q = p
            while q < n and text[q] in WS:
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
            toks.append(Tok("field", start, m.end(), m.group()))
            p = m.end()
        elif ch == "$":
            m = _WORD_RE.match(text, p + 1)
            end = m.end() if m else p + 1
            toks.append(Tok("var", start, end, text[start:end]))
            p = end
        elif ch == '"':
            q = p + 1
            while q < n and text[q] != '"':
                q += 2 if text[q] == "\\" else 1
            if q >= n:
                raise ParseError(start, "unterminated quoted string")
            toks.append(Tok("str", start, q + 1, _unquote(text[p + 1:q], start)))
            p = q + 1
        elif ch == "`":
            q = text.find("`", p + 1)
            if q < 0:
                raise ParseError(start, "unterminated raw quoted string")
            toks.append(Tok("str", start, q + 1, text[p + 1:q]))
            p = q + 1
        elif ch == "'":
            q = p + 1
            while q < n and text[q] != "'":
                q += 2 if text[q] == "\\" else 1
            val = _unquote(text[p + 1:q], start) if q < n else ""
            if q >= n or len(val) != 1:
                raise ParseError(start, "unterminated character constant")
            toks.append(Tok("num", start, q + 1, ord(val)))
            p = q + 1
        elif ch.isdigit() or (
            ch in "+-." and p + 1 < n and (text[p + 1].isdigit() or text[p + 1] == ".")
        ):
            m = _NUM_RE.match(text, p)
            word = m.group() if m else ch
            end = p + len(word)
            if end < n and (text[end].isalnum() or text[end] == "."):
                raise ParseError(start, f'bad number syntax: "{text[p:end + 1]}"')
            try:
                value: Any = int(word.replace("_", ""), 0)
            except ValueError:
                try:
                    value = float(word.replace("_", ""))
                except ValueError:
                    raise ParseError(start, f'bad number syntax: "{word}"') from None
            toks.append(Tok("num", start, end, value))
            p = end
        elif ch == ".":
            toks.append(Tok("dot", start, p + 1))
            p += 1
        elif ch.isalpha() or ch == "_":
            m = _WORD_RE.match(text, p)
            assert m
            toks.append(Tok("ident", start, m.end(), m.group()))
            p = m.end()
        elif text.startswith(":=", p):
            toks.append(Tok("decl", start, p + 2))
            p += 2
        elif ch in "|(),=":
            kind = {"|": "pipe", "(": "lparen", ")": "rparen", ",": "comma", "=": "assign"}[ch]
            toks.append(Tok(kind, start, p + 1))
            p += 1
        else:
            raise ParseError(start, f"unexpected {ch!r} in command".replace("'", '"'))

"""Variable substitution and quote removal in Dockerfile words, as BuildKit's shell
lexer does them: ``$VAR``, ``${VAR}``, ``${VAR:-word}``, ``${VAR-word}``,
``${VAR:+word}``, ``${VAR+word}``, ``${VAR:?msg}``, ``${VAR?msg}``, ``${VAR#pat}``,
``${VAR##pat}``, ``${VAR%pat}``, ``${VAR%%pat}``; single quotes are literal, double
quotes allow substitution, the escape character (``\\`` or the ``# escape=`` one)
escapes the next character."""

from __future__ import annotations

import fnmatch
import re

_NAME_START = re.compile(r"[A-Za-z_]")
_NAME_CHAR = re.compile(r"[A-Za-z0-9_]")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SubstitutionError(ValueError):
    """A bad ``${...}`` or a ``${VAR?msg}`` whose variable is unset."""


class _Lexer:
    def __init__(self, text: str, env: dict[str, str], escape: str) -> None:
        self.text, self.env, self.escape, self.pos = text, env, escape, 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def take(self) -> str:
        ch = self.peek()
        self.pos += 1
        return ch

    def word(self, stop: str = "") -> str:
        """Up to an unquoted character of ``stop`` (or the end), processed."""
        out: list[str] = []
        while self.pos < len(self.text):
            ch = self.peek()
            if ch in stop and stop:
                break
            self.pos += 1
            if ch == self.escape:
                if self.pos < len(self.text):
                    out.append(self.take())
                else:
                    out.append(ch)
            elif ch == "'":
                end = self.text.find("'", self.pos)
                if end < 0:
                    raise SubstitutionError("unexpected end of statement while looking for "
                                            "matching single-quote")
                out.append(self.text[self.pos:end])
                self.pos = end + 1
            elif ch == '"':
                out.append(self.double_quoted())
            elif ch == "$":
                out.append(self.dollar())
            else:
                out.append(ch)
        return "".join(out)

    def double_quoted(self) -> str:
        out: list[str] = []
        while True:
            if self.pos >= len(self.text):
                raise SubstitutionError("unexpected end of statement while looking for "
                                        "matching double-quote")
            ch = self.take()
            if ch == '"':
                return "".join(out)
            if ch == self.escape and self.peek() in ('"', "$", self.escape):
                out.append(self.take())
            elif ch == "$":
                out.append(self.dollar())
            else:
                out.append(ch)

    def name(self) -> str:
        start = self.pos
        if not _NAME_START.match(self.peek()):
            return ""
        while self.peek() and _NAME_CHAR.match(self.peek()):
            self.pos += 1
        return self.text[start:self.pos]

    def dollar(self) -> str:
        if self.peek() == "{":
            self.pos += 1
            return self.braced()
        name = self.name()
        if not name:
            return "$"
        return self.env.get(name, "")

    def braced(self) -> str:
        name = self.name()
        if not name:
            raise SubstitutionError(f"bad substitution: ${{{self.text[self.pos:]}")
        op = self.take()
        if op == "}":
            return self.env.get(name, "")
        if op == ":":
            op += self.take()
        elif op in "#%" and self.peek() == op:
            op += self.take()
        if op not in (":-", "-", ":+", "+", ":?", "?", "#", "##", "%", "%%"):
            raise SubstitutionError(f"unsupported modifier ({op}) in substitution")
        word = self.word(stop="}")
        if self.take() != "}":
            raise SubstitutionError(f"missing '}}' in substitution of {name}")
        return _modify(name, op, word, self.env)


def _modify(name: str, op: str, word: str, env: dict[str, str]) -> str:
    value = env.get(name)
    is_set, non_empty = value is not None, bool(value)
    if op == ":-":
        return value if value else word
    if op == "-":
        return value if is_set else word
    if op == ":+":
        return word if non_empty else ""
    if op == "+":
        return word if is_set else ""
    if op in (":?", "?"):
        if (non_empty if op == ":?" else is_set):
            return value or ""
        raise SubstitutionError(f"{name}: {word or 'is not allowed to be unset'}")
    return _trim(value or "", op, word)


def _trim(value: str, op: str, pattern: str) -> str:
    """``#``/``##`` drop the shortest/longest matching prefix, ``%``/``%%`` suffix."""
    rx = re.compile(fnmatch.translate(pattern), re.DOTALL)
    cuts = range(len(value) + 1)
    if op in ("#", "##"):
        for i in (cuts if op == "#" else reversed(cuts)):
            if rx.match(value[:i]):
                return value[i:]
    else:
        for i in (reversed(cuts) if op == "%" else cuts):
            if rx.match(value[i:]):
                return value[:i]
    return value


def process_word(text: str, env: dict[str, str], escape: str = "\\") -> str:
    """One word, substituted and unquoted."""
    return _Lexer(text, env, escape).word()


class _DisplayLexer(_Lexer):
    """BuildKit's names for progress vertices (``SkipProcessQuotes``, ``SkipUnsetEnv``):
    variables substituted, quotes and escapes kept, an unset ``$VAR`` left as written."""

    def word(self, stop: str = "") -> str:
        if stop:  # the word inside ``${VAR:-word}`` is substituted as usual
            return super().word(stop)
        out: list[str] = []
        while self.pos < len(self.text):
            ch = self.take()
            if ch == self.escape:
                out.append(ch + self.take())
            elif ch == "'":
                end = self.text.find("'", self.pos)
                end = len(self.text) if end < 0 else end + 1
                out.append("'" + self.text[self.pos:end])
                self.pos = end
            elif ch == '"':
                out.append('"' + self.double_quoted() + '"')
            elif ch == "$":
                out.append(self.dollar())
            else:
                out.append(ch)
        return "".join(out)

    def dollar(self) -> str:
        start = self.pos
        value = super().dollar()
        plain = self.text[start:self.pos]
        name = plain[1:-1] if plain.startswith("{") else plain
        if _IDENTIFIER.fullmatch(name) and name not in self.env:
            return "$" + plain
        return value


def display_text(text: str, env: dict[str, str], escape: str = "\\") -> str:
    """An instruction as BuildKit's plain progress names it; unchanged if it does not
    parse (BuildKit's ``processCmdEnv``)."""
    try:
        return _DisplayLexer(text, env, escape).word()
    except SubstitutionError:
        return text


def process_words(text: str, env: dict[str, str], escape: str = "\\") -> list[str]:
    """Several words split on unquoted whitespace (EXPOSE, VOLUME in shell form)."""
    lexer, words = _Lexer(text, env, escape), []
    while True:
        while lexer.peek() and lexer.peek() in " \t\n":
            lexer.pos += 1
        if not lexer.peek():
            return words
        words.append(lexer.word(stop=" \t\n"))

"""The functions a ``--format`` template can call: Go's text/template builtins (``len``,
``index``, ``printf``, ``eq`` ...) plus docker/cli's helpers (``json``, ``split``, ``join``,
``title``, ``lower``, ``upper``, ``pad``, ``truncate``).

One table, ``FUNCS``, that the parser checks names against and the executor calls, so
adding a function is one entry here. Errors are ``TemplateError`` with Go's text.
"""

from __future__ import annotations

from urllib.parse import quote_plus

from runtime.format.gofmt import NO_VALUE, go_json, go_print, go_sprintf, go_truth, go_type

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class TemplateError(Exception):
    """Internal: carries Go's message until the public edge wraps it."""


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
                raise TemplateError(f"error calling index: cannot index slice/array with type "
                                    f"{go_type(k)}")
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
    "lower": (lambda s: "".join(c.lower() if len(c.lower()) == 1 else c for c in _need_str(s)),
              1, 1),
    "upper": (lambda s: "".join(c.upper() if len(c.upper()) == 1 else c for c in _need_str(s)),
              1, 1),
    "pad": (_pad, 3, 3),
    "truncate": (_truncate, 2, 2),
    "len": (_length, 1, 1),
    "index": (_index, 1, None),
    "slice": (_slice, 1, 3),
    "print": (_sprint, 0, None),
    "println": (lambda *a: " ".join(go_print(x, False) for x in a) + "\n", 0, None),
    "printf": (lambda f, *a: go_sprintf(_need_str(f), list(a)), 1, None),
    "not": (lambda v: not go_truth(v), 1, 1),
    "and": (lambda *a: a[-1], 1, None),  # evaluated lazily by the executor
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

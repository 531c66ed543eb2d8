"""How Go prints values, for templates: fmt's ``%v`` and ``Sprintf``, and encoding/json
as docker/cli's ``json`` helper runs it (compact, keys in order, no HTML escaping).

Kept apart from the template engine: printing values the Go way (output, ``printf``,
the values quoted in Go's error texts) is its own idea, separate from parsing and running.
Values are what encoding/json decoding gives: None, bool, int, float, str, list, dict,
plus dataclasses and plain objects (rendered like Go structs).
"""

from __future__ import annotations

import json
import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class _NoValue:
    """Go's invalid reflect.Value: what a missing map key evaluates to."""

    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE: Any = _NoValue()


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
    from decimal import Decimal  # only when a float is printed: ~1 ms of import

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
        return (
            "map[" + " ".join(f"{go_print(k, False)}:{go_print(v[k], False)}" for k in keys) + "]"
        )
    names = _dataclass_fields(v)
    if names is not None:
        return "{" + " ".join(go_print(getattr(v, n), False) for n in names) + "}"
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
        return (
            json.dumps(v, ensure_ascii=False)
            .replace("\u2028", "\\u2028")
            .replace("\u2029", "\\u2029")
        )
    if isinstance(v, list | tuple):
        return "[" + ",".join(go_json(e) for e in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(f"{go_json(str(k))}:{go_json(x)}" for k, x in v.items()) + "}"
    names = _dataclass_fields(v)
    if names is not None:
        return go_json({n: getattr(v, n) for n in names})
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


def _dataclass_fields(v: Any) -> list[str] | None:
    """Field names of a dataclass instance, else None. Checks the marker attribute that
    dataclasses.is_dataclass checks, so this module need not import dataclasses (~7 ms);
    when one is passed in, dataclasses is already loaded."""
    if isinstance(v, type) or not hasattr(type(v), "__dataclass_fields__"):
        return None
    import dataclasses

    return [f.name for f in dataclasses.fields(v)]

"""The subset of Go's text/template that docker users type into ``--format``.

Docker renders ``--format`` with Go templates plus a few helper functions
(docker/cli ``templates``: json split join title lower upper pad truncate), so
people carry templates between ``docker`` and ``box``. These run over plain dicts
(Docker's JSON shapes) and Python objects, with Go's output rules (``<no value>`` for
a missing map key, ``map[a:1]`` for maps, ``[a b]`` for slices) and Go's error texts,
raised as ``InvalidArgument``.

This module is the executor and the public edge (``compile_template``, ``Template``);
parse.py builds the tree, funcs.py holds the callable functions, gofmt.py prints values.
"""

from __future__ import annotations

from runtime.errors import InvalidArgument
from runtime.format.funcs import FUNCS, HEADER_IDENTITY, TemplateError
from runtime.format.gofmt import NO_VALUE, go_print, go_truth, go_type
from runtime.format.lex import ParseError
from runtime.format.parse import Action, Cmd, Control, Jump, Operand, Pipe, parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class _Headers:
    """The dot while rendering a ``table`` header: fields become column titles."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers

    def title(self, names: list[str]) -> str:
        joined = ".".join(names)
        if joined in self.headers:
            return self.headers[joined]
        return self.headers.get(names[-1], names[-1].upper())


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
            raise _ExecError(n.pipe.cmds[0].pos, n.pipe.cmds[0].src, f"range can't iterate over "
                                                                     f"{go_print(val, False)}")
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
            raise _ExecError(first.pos, first.src, f"can't give argument to non-function "
                                                   f"{first.src}")
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
                raise _ExecError(op.pos, op.src, f"can't evaluate field {name} in type "
                                                 f"{go_type(recv)}")
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
            raise _ExecError(ident.pos, ident.src, f"wrong number of args for {name}: want {want} "
                                                   f"got {nargs}")
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
            raise _invalid(
                f'template: :{line}:{col}: executing "" at <{e.src}>: {e.msg}', self.text
            ) from None
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
    err.template = text
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
        raise InvalidArgument(
            f"invalid missingkey option {missing_key!r}: use 'default' or 'error'"
        )
    source = expand_escapes(text) if expand else text
    try:
        nodes = parse(source)
    except ParseError as e:
        line, _ = _where(source, e.pos)
        raise _invalid(f"template: :{line}: {e}", text) from None
    return Template(source, nodes, missing_key)

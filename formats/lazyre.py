"""Regular expressions compiled at their first use instead of at import.

Why: ``box run`` imports modules that define patterns it never (or only later) uses, and
``re`` compiles in pure Python: the ~12 patterns of the modules on that path cost 2-3 ms
of every start at import. A ``LazyPattern`` stands where the ``re.Pattern`` stood
(``_RAM.fullmatch(text)``); only ``re.compile``'s own arguments are kept until then.
"""

from __future__ import annotations

import re


class LazyPattern:
    """``re.compile(pattern, flags)``, done when an attribute (``match``, ``sub``,
    ``pattern``...) is first asked for. Each attribute is then kept on the instance, so
    later calls find it directly, without this class's ``__getattr__``."""

    def __init__(self, pattern: str | bytes, flags: int = 0) -> None:
        self._source = (pattern, flags)

    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):  # copy/pickle probing dunders: not a pattern's business
            raise AttributeError(name)
        value = getattr(re.compile(*self._source), name)  # re caches the compiled pattern
        self.__dict__[name] = value
        return value


def lazy_compile(pattern: str | bytes, flags: int = 0) -> LazyPattern:
    """Like ``re.compile``, compiled on first use."""
    return LazyPattern(pattern, flags)

"""``--log-opt`` of the json-file driver, validated as dockerd does (the format itself is
the bottom layer's: ``formats.jsonfile``)."""

from __future__ import annotations

from formats.lazyre import lazy_compile
from formats.units import from_human_size
from runtime.errors import InvalidArgument

_KNOWN_OPTS = {"max-size", "max-file", "compress", "labels", "labels-regex", "env", "env-regex",
               "tag"}
_GO_INT = lazy_compile(r"[+-]?\d+")
_GO_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
             "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}


def parse_log_opts(opts: dict[str, str]) -> tuple[int, int, bool]:
    """``--log-opt`` for json-file -> ``(max_size, max_file, compress)``, validated as
    dockerd does; ``max_size`` -1 means never rotate."""
    for key in sorted(opts):
        if key not in _KNOWN_OPTS:
            raise InvalidArgument(f"unknown log opt '{key}' for json-file log driver")
    max_size = -1
    if "max-size" in opts:
        try:
            max_size = from_human_size(opts["max-size"])
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from None
        if max_size <= 0:
            raise InvalidArgument(f"max-size must be a positive number (got '{opts['max-size']}')")
    max_file = 1
    if "max-file" in opts:
        raw = opts["max-file"]
        if not _GO_INT.fullmatch(raw):
            raise InvalidArgument(f'strconv.Atoi: parsing "{raw}": invalid syntax')
        max_file = int(raw)
        if max_file < 1:
            raise InvalidArgument(f"max-file cannot be less than 1 (got '{raw}')")
    compress = False
    if "compress" in opts:
        raw = opts["compress"]
        if raw not in _GO_BOOLS:
            raise InvalidArgument(f'strconv.ParseBool: parsing "{raw}": invalid syntax')
        compress = _GO_BOOLS[raw]
        if compress and (max_file == 1 or max_size == -1):
            raise InvalidArgument("compress cannot be true when max-file is less than 2 or "
                                  f"max-size is not set (max-file '{opts.get('max-file', '1')}', "
                                  f"max-size '{opts.get('max-size', '')}')")
    return max_size, max_file, compress

"""Log line parsers: ``decode`` picks json-file (``formats.jsonfile.parser``) or CRI
(``cri``); ``partial`` joins 16 KiB partials, ``multiline`` joins continuation lines."""

"""The bottom layer's formats: what the runtime, the collector and the shipper must agree
on, written once. Standard library and orjson only; imports none of the programs.

- ``jsonfile/``   Docker's json-file log: ``writer`` (escaping, 16 KiB partials, rotation,
                  compression) and ``parser``; ``logentry`` is what a log parser returns.
- ``statefile``   ``config.v2.json`` / ``hostconfig.json``: file names, field names, the
                  container facts read from them.
- ``labels``      ``--label-whitelist``: exact names and globs.
- ``lineproto``   InfluxDB line protocol escaping; ``influx`` the v1 write requests.
- ``delivery``    HTTP delivery policy: retriable statuses, Retry-After, Backoff,
                  credentials and redaction, gzip, ``SinkError``.
- ``units``       RFC 3339 times, Go durations, docker's two size units.

Checklist, a fact two programs share (a new state-file field, a new unit):
1. put it here, in the module named for it, with the test in ``tests/formats/`` or the
   program test that exercises it;
2. make every program read it from here and delete its private copy;
3. keep ``box run``'s modules (``jsonfile.writer``, ``statefile``, ``units``) free of
   slow imports: ``tests/test_layering.py`` checks.
"""

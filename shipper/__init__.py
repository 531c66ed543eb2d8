"""The shipper (``boxwatch shipper``): ``sources/`` find and read log files, ``parse/``
turns lines into entries (json-file through ``formats.jsonfile``, CRI, partials,
multiline), ``enrich`` adds container metadata, ``pipeline`` batches and acknowledges,
``sinks/`` deliver. It never imports the runtime or the collector.

Checklist, a new sink: 1. ``sinks/<backend>.py`` with a ``Sink`` subclass (``send``
returns a ``Result``; no retries of its own) and ``from_args(url, args)``; 2. register it
in ``sinks.SINKS``; 3. a contract test (``tests/shipper/``).
"""

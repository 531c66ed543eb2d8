"""The collector (``boxwatch collector``): discovery (``discover``), the sampling loop
(``pipeline``), derived events (``events``, ``records``), history and the HTTP API
(``history``, ``api``), alerts, line protocol (``lineproto``, ``lineproto_extra``),
inotify (``watch``), the metric table (``metrics/``: one module per cAdvisor category
group, and cAdvisor's ``--enable_metrics``/``--disable_metrics`` in
``metrics/categories``) and the sinks (``sinks/``). Readers and the ``Sample`` model are the bottom
layer's ``cgroupstats``; it never imports the runtime or the shipper.

Checklist, a new sink: 1. a class in ``sinks/<backend>.py`` deriving ``sinks.base.Sink``
with ``from_args(url, args)`` (its flags in the module's ``add_arguments``); 2. register
it in ``sinks/registry.SINKS`` (``"kind": "collector.sinks.<backend>:Class"``); 3. if it has
its own enabling flag, list the module in ``cli.SINK_OPTIONS``; 4. a test against the
real server (``tests/support/servers.py``) or its contract.
"""

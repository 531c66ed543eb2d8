"""The ``box`` command: a daemonless, docker-compatible runtime. ``cli`` dispatches verbs
to ``commands/``; ``create`` (validate -> resolve -> write -> save) and ``containers`` /
``monitor`` (the per-container process) do the work; ``state`` holds the state files,
``cgroups/`` writes limits, ``images/``, ``network/``, ``logging/`` the rest. It shares
facts only through the bottom layer (``formats``, ``cgroupstats``).

Checklist, a new ``box`` verb: 1. ``commands/<group>.py``: an ``add_<verb>(parser)`` and
a ``cmd_<verb>(paths, args)``; 2. its row in ``commands/table.py`` (module, docker's
description, every path: help and completions follow);
3. docker's wording and exit codes (125/126/127) for bad input, tested in
``tests/runtime/test_bad_input.py``.
A new ``run``/``create`` flag: declare it in ``commands/run.py`` (``_add_create_flags``),
then store it in one place: ``hostconfig.host_config`` (a HostConfig field, value parsers in
``units``) or ``create.config_v2`` (a Config field).
Keep imports on the ``box run`` path lazy (``bench/runtime_start.py``).
"""

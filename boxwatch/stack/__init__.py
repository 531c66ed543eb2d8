"""The local stack: ``boxwatch up | down | status``. ``plan`` turns the configuration into
components (argv, port, health URL, config files), ``supervisor`` runs them in the
background, ``control`` is what the commands do."""

"""Container logs: ``options`` (``--log-opt`` of the json-file driver) and ``reader``
(``box logs``). The format itself is ``formats.jsonfile``."""

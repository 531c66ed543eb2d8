"""boxwatch: the umbrella command (``boxwatch.cli``) over the collector, the shipper and
the local stack."""

__version__ = "0.1.0"

"""Where log bytes come from: finding files (``paths``), knowing a file again
(``fingerprint``), remembering how far it was shipped (``checkpoint``), reading it
(``reader``). Sources never import sinks; ``shipper.pipeline`` is the glue."""

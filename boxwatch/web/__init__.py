"""``boxwatch web``: the browser face of the stack (overview, container pages, logs, exec)."""

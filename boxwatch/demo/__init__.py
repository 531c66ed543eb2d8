"""``boxwatch demo``: the stack and containers under limits, end to end."""

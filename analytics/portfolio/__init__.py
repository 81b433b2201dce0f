"""The Overview area: the portfolio at a glance."""

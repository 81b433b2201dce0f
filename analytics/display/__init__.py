"""Shared display conventions: colours, number formats and labels used by every figure and table."""

"""Synthetic CRO portfolio generator: the embedded default data and the ground truth.

``generate_portfolio(con, preset, seed)`` fills an open warehouse; labelled anomalies go to
``truth.anomalies``, which pages never read.
"""

from analytics.generator.build import GENERATOR_VERSION, generate_portfolio, row_counts
from analytics.generator.presets import PRESETS, Preset

__all__ = ["GENERATOR_VERSION", "PRESETS", "Preset", "generate_portfolio", "row_counts"]

"""CRO analytics workbench: warehouse, generators, importers, models and metrics.

Functions here are pure and typed: they take a :class:`~analytics.core.warehouse.Warehouse`, an
:class:`~analytics.core.scope.AccessScope` and usually a :class:`~analytics.core.scope.PortfolioFilter`, and
return DataFrames or Plotly figures. Pages in ``pages/`` only lay them out.
"""

__version__ = "0.1.0"

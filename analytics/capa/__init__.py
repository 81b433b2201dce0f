"""CAPA trends: quality events and CAPAs under statistical process control, text themes, QTLs, actions.

Modules, one idea each:

* :mod:`~analytics.capa.rules`: Western Electric rules 1-4 and the Nelson trend rule, declared once, one engine;
* :mod:`~analytics.capa.spc`: u- and p-charts by month (Laney-adjusted when over-dispersed);
* :mod:`~analytics.capa.funnel`: funnel plot of sites' deviation rates;
* :mod:`~analytics.capa.data`: cached, scoped loaders of events, CAPAs and monthly series;
* :mod:`~analytics.capa.metrics`: backlog, aging, overdue, on-time, extensions, effectiveness, Pareto;
* :mod:`~analytics.capa.cycle_time`: cycle time median/P90 and Kaplan-Meier with open CAPAs censored;
* :mod:`~analytics.capa.themes`: TF-IDF themes of the free text and possible recurrences;
* :mod:`~analytics.capa.results`: themes and recurrences as a derived result of the registry;
* :mod:`~analytics.capa.qtl`: the quality tolerance limit register (ICH E6(R3)), declared once;
* :mod:`~analytics.capa.actions`: CAPA actions in the records store (open, link, check, history);
* :mod:`~analytics.capa.figures`, :mod:`~analytics.capa.tables`, :mod:`~analytics.capa.exports`: display.
"""

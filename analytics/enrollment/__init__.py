"""Enrollment forecasting: Poisson-Gamma site model, activation, baselines, timelines, demographics.

One idea per module:

* ``site_table``: per-site counts and open time at a data cut (the model's input);
* ``prior``: the plan-based prior on the mean site rate and its certainty weight;
* ``activation``: when pending sites activate, and the chance they never do;
* ``poisson_gamma``: the Anisimov-Fedorov model fitted by maximum likelihood (with a drift term);
* ``simulate``: the vectorized Monte Carlo predictive distribution;
* ``scenario``: how many sites to add, and by when, for P(on time) >= 0.8;
* ``linear`` and ``prophet_baseline``: the baselines computed beside it;
* ``timeline``: last patient in, last patient last visit and database lock against plan;
* ``demographics``: enrollment by group against target and population, with its forecast;
* ``funnel``: screened, consented, randomized and screen-failure reasons;
* ``data``: scoped warehouse reads; ``results``: the derived tables; ``figures``: plotly builders.

Units: dates are ``pandas.Timestamp`` (day precision); rates are randomizations per site-month
(30.4375 days) at the API, per day inside the simulation.
"""

DAYS_PER_MONTH = 30.4375

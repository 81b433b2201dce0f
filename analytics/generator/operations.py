"""Operational data of one study: eCRF pages, queries, monitoring visits, quality events and CAPAs.

Durations (page entry, query answer and closure, SDV, CAPA closure) are log-normal: most are quick,
a long tail is late, as in every EDC and QMS export.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.generator import reference as ref
from analytics.generator.columns import choice_codes, group_ranges, lognormal_days
from analytics.generator.enrollment import StudySubjects, StudyVisits
from analytics.generator.plan import ANOMALY_TYPES, DAYS_PER_MONTH, PortfolioPlan
from analytics.generator.quality_text import MIXED_SHARE, THEMES, action_text, event_text, pick_themes

QUERY_BACKLOG = ANOMALY_TYPES.index("query_backlog")
CAPA_RECURRENCE = ANOMALY_TYPES.index("capa_recurrence")

# form name -> data points; which forms a visit has
FORMS: tuple[tuple[str, int], ...] = (
    ("Demographics", 12),
    ("Eligibility", 30),
    ("Vital Signs", 8),
    ("Laboratory", 22),
    ("Visit Review", 15),
)
SCREENING_FORMS = np.array([0, 1, 2, 3])
TREATMENT_FORMS = np.array([2, 4])
LAB_FORM = 3
QUERIES_PER_PAGE = 0.25  # for a 15-point page at an average site


@dataclass
class Pages:
    visit: np.ndarray
    form: np.ndarray
    entry: np.ndarray
    points: np.ndarray
    changed: np.ndarray
    sdv_points: np.ndarray
    sdv_date: np.ndarray


def simulate_pages(
    plan: PortfolioPlan, sites: np.ndarray, subjects: StudySubjects, visits: StudyVisits, rng: np.random.Generator
) -> Pages:
    as_of = plan.as_of_day
    attended = np.flatnonzero(~np.isnan(visits.actual))
    number = visits.number[attended]
    n_forms = np.where(number == 0, len(SCREENING_FORMS), len(TREATMENT_FORMS) + (number % 2 == 0))
    parent, rank = group_ranges(n_forms)
    visit = attended[parent]
    is_screening = visits.number[visit] == 0
    form = np.where(is_screening, SCREENING_FORMS[np.minimum(rank, len(SCREENING_FORMS) - 1)],
                    np.where(rank < len(TREATMENT_FORMS), TREATMENT_FORMS[np.minimum(rank, 1)], LAB_FORM))
    n = len(visit)
    offset = np.where(rng.uniform(size=n) < 0.7, 0, rng.integers(1, 4, n))
    entry = visits.entry[visit] + offset
    entry[entry > as_of] = np.nan
    points = rng.poisson(np.array([f[1] for f in FORMS])[form])
    site = subjects.site[visits.subject[visit]]
    change_rate = 0.04 * np.exp(0.4 * rng.standard_normal(len(sites)))
    changed = rng.binomial(points, np.minimum(change_rate[site], 0.5))
    changed[np.isnan(entry)] = 0
    sdv_date = entry + np.floor(lognormal_days(rng, 35.0, 0.7, n))
    sdv_date[sdv_date > as_of] = np.nan
    sdv_points = np.where(np.isnan(sdv_date), 0, points)
    return Pages(visit, form, entry, points, changed, sdv_points, sdv_date)


@dataclass
class Queries:
    page: np.ndarray
    manual: np.ndarray
    opened: np.ndarray
    answered: np.ndarray
    closed: np.ndarray


def simulate_queries(
    plan: PortfolioPlan, sites: np.ndarray, subjects: StudySubjects, visits: StudyVisits, pages: Pages,
    rng: np.random.Generator,
) -> Queries:
    as_of = plan.as_of_day
    site = subjects.site[visits.subject[pages.visit]]
    quality = plan.institution_quality[plan.ss_institution[sites]]
    site_rate = QUERIES_PER_PAGE * np.exp(-0.2 * quality + 0.3 * rng.standard_normal(len(sites)))
    entered = ~np.isnan(pages.entry)
    counts = rng.poisson(np.where(entered, site_rate[site] * pages.points / 15.0, 0.0))
    page = np.repeat(np.arange(len(pages.visit)), counts)
    n = len(page)
    qsite = site[page]
    opened = pages.entry[page] + np.floor(lognormal_days(rng, 4.0, 1.0, n))
    answer_median = 6.0 * np.exp(-0.2 * quality + 0.4 * rng.standard_normal(len(sites)))
    backlog = plan.ss_anomaly[sites] == QUERY_BACKLOG
    answer_median[backlog] *= plan.ss_anomaly_magnitude[sites][backlog]
    answered = opened + np.floor(lognormal_days(rng, answer_median[qsite], 1.0, n))
    closed = answered + np.floor(lognormal_days(rng, 3.0, 0.8, n))
    answered[answered > as_of] = np.nan
    closed[(closed > as_of) | np.isnan(answered)] = np.nan
    keep = opened <= as_of
    manual = rng.uniform(size=n) < 0.3
    return Queries(page[keep], manual[keep], opened[keep], answered[keep], closed[keep])


@dataclass
class MonitoringVisits:
    site: np.ndarray
    kind: np.ndarray  # index into schema.MONITORING_VISIT_TYPES
    planned: np.ndarray
    actual: np.ndarray
    report: np.ndarray
    findings: np.ndarray


def simulate_monitoring(
    plan: PortfolioPlan, sites: np.ndarray, subjects: StudySubjects, visits: StudyVisits, study_closed: bool,
    rng: np.random.Generator,
) -> MonitoringVisits:
    """A site initiation visit, interim visits at a site-specific cadence, a close-out if closed."""
    as_of = plan.as_of_day
    activation = plan.ss_activation[sites]
    active = ~np.isnan(activation)
    last_activity = np.full(len(sites), -np.inf)
    attended = ~np.isnan(visits.actual)
    np.maximum.at(last_activity, subjects.site[visits.subject[attended]], visits.actual[attended])
    end = np.minimum(as_of, np.maximum(last_activity, activation + 120) + 30)
    cadence = 42 * np.exp(0.25 * rng.standard_normal(len(sites)))
    n_imv = np.where(active, np.maximum(np.floor((end - activation - 30) / cadence) + 1, 0), 0).astype("int64")
    site_imv, rank = group_ranges(n_imv)
    planned_imv = activation[site_imv] + 30 + rank * cadence[site_imv]
    kind_imv = np.where(rng.uniform(size=len(site_imv)) < 0.3, 2, 1)
    siv_sites = np.flatnonzero(active)
    cov_sites = siv_sites[np.repeat(study_closed, len(siv_sites))]
    site = np.concatenate([siv_sites, site_imv, cov_sites])
    kind = np.concatenate([np.zeros(len(siv_sites), int), kind_imv, np.full(len(cov_sites), 3)])
    planned = np.concatenate([activation[siv_sites] - 7, planned_imv, end[cov_sites]])
    planned = np.floor(planned)
    actual = planned + np.round(rng.normal(0, 5, len(site)))
    actual[kind == 0] = np.floor(activation[site[kind == 0]]) - rng.integers(0, 8, int((kind == 0).sum()))
    actual[actual > as_of] = np.nan
    report = actual + np.floor(lognormal_days(rng, 8.0, 0.6, len(site)))
    report[report > as_of] = np.nan
    findings = np.where(np.isnan(actual), 0, rng.poisson(np.where(kind == 0, 0.3, 1.5)))
    return MonitoringVisits(site, kind, planned, actual, report, findings)


@dataclass
class QualityRecords:
    """Quality events and the CAPAs opened for them (``capa_*`` arrays are per CAPA)."""

    qe_site: np.ndarray  # -1 = study-level
    qe_category: np.ndarray
    qe_severity: np.ndarray  # 0 Minor, 1 Major, 2 Critical
    qe_description: list[str]
    qe_reported: np.ndarray
    qe_theme: np.ndarray  # index into quality_text.THEMES (the label)
    qe_other_theme: np.ndarray  # a second theme the text mentions, -1 for none
    qe_recurrence_of: np.ndarray  # injected recurrence: index of the event it repeats, -1 otherwise
    capa_event: np.ndarray  # index into the quality events
    capa_root_cause: np.ndarray
    capa_description: list[str]
    capa_owner: list[str]
    capa_opened: np.ndarray
    capa_original_due: np.ndarray
    capa_current_due: np.ndarray
    capa_extensions: np.ndarray
    capa_closed: np.ndarray
    capa_check_date: np.ndarray
    capa_effective: np.ndarray  # 1 effective, 0 not, -1 not checked


SEVERITIES = ("Minor", "Major", "Critical")
QUALITY_EVENTS_PER_SITE_MONTH = 0.07
CLOSURE_SHARE_OF_DUE = 0.8  # median time to closure as a share of the time the CAPA was given
RECURRENCE_ROUNDS = 3  # a capa_recurrence site has the same theme this many times ...
RECURRENCE_GAP_DAYS = (60, 240)  # ... this many days apart (within the 12 months a recurrence is judged over)


def _recurrences(plan: PortfolioPlan, sites: np.ndarray, activation: np.ndarray,
                 rng: np.random.Generator) -> tuple[list[int], list[int], list[float], list[int]]:
    """Events of the capa_recurrence sites: one theme again and again; (site, theme, day, repeats-index)."""
    as_of = plan.as_of_day
    recurring = np.flatnonzero(~np.isnan(activation) & (plan.ss_anomaly[sites] == CAPA_RECURRENCE))
    site, theme, day, repeats = [], [], [], []
    for local in recurring:
        chosen = int(rng.integers(len(THEMES)))
        when = float(np.floor(activation[local] + rng.uniform(0.1, 0.4) * (as_of - activation[local])))
        previous = -1
        for _ in range(RECURRENCE_ROUNDS):
            if when > as_of:
                break
            site.append(int(local))
            theme.append(chosen)
            day.append(when)
            repeats.append(previous)
            previous = len(site) - 1
            when += float(rng.integers(*RECURRENCE_GAP_DAYS))
    return site, theme, day, repeats


def simulate_quality(plan: PortfolioPlan, study: int, sites: np.ndarray, rng: np.random.Generator) -> QualityRecords:
    """Quality events at active sites, CAPAs for most of them, with labelled themes in varied text.

    Sites labelled ``capa_recurrence`` get the same theme of event three times within a year, each
    CAPA judged not effective. A sponsor with a CAPA-closure shift (``plan.sponsor_closure_shift_*``)
    has every CAPA still open at the shift day, or opened later, take ``factor`` times as long from then.
    """
    as_of = plan.as_of_day
    activation = plan.ss_activation[sites]
    active = ~np.isnan(activation)
    months = np.where(active, (as_of - np.nan_to_num(activation)) / DAYS_PER_MONTH, 0.0)
    counts = rng.poisson(QUALITY_EVENTS_PER_SITE_MONTH * months)
    site = np.repeat(np.arange(len(sites)), counts)
    reported = np.floor(activation[site] + rng.uniform(size=len(site)) * (as_of - activation[site]))
    categories = tuple(c[0] for c in ref.QUALITY_EVENT_CATEGORIES)
    category = choice_codes(rng, [c[1] for c in ref.QUALITY_EVENT_CATEGORIES], len(site))
    theme = pick_themes(category, categories, rng)
    recur_site, recur_theme, recur_day, recur_of = _recurrences(plan, sites, activation, rng)
    offset = len(site)
    site = np.concatenate([site, np.array(recur_site, dtype="int64")])
    theme = np.concatenate([theme, np.array(recur_theme, dtype="int64")])
    category = np.array([categories.index(THEMES[t].category) for t in theme], dtype="int64")
    reported = np.concatenate([reported, np.array(recur_day, dtype="float64")])
    recurrence_of = np.concatenate([np.full(offset, -1), [r + offset if r >= 0 else -1 for r in recur_of]]).astype("int64")
    recurring = np.arange(len(site)) >= offset
    n = len(site)
    severity = np.where(recurring, 1, choice_codes(rng, [0.6, 0.32, 0.08], n))
    mixed = rng.uniform(size=n) < MIXED_SHARE
    other = np.where(mixed, (theme + rng.integers(1, len(THEMES), n)) % len(THEMES), -1)
    descriptions = [event_text(int(t), rng, int(o) if o >= 0 else None) for t, o in zip(theme, other)]

    needs_capa = recurring | (rng.uniform(size=n) < np.array([0.35, 0.85, 0.95])[severity])
    event = np.flatnonzero(needs_capa)
    m = len(event)
    # Root causes correlate with the event category.
    root = (category[event] + rng.choice([0, 0, 1, 2], size=m)) % len(ref.ROOT_CAUSES)
    capa_desc = [action_text(int(theme[e]), ref.ROOT_CAUSES[r][0], rng) for e, r in zip(event, root)]
    owners = [f"{ref.FIRST_NAMES[i]} {ref.LAST_NAMES[j]}" for i, j in
              zip(rng.integers(0, len(ref.FIRST_NAMES), m), rng.integers(0, len(ref.LAST_NAMES), m))]
    opened = reported[event] + rng.integers(1, 15, m)
    original_due = opened + rng.choice([30, 60, 90], size=m)
    extensions = rng.poisson(0.45, m)
    current_due = original_due + 30 * extensions
    # Most CAPAs close a little before their original due date; a tail runs late (and gets extended).
    closed = opened + np.floor((original_due - opened) * lognormal_days(rng, CLOSURE_SHARE_OF_DUE, 0.45, m)) \
        + 20 * extensions
    recurring_capa = recurring[event]
    closed[recurring_capa] = opened[recurring_capa] + 40
    shift_day = plan.sponsor_closure_shift_day[plan.study_sponsor[study]]
    if not np.isnan(shift_day):
        factor = plan.sponsor_closure_shift_factor[plan.study_sponsor[study]]
        slowed = closed > shift_day
        since = np.maximum(opened, shift_day)
        closed[slowed] = np.floor(since[slowed] + factor * (closed[slowed] - since[slowed]))
    closed[closed > as_of] = np.nan
    check = closed + rng.integers(60, 91, m)
    check[check > as_of] = np.nan
    effective = np.where(np.isnan(check), -1, (rng.uniform(size=m) < 0.85).astype("int64"))
    effective[recurring_capa & ~np.isnan(check)] = 0
    return QualityRecords(
        qe_site=site, qe_category=category, qe_severity=severity, qe_description=descriptions, qe_reported=reported,
        qe_theme=theme, qe_other_theme=other, qe_recurrence_of=recurrence_of,
        capa_event=event, capa_root_cause=root, capa_description=capa_desc, capa_owner=owners, capa_opened=opened,
        capa_original_due=original_due, capa_current_due=current_due, capa_extensions=extensions,
        capa_closed=closed, capa_check_date=check, capa_effective=effective,
    )

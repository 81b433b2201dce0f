"""One generated evaluation portfolio, read the way the app reads it, plus its ground truth.

A fresh portfolio (preset ``eval``) is generated into a temporary warehouse; the engine's measure
frame comes from the app's own extraction (:mod:`analytics.kri.extract`, latest snapshot). The
adverse events are also read one row per event (day on study, seriousness, calendar day) with the
extraction's own expressions, so the evaluation can remove events at sites it chooses and rebuild
exactly the counts the engine would have seen, and attach each event to the visit that recorded it
for the simaerep-style baseline. Only this package reads ``truth.anomalies``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from analytics.core import warehouse
from analytics.core.scope import NO_FILTER, AccessScope
from analytics.generator import GENERATOR_VERSION, PRESETS, generate_portfolio
from analytics.kri.extract import subject_measures
from analytics.kri.specs import TIME_ON_STUDY_BINS, stratum_columns

SCOPE = AccessScope.full_access()
AE_COLUMNS = stratum_columns("ae") + stratum_columns("sae")

_AE_SQL = """
SELECT ae.subject_id,
       greatest(date_diff('day', su.randomization_date, ae.onset_date), 0) AS day,
       ae.serious,
       date_diff('day', $as_of, coalesce(ae.onset_date, ae.report_date)) AS calendar_day
FROM adverse_events ae JOIN scoped_sites USING (study_site_id) JOIN subjects su USING (subject_id)
WHERE coalesce(ae.report_date, ae.onset_date) <= $as_of AND ae.subject_id IS NOT NULL
"""

_VISITS_SQL = """
SELECT v.subject_id, CAST(v.visit_number AS INTEGER) AS visit_number,
       date_diff('day', su.randomization_date, v.actual_date) AS day
FROM visits v JOIN scoped_sites USING (study_site_id) JOIN subjects su USING (subject_id)
WHERE v.visit_number > 0 AND v.actual_date IS NOT NULL AND v.actual_date <= $as_of
  AND su.randomization_date IS NOT NULL
"""

_SUBJECTS_SQL = """
SELECT su.subject_id, s.country_code,
       coalesce(date_diff('day', su.randomization_date, $as_of), -1) AS days_since_randomization
FROM subjects su JOIN scoped_sites s USING (study_site_id)
"""


@dataclass
class Events:
    """Adverse events, one entry per event, for the patients of an :class:`AEData`."""

    patient: np.ndarray  # row in AEData.patients
    day: np.ndarray  # days since randomization (>= 0)
    serious: np.ndarray  # bool
    calendar_day: np.ndarray  # days relative to the as-of date (<= 0)

    def subset(self, keep: np.ndarray) -> "Events":
        return Events(self.patient[keep], self.day[keep], self.serious[keep], self.calendar_day[keep])

    def __len__(self) -> int:
        return len(self.patient)


@dataclass
class AEData:
    """Patients (one row of the engine's frame each) and their events: what every method scores.

    ``patients`` is a measure frame at one snapshot (every column the KRIs read, plus
    ``country_code``, ``visits`` = the number of the last completed treatment visit and
    ``days_since_randomization``). ``visit_days`` gives each patient's completed visits (for
    attaching events to the visit that recorded them).
    """

    patients: pd.DataFrame
    events: Events
    visit_patient: np.ndarray
    visit_number: np.ndarray
    visit_day: np.ndarray

    def with_events(self, events: Events) -> "AEData":
        return AEData(self.patients, events, self.visit_patient, self.visit_number, self.visit_day)


def day_bins(day: np.ndarray) -> np.ndarray:
    """The time-on-study bin of each day since randomization (as the extraction bins it)."""
    upper = np.array([hi for _, hi in TIME_ON_STUDY_BINS[:-1]], dtype="float64")
    return np.searchsorted(upper, day, side="right")


def ae_columns(data: AEData) -> pd.DataFrame:
    """The frame's AE and SAE count columns rebuilt from the events."""
    n = len(data.patients)
    bins = day_bins(data.events.day)
    k = len(TIME_ON_STUDY_BINS)
    out = {}
    for name, mask in (("ae", np.ones(len(bins), dtype=bool)), ("sae", data.events.serious)):
        flat = data.events.patient[mask] * k + bins[mask]
        counts = np.bincount(flat, minlength=n * k).reshape(n, k).astype("float64")
        for j, column in enumerate(stratum_columns(name)):
            out[column] = counts[:, j]
    return pd.DataFrame(out, index=data.patients.index)


def frame_with_events(data: AEData) -> pd.DataFrame:
    """The patients' measure frame with its AE columns taken from ``data.events``."""
    frame = data.patients.copy()
    frame[AE_COLUMNS] = ae_columns(data)[AE_COLUMNS].to_numpy()
    return frame


def event_visits(data: AEData) -> np.ndarray:
    """Per event, the number of the first completed visit on or after its onset (0: none yet)."""
    order = np.lexsort((data.visit_day, data.visit_patient))
    vp, vd, vn = data.visit_patient[order], data.visit_day[order], data.visit_number[order]
    if not len(vp):
        return np.zeros(len(data.events), dtype="int64")
    # Visits sorted by patient then day: one search on a combined key finds the first visit on or
    # after the event within the patient's own visits (or the patient's end: no visit yet).
    scale = float(max(np.abs(vd).max(), np.abs(data.events.day).max(initial=0)) + 2)
    pos = np.searchsorted(vp * scale + vd, data.events.patient * scale + data.events.day, side="left")
    end = np.searchsorted(vp, data.events.patient, side="right")
    return np.where(pos < end, vn[np.minimum(pos, len(vn) - 1)], 0).astype("int64")


@dataclass
class Portfolio:
    """A generated portfolio as the evaluation uses it."""

    seed: int
    path: Path
    data: AEData  # latest-snapshot frame with every KRI measure, the generator's events and visits
    truth: pd.DataFrame  # site-level labels: study_site_id, anomaly_type, magnitude, fabricated_subjects
    ae_rate: pd.Series  # per study: AEs per unit of the generator's cumulative hazard (for re-simulation)
    sae_share: pd.Series  # per study: share of AEs that are serious


def build_portfolio(path: Path, preset: str, seed: int) -> None:
    """Generate the ``preset`` portfolio for ``seed`` into a new warehouse at ``path``."""
    with warehouse.build_aside(path) as con:
        generate_portfolio(con, preset, seed)
        warehouse.set_info(con, {"as_of_date": PRESETS[preset].as_of.isoformat(), "preset": preset,
                                 "seed": seed, "generator_version": GENERATOR_VERSION})


def read_truth(path: Path) -> pd.DataFrame:
    """Site-level labels of a generated warehouse (with the number of fabricated subjects)."""
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            "SELECT study_site_id, anomaly_type, magnitude, "
            "(SELECT count(*) FROM truth.anomalies s WHERE s.level = 'subject' "
            " AND s.study_site_id = a.study_site_id) AS fabricated_subjects "
            "FROM truth.anomalies a WHERE level = 'site'").df()


def read_ae_data(wh: warehouse.Warehouse) -> AEData:
    """The latest-snapshot measure frame, the events and the completed visits of a warehouse."""
    as_of = wh.as_of()
    frame = subject_measures(wh, SCOPE, NO_FILTER, [as_of]).reset_index(drop=True)
    extra = wh.query(SCOPE, _SUBJECTS_SQL, {"as_of": as_of}, NO_FILTER)
    frame = frame.merge(extra, on="subject_id", how="left", validate="one_to_one")
    row_of = pd.Series(np.arange(len(frame)), index=frame["subject_id"])
    aes = wh.query(SCOPE, _AE_SQL, {"as_of": as_of}, NO_FILTER)
    aes = aes[aes["subject_id"].isin(row_of.index)]
    events = Events(row_of[aes["subject_id"]].to_numpy(), aes["day"].fillna(0).to_numpy(dtype="float64"),
                    aes["serious"].fillna(False).to_numpy(dtype=bool),
                    aes["calendar_day"].fillna(0).to_numpy(dtype="float64"))
    visits = wh.query(SCOPE, _VISITS_SQL, {"as_of": as_of}, NO_FILTER)
    visits = visits[visits["subject_id"].isin(row_of.index)]
    vp = row_of[visits["subject_id"]].to_numpy()
    last_visit = np.zeros(len(frame), dtype="int64")
    np.maximum.at(last_visit, vp, visits["visit_number"].to_numpy(dtype="int64"))
    frame["visits"] = last_visit
    data = AEData(frame, events, vp, visits["visit_number"].to_numpy(dtype="int64"),
                  visits["day"].to_numpy(dtype="float64"))
    rebuilt = ae_columns(data)
    if not np.array_equal(rebuilt[AE_COLUMNS].to_numpy(), frame[AE_COLUMNS].to_numpy()):
        raise AssertionError("event-level AE counts do not reproduce the extraction's AE columns")
    return data


def load_portfolio(path: Path, seed: int) -> Portfolio:
    """Read a generated warehouse into a :class:`Portfolio`."""
    from analytics.generator.clinical import ae_cumulative_hazard

    wh = warehouse.Warehouse.open(path)
    data = read_ae_data(wh)
    warehouse.close_all()
    frame = data.patients
    hazard = pd.Series(ae_cumulative_hazard(frame["days_on_treatment"].to_numpy()), index=frame.index)
    counts = pd.Series(np.bincount(data.events.patient, minlength=len(frame)), index=frame.index)
    serious = pd.Series(np.bincount(data.events.patient, weights=data.events.serious, minlength=len(frame)),
                        index=frame.index)
    by_study = pd.DataFrame({"study_id": frame["study_id"], "hazard": hazard, "aes": counts, "saes": serious})
    totals = by_study.groupby("study_id")[["hazard", "aes", "saes"]].sum()
    ae_rate = (totals["aes"] / totals["hazard"].where(totals["hazard"] > 0)).fillna(0.0)
    sae_share = (totals["saes"] / totals["aes"].where(totals["aes"] > 0)).fillna(0.1)
    return Portfolio(seed=seed, path=path, data=data, truth=read_truth(path), ae_rate=ae_rate, sae_share=sae_share)

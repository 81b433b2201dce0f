"""Score one set of patients and events with every method, one row per site.

The same events reach every method: the calibrated engine and the gsm-style funnel through the
engine's measure frame (rebuilt from the events), the simaerep-style baseline through per-visit
counts (each event at the visit that recorded it, as an EDC export gives them). Per site and
method the row holds the evidence of AE under-reporting (higher = stronger), the default flag on
the AE rate (0 none, 1 amber, 2 red; simaerep: 2 when flagged) and, for the null alert burden,
whether any KRI of the site is amber or red.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.evaluation.rbm.portfolio import AEData, event_visits, frame_with_events
from analytics.kri.calibrated import kept_likelihood_ratio
from analytics.kri.engine import run_engine
from analytics.kri.simaerep import DEFAULT_RESAMPLES, FLAG_ALPHA, cumulative_events, simaerep_inframe
from analytics.kri.specs import CATALOGUE, KRISpec, kri

METHODS = ("calibrated", "funnel", "simaerep", "simaerep_no_mult")
METHOD_LABELS = {
    "calibrated": "calibrated engine",
    "funnel": "gsm-style funnel",
    "simaerep": "simaerep-style (inframe, with multiplicity)",
    "simaerep_no_mult": "simaerep-style (inframe, no multiplicity)",
}
AE_SPECS: tuple[KRISpec, ...] = (kri("ae_rate"), kri("sae_rate"))
# A yardstick, not a method a monitor gets: the likelihood ratio for "half the AEs kept" under the
# engine's fitted model, the most powerful ranking at 50% removed (see :func:`score_sites`).
YARDSTICK = "lr_half_kept"
YARDSTICK_KEPT = 0.5
YARDSTICK_LABEL = "likelihood ratio for half of the AEs kept, under the engine's fitted model (yardstick)"


def _engine_columns(frame: pd.DataFrame, method: str, specs: tuple[KRISpec, ...], seed: int) -> pd.DataFrame:
    run = run_engine(frame, method, specs=specs, seed=seed)
    ae = run.cells[run.cells["kri"] == "ae_rate"].set_index("study_site_id")
    sites = run.sites.set_index("study_site_id")
    low = (ae["flag"] > 0) & (ae["direction"] == "low")
    if method == "calibrated":
        score = -np.log(ae["p_low"].clip(lower=1e-300))
    else:
        score = -ae["z"]
    out = pd.DataFrame({
        f"score_{method}": score,
        f"flag_{method}": np.where(low, ae["flag"], 0),
        f"any_amber_{method}": sites["any_amber"].reindex(ae.index),
        f"any_red_{method}": sites["any_red"].reindex(ae.index),
    }, index=ae.index)
    if method == "calibrated":
        out["expected_ae"] = ae["expected"]
        out["observed_ae"] = ae["observed"]
        out["prob_below"] = ae["prob_below"]
        out["site_p"] = sites["site_p"].reindex(ae.index)
        lr = kept_likelihood_ratio(run.fits["ae_rate"], run.index.site_group, YARDSTICK_KEPT)
        # Ties (unscored sites) go last; the engine's own evidence orders equal ratios.
        out[f"score_{YARDSTICK}"] = lr[ae["site_code"].to_numpy()] + 1e-9 * score.to_numpy()
        out["evaluable_kris"] = sites["evaluable"].reindex(ae.index)
    return out


def _simaerep_columns(data: AEData, seed: int) -> pd.DataFrame:
    patients = data.patients
    visits = patients["visits"].to_numpy(dtype="int64")
    has = visits >= 1
    rows = np.flatnonzero(has)
    renumber = np.full(len(patients), -1)
    renumber[rows] = np.arange(len(rows))
    ev_visit = event_visits(data)
    keep = has[data.events.patient] & (ev_visit >= 1)
    cumulative = cumulative_events(renumber[data.events.patient[keep]], ev_visit[keep], len(rows),
                                   int(visits.max(initial=1)))
    result = simaerep_inframe(patients["study_id"].to_numpy()[rows], patients["study_site_id"].to_numpy()[rows],
                              visits[rows], cumulative, seed=seed).set_index("site")
    p_adj, p_raw = result["p_low_adjusted"], result["p_low"]
    return pd.DataFrame({
        "score_simaerep": tie_broken(p_adj, result["z_low"]), "flag_simaerep": np.where(p_adj <= FLAG_ALPHA, 2, 0),
        "score_simaerep_no_mult": tie_broken(p_raw, result["z_low"]),
        "flag_simaerep_no_mult": np.where(p_raw <= FLAG_ALPHA, 2, 0),
    }, index=result.index)


def tie_broken(p: pd.Series, z: pd.Series) -> pd.Series:
    """Evidence ``-ln p`` of a resampled p-value, ties (many sites at p = 0) ordered by the resampling's z.

    Thresholds at a fixed false-positive rate need an order: with 1,000 resamples, more than 1% of
    clean sites can sit below every pseudo-site, and a tied threshold would flag all or none of them.
    """
    floor = 0.5 / DEFAULT_RESAMPLES
    return -np.log(p.clip(lower=floor)) + 1e-3 * z / (1 + z.abs())


def score_sites(data: AEData, full_catalogue: bool = False, seed: int = 0) -> pd.DataFrame:
    """Every method's evidence and default flags per site with a randomized patient.

    ``full_catalogue``: the engine and the funnel score every KRI (the data must hold every measure),
    so the AE cell's flag thresholds and the null burden are those a monitor sees; otherwise only
    the AE and SAE rates.
    """
    frame = frame_with_events(data)
    specs = CATALOGUE if full_catalogue else AE_SPECS
    sites = frame.groupby("study_site_id").agg(study_id=("study_id", "first"), randomized=("randomized", "sum"))
    sites = sites[sites["randomized"] > 0]
    parts = [_engine_columns(frame, m, specs, seed) for m in ("calibrated", "funnel")]
    parts.append(_simaerep_columns(data, seed))
    out = sites.join(parts, how="left")
    for method in METHODS:
        out[f"flag_{method}"] = out[f"flag_{method}"].fillna(0).astype("int64")
    return out.reset_index()

"""The real CDISC pilot (SDTM, 17 sites) as a null and as a carrier of injected anomalies.

The pilot is imported with the SDTM importer into a temporary warehouse (its as-of date set to its
last visit). Two checks:

* **null**: patients reshuffled between the pilot's sites (site sizes kept) many times; every KRI
  and every atypical-data test scored each time. Real sites differ, reshuffled ones do not, so
  the share of reshuffled sites with a red KRI (target <= 1%) or an atypical flag is the real-data
  false-positive rate.
* **injected** (this evaluation's design, drawn anew for each of several draws): at four sites
  chosen at random among those with 10+ AEs, all AEs removed at two and half at two; at one other
  site blood pressure and pulse rounded to end in 0; at one other site half the subjects'
  vital signs copied from one of them with the noise shrunk (fabricated records). Reported: how often each is
  flagged, where it ranks on its test, and how many clean sites turn amber or red on the AE rate
  (the reference's robustness to the other anomalous sites).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from analytics.core import warehouse
from analytics.core.scope import NO_FILTER, AccessScope
from analytics.evaluation.rbm import metrics
from analytics.kri.atypical import TESTS, atypical_inputs, relabel_sites, score_atypical
from analytics.kri.engine import run_engine
from analytics.kri.extract import subject_measures

PILOT_STUDY = "CDISCPILOT01"
SCOPE = AccessScope.full_access()
Log = Callable[[str], None]


def import_pilot(folder: Path, path: Path) -> None:
    """Import the SDTM folder into a new warehouse at ``path``, as-of its last visit."""
    from analytics.importers.sdtm import SdtmOptions, prepare_sdtm
    from analytics.importers.staging import commit

    warehouse.create_empty(path)
    commit(prepare_sdtm(folder, path, SdtmOptions(study_id=PILOT_STUDY)), path)
    with warehouse.modify_aside(path, purpose="set the pilot's as-of date") as con:
        last = con.execute("SELECT max(actual_date) FROM main.visits").fetchone()[0]
        warehouse.set_info(con, {"as_of_date": last.isoformat()})


def _frame(path: Path) -> pd.DataFrame:
    wh = warehouse.Warehouse.open(path)
    frame = subject_measures(wh, SCOPE, NO_FILTER, [wh.as_of()])
    return frame


def _reshuffle(frame: pd.DataFrame, rng: np.random.Generator) -> pd.Series:
    """A random reassignment of subjects to sites keeping every site's number of subjects."""
    subjects = frame["subject_id"].to_numpy()
    return pd.Series(rng.permutation(frame["study_site_id"].to_numpy()), index=subjects)


def _reshuffles(frame: pd.DataFrame, reshuffles: int, seed: int) -> list[pd.Series]:
    """The null check's reshuffles (the same draws whether the KRIs are scored with them or not)."""
    rng = np.random.default_rng([seed, 99])
    return [_reshuffle(frame, rng) for _ in range(reshuffles)]


def _atypical_null(inputs: tuple[pd.DataFrame, ...], site_ofs: list[pd.Series]) -> dict[str, object]:
    """The atypical flag and each test's share below 0.01 over the reshuffled sites."""
    tables = []
    for r, site_of in enumerate(site_ofs):
        table = score_atypical(*relabel_sites(inputs, site_of))
        tables.append(table[table["tests_available"] > 0].assign(reshuffle=r))
    aty = pd.concat(tables, ignore_index=True)
    return {"atypical_flag": metrics.share(aty["atypical_flag"]),
            "atypical_tests_below_0.01": {t: metrics.share(aty[t].dropna() < 0.01) for t in TESTS}}


def null_check(path: Path, reshuffles: int, seed: int, log: Log) -> dict[str, object]:
    """Flags of reshuffled pilot sites: every KRI (both methods) and the atypical-data score."""
    frame = _frame(path)
    inputs = atypical_inputs(warehouse.Warehouse.open(path), SCOPE, NO_FILTER)
    site_ofs = _reshuffles(frame, reshuffles, seed)
    rows = []
    for r, site_of in enumerate(site_ofs):
        shuffled = frame.assign(study_site_id=frame["subject_id"].map(site_of).to_numpy())
        for method in ("calibrated", "funnel"):
            sites = run_engine(shuffled, method, seed=r).sites
            sites = sites[sites["evaluable"] > 0]
            rows.append(sites.assign(method=method, reshuffle=r)[["method", "reshuffle", "study_site_id", "any_amber",
                                                                   "any_red", "site_p"]])
    flags = pd.concat(rows, ignore_index=True)
    log(f"[eval rbm]   CDISC pilot: {reshuffles} reshuffles scored")
    out: dict[str, object] = {"reshuffles": reshuffles}
    for method, block in flags.groupby("method"):
        out[str(method)] = {"any_red": metrics.share(block["any_red"]), "any_amber": metrics.share(block["any_amber"])}
    out["calibrated"]["site_score_p"] = metrics.ks_uniform(flags.loc[flags["method"] == "calibrated", "site_p"])
    out.update(_atypical_null(inputs, site_ofs))
    # The real (not reshuffled) sites, for comparison: real differences between sites show here.
    real = run_engine(frame, "calibrated").sites
    real_aty = score_atypical(*inputs)
    out["real_sites"] = {"sites": int((real["evaluable"] > 0).sum()), "any_amber": int(real["any_amber"].sum()),
                         "any_red": int(real["any_red"].sum()),
                         "atypical_flagged": int(real_aty["atypical_flag"].sum()),
                         "digit_preference_below_0.01": int((real_aty["digit_preference"] < 0.01).sum())}
    return out


def atypical_null_at(folder: Path, reshuffles: int, seed: int, workdir: Path | None = None) -> dict[str, object]:
    """The null check's atypical part alone: the pilot imported, its sites reshuffled as there, no KRI run."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = Path(tmp) / "pilot.duckdb"
        import_pilot(folder, path)
        inputs = atypical_inputs(warehouse.Warehouse.open(path), SCOPE, NO_FILTER)
        out: dict[str, object] = {"reshuffles": reshuffles,
                                  **_atypical_null(inputs, _reshuffles(_frame(path), reshuffles, seed))}
        real = score_atypical(*inputs)
        out["real_sites"] = {"atypical_flagged": int(real["atypical_flag"].sum()),
                             "digit_preference_below_0.01": int((real["digit_preference"] < 0.01).sum())}
        warehouse.close_all()
    return out


def _inject(source: Path, target: Path, rng: np.random.Generator) -> dict[str, object]:
    """A copy of the pilot with this draw's anomalies written in; returns which sites got what."""
    warehouse.copy_warehouse(source, target)
    with duckdb.connect(str(target)) as con:
        aes = con.execute("SELECT study_site_id, count(*) AS n FROM main.adverse_events GROUP BY 1").df()
        vitals = con.execute("SELECT study_site_id, count(DISTINCT subject_id) AS n FROM main.measurements "
                             "WHERE domain = 'VS' GROUP BY 1").df()
        candidates = rng.permutation(aes.loc[aes["n"] >= 10, "study_site_id"].to_numpy())
        removed_all, removed_half = list(candidates[:2]), list(candidates[2:4])
        others = rng.permutation(vitals.loc[(vitals["n"] >= 4) & ~vitals["study_site_id"].isin(candidates[:4]),
                                            "study_site_id"].to_numpy())
        rounded, fabricated = others[0], others[1]
        con.execute("DELETE FROM main.adverse_events WHERE list_contains($s, study_site_id)", {"s": removed_all})
        con.execute("DELETE FROM main.adverse_events WHERE list_contains($s, study_site_id) AND random() < 0.5",
                    {"s": removed_half})
        con.execute("UPDATE main.measurements SET value = round(value / 10) * 10 WHERE study_site_id = $s "
                    "AND test_code IN ('SYSBP', 'DIABP', 'PULSE') AND value IS NOT NULL", {"s": rounded})
        subjects = con.execute("SELECT DISTINCT subject_id FROM main.measurements WHERE study_site_id = $s "
                               "AND domain = 'VS' ORDER BY 1", {"s": fabricated}).df()["subject_id"].to_numpy()
        fake = rng.permutation(subjects)[: max(2, len(subjects) // 2)]
        template = fake[0]
        # Copied records: the template's vital signs, reading by reading, at the same visits.
        con.execute("""
            WITH ranked AS (
                SELECT m.measurement_id, m.subject_id, m.test_code, v.visit_number, m.value,
                       row_number() OVER (PARTITION BY m.subject_id, v.visit_number, m.test_code
                                          ORDER BY m.measurement_id) AS reading
                FROM main.measurements m JOIN main.visits v USING (visit_id)
                WHERE m.domain = 'VS' AND list_contains($f, m.subject_id)
            ), copies AS (
                SELECT r.measurement_id, t.value FROM ranked r JOIN ranked t
                  ON t.subject_id = $t AND t.visit_number = r.visit_number AND t.test_code = r.test_code
                 AND t.reading = r.reading
                WHERE r.subject_id <> $t
            )
            UPDATE main.measurements SET value = copies.value FROM copies
            WHERE main.measurements.measurement_id = copies.measurement_id""", {"t": template, "f": list(fake)})
        con.execute("CHECKPOINT")
    return {"removed_all": removed_all, "removed_half": removed_half, "rounded": rounded, "fabricated": fabricated}


def injected_check(path: Path, draws: int, seed: int, workdir: Path, log: Log) -> dict[str, object]:
    """Detection of this evaluation's anomalies in the real pilot, over ``draws`` random placements."""
    rng = np.random.default_rng([seed, 101])
    records = []
    for d in range(draws):
        target = workdir / f"draw_{d}" / "pilot.duckdb"  # its own folder: the restricted store keeps its name
        placed = _inject(path, target, rng)
        frame = _frame(target)
        run = run_engine(frame, "calibrated", seed=d)
        funnel = run_engine(frame, "funnel").cells
        ae = run.cells[run.cells["kri"] == "ae_rate"].set_index("study_site_id")
        ae_f = funnel[funnel["kri"] == "ae_rate"].set_index("study_site_id")
        low_rank = (-np.log(ae["p_low"].clip(lower=1e-300))).rank(ascending=False)
        aty = score_atypical(*atypical_inputs(warehouse.Warehouse.open(target), SCOPE, NO_FILTER)).set_index(
            "study_site_id")
        digit_rank = (-np.log(aty["digit_preference"].clip(lower=1e-300))).rank(ascending=False)
        score_rank = aty["atypical_score"].rank(ascending=False)
        injected_ae = set(placed["removed_all"]) | set(placed["removed_half"])
        for kind in ("removed_all", "removed_half"):
            for site in placed[kind]:
                records.append({"draw": d, "kind": kind, "site": site,
                                "flag": int(ae.loc[site, "flag"]) if ae.loc[site, "direction"] == "low" else 0,
                                "funnel_flag": int(ae_f.loc[site, "flag"]) if ae_f.loc[site, "direction"] == "low" else 0,
                                "rank": float(low_rank.get(site, np.nan)), "prob_below": float(ae.loc[site, "prob_below"]),
                                "sites": int(ae["evaluable"].sum())})
        clean = ae[~ae.index.isin(injected_ae) & ae["evaluable"].astype(bool)]
        records.append({"draw": d, "kind": "clean_ae_flags", "site": "",
                        "flag": int((clean["flag"] > 0).sum()), "rank": np.nan,
                        "funnel_flag": int(((ae_f.reindex(clean.index)["flag"]) > 0).sum()),
                        "sites": int(len(clean))})
        for kind, site in (("rounded", placed["rounded"]), ("fabricated", placed["fabricated"])):
            records.append({"draw": d, "kind": kind, "site": site,
                            "flag": int(bool(aty.loc[site, "atypical_flag"])) if site in aty.index else 0,
                            "digit_p": float(aty.loc[site, "digit_preference"]) if site in aty.index else np.nan,
                            "rank": float((digit_rank if kind == "rounded" else score_rank).get(site, np.nan)),
                            "sites": int(aty["tests_available"].gt(0).sum())})
        warehouse.close_all()
        shutil.rmtree(target.parent, ignore_errors=True)
    log(f"[eval rbm]   CDISC pilot: {draws} injected draws scored")
    table = pd.DataFrame(records)
    out: dict[str, object] = {"draws": draws}
    for kind in ("removed_all", "removed_half"):
        block = table[table["kind"] == kind]
        out[kind] = {"red": metrics.share(block["flag"] == 2), "amber_or_red": metrics.share(block["flag"] >= 1),
                     "funnel_amber_or_red": metrics.share(block["funnel_flag"] >= 1),
                     "median_rank_on_ae_low": float(block["rank"].median()),
                     "median_prob_below_75pct": round(float(block["prob_below"].median()), 4)}
    clean = table[table["kind"] == "clean_ae_flags"]
    out["clean_sites_flagged_on_ae_rate"] = {
        "engine": metrics.wilson(float(clean["flag"].sum()), int(clean["sites"].sum())),
        "funnel": metrics.wilson(float(clean["funnel_flag"].sum()), int(clean["sites"].sum()))}
    for kind in ("rounded", "fabricated"):
        block = table[table["kind"] == kind]
        out[kind] = {"atypical_flag": metrics.share(block["flag"] == 1),
                     "median_rank": float(block["rank"].median()),
                     "rank_1": metrics.share(block["rank"] == 1),
                     "scored_sites": int(block["sites"].median()) if len(block) else 0}
        if kind == "rounded":
            out[kind]["digit_preference_below_0.01"] = metrics.share(block["digit_p"] < 0.01)
    return out


def pilot_evaluation(folder: Path, reshuffles: int, draws: int, seed: int, log: Log,
                     workdir: Path | None = None) -> dict[str, object]:
    """Import the pilot into a temporary warehouse and run both checks."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = Path(tmp) / "pilot.duckdb"
        log("[eval rbm] importing the CDISC pilot ...")
        import_pilot(folder, path)
        result = {"null_reshuffled": null_check(path, reshuffles, seed, log),
                  "injected": injected_check(path, draws, seed, Path(tmp), log)}
        warehouse.close_all()
    return result

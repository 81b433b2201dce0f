"""Metrics of the RBM evaluation: Wilson intervals, thresholds fixed on calibration seeds, detection, AUC.

Every rate is reported as ``{"rate", "low", "high", "n"}``: the share and its Wilson 95% interval over
``n`` sites. "At 1% FPR" means: the threshold on each method's evidence is the 99th percentile of
the clean sites of the *calibration* seeds; detection and the realized false-positive rate are then
measured on the *test* seeds, so no method is tuned on the data it is judged on.

Thresholds carried over from calibration seeds give each method a slightly different realized
false-positive rate on the test seeds, so "at 1% FPR" alone does not compare methods at *equal*
FPR. :func:`equal_fpr_comparison` adds that comparison: every method cut at its own 1% quantile of
the test seeds' clean sites (equal FPR by construction, a comparison between methods, never the
headline), and the engine's paired difference from each baseline with a bootstrap interval (the same
injected and clean sites are scored by every method).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import roc_auc_score

Z95 = float(stats.norm.isf(0.025))
FALSE_POSITIVE_RATES = (0.01, 0.05)
EQUAL_FPR = 0.01
BOOTSTRAP_DRAWS = 1000
SIZE_CLASSES = ((1, 4, "1-4"), (5, 14, "5-14"), (15, 10**9, "15+"))  # randomized patients


def wilson(successes: float, n: int) -> dict[str, float | int | None]:
    """Share with its Wilson 95% score interval."""
    if n <= 0:
        return {"rate": None, "low": None, "high": None, "n": 0}
    p = successes / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * np.sqrt(p * (1 - p) / n + Z95**2 / (4 * n**2)) / (1 + Z95**2 / n)
    return {"rate": round(float(p), 4), "low": round(float(max(0.0, centre - half)), 4),
            "high": round(float(min(1.0, centre + half)), 4), "n": int(n)}


def share(mask: pd.Series) -> dict[str, float | int | None]:
    """Wilson summary of a boolean series."""
    mask = mask.dropna().astype(bool)
    return wilson(float(mask.sum()), len(mask))


def size_class(randomized: pd.Series) -> pd.Series:
    """Site size class by randomized patients."""
    out = pd.Series("0", index=randomized.index)
    for lo, hi, name in SIZE_CLASSES:
        out[randomized.between(lo, hi)] = name
    return out


def _evidence(table: pd.DataFrame, method: str) -> pd.Series:
    """A method's evidence of under-reporting, lowest where it has none (NaN)."""
    score = table[f"score_{method}"].astype("float64")
    return score.fillna(-np.inf)


def thresholds(calibration: pd.DataFrame, methods: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Per method and FPR, the evidence above which a site is called: the (1 - FPR) quantile of clean sites."""
    clean = calibration[calibration["level"].isna() & calibration["fpr_sample"]]
    out: dict[str, dict[str, float]] = {}
    for method in methods:
        score = _evidence(clean, method).to_numpy()
        out[method] = {f"{fpr:g}": float(np.quantile(score, 1 - fpr, method="higher")) if len(score) else np.inf
                       for fpr in FALSE_POSITIVE_RATES}
    return out


def _auc(clean: pd.Series, positive: pd.Series) -> float | None:
    if not len(clean) or not len(positive):
        return None
    finite = pd.concat([clean, positive])
    floor = finite[np.isfinite(finite)].min() - 1 if np.isfinite(finite).any() else 0.0
    labels = np.r_[np.zeros(len(clean)), np.ones(len(positive))]
    return round(float(roc_auc_score(labels, np.nan_to_num(finite.to_numpy(), neginf=floor))), 4)


def auc_interval(clean: pd.Series, positive: pd.Series, seed: int = 0,
                 draws: int = BOOTSTRAP_DRAWS) -> dict[str, float | int | None]:
    """AUC of ``positive`` against ``clean`` with a 95% bootstrap interval (each group resampled apart).

    Sites, not seeds, are resampled: the interval covers the sampling of these sites, not the
    variation between portfolios (with about 40 positives per two seeds that alone moves the AUC
    by several points).
    """
    point = _auc(clean, positive)
    if point is None:
        return {"auc": None, "low": None, "high": None, "positives": int(len(positive)), "clean": int(len(clean))}
    rng = np.random.default_rng(seed)
    c, p = clean.to_numpy(dtype="float64"), positive.to_numpy(dtype="float64")
    values = [_auc(pd.Series(c[rng.integers(0, len(c), len(c))]), pd.Series(p[rng.integers(0, len(p), len(p))]))
              for _ in range(draws)]
    return {"auc": point, "low": round(float(np.quantile(values, 0.025)), 4),
            "high": round(float(np.quantile(values, 0.975)), 4), "positives": int(len(p)), "clean": int(len(c))}


def method_metrics(test: pd.DataFrame, method: str, cut: dict[str, float], levels: tuple[float, ...],
                   by_size: bool = False) -> dict[str, object]:
    """Detection at fixed FPR thresholds and at the default flags, realized FPRs, AUC per level."""
    clean = test[test["level"].isna() & test["fpr_sample"]]
    injected = test[test["level"].notna()]
    evidence_clean, evidence_injected = _evidence(clean, method), _evidence(injected, method)
    out: dict[str, object] = {}
    for fpr in FALSE_POSITIVE_RATES:
        threshold = cut[f"{fpr:g}"]
        entry: dict[str, object] = {"threshold": round(threshold, 4) if np.isfinite(threshold) else None,
                                    "false_positive_rate": share(evidence_clean > threshold)}
        for level in levels:
            rows = injected["level"] == level
            entry[f"{level:g}"] = share(evidence_injected[rows] > threshold)
        if by_size:
            sizes = size_class(injected["randomized"])
            entry["by_size"] = {name: {f"{level:g}": share(evidence_injected[(injected["level"] == level)
                                                                              & (sizes == name)] > threshold)
                                       for level in levels} for _, _, name in SIZE_CLASSES}
        out[f"at_{fpr:.0%}_fpr".replace("%", "pct")] = entry
    flags = {"amber_or_red": 1, "red": 2} if not method.startswith("simaerep") else {"flagged": 2}
    default: dict[str, object] = {}
    for name, level_min in flags.items():
        entry = {"false_positive_rate": share(clean[f"flag_{method}"] >= level_min)}
        for level in levels:
            entry[f"{level:g}"] = share(injected.loc[injected["level"] == level, f"flag_{method}"] >= level_min)
        default[name] = entry
    out["default_flags"] = default
    out["auc"] = {f"{level:g}": _auc(evidence_clean, evidence_injected[injected["level"] == level]) for level in levels}
    return out


def null_burden(test: pd.DataFrame, method: str) -> dict[str, object]:
    """Clean sites with any amber / any red KRI at the default flags (all clean sites of every replicate)."""
    clean = test[test["level"].isna() & test["fpr_sample"]]
    return {"any_amber": share(clean[f"any_amber_{method}"]), "any_red": share(clean[f"any_red_{method}"])}


def ks_uniform(p: pd.Series) -> dict[str, float | int | None]:
    """Kolmogorov-Smirnov test of p-values against the uniform distribution."""
    p = p.dropna()
    if len(p) < 5:
        return {"n": int(len(p)), "statistic": None, "p_value": None}
    result = stats.kstest(p.to_numpy(), "uniform")
    return {"n": int(len(p)), "statistic": round(float(result.statistic), 4), "p_value": round(float(result.pvalue), 4),
            "share_below_0.05": round(float((p <= 0.05).mean()), 4), "share_below_0.5": round(float((p <= 0.5).mean()), 4)}


def _detection_at_own_quantile(clean: np.ndarray, injected: np.ndarray, fpr: float) -> np.ndarray:
    """Per bootstrap row: share of injected evidence above that row's clean (1 - fpr) quantile."""
    cut = np.quantile(clean, 1 - fpr, axis=-1, method="higher")
    return (injected > cut[..., None]).mean(axis=-1)


def equal_fpr_comparison(test: pd.DataFrame, methods: tuple[str, ...], levels: tuple[float, ...],
                         engine: str = "calibrated", fpr: float = EQUAL_FPR, seed: int = 0) -> dict[str, object]:
    """Detection of every method at the *same* realized FPR on the test seeds, and the engine's paired
    difference from each other method with a 95% bootstrap interval (clean and injected sites resampled
    together, every method's threshold recomputed in each draw)."""
    clean = test[test["level"].isna() & test["fpr_sample"]]
    injected = test[test["level"].notna()]
    rng = np.random.default_rng(seed)
    clean_draw = rng.integers(0, len(clean), (BOOTSTRAP_DRAWS, len(clean))) if len(clean) else None
    out: dict[str, object] = {"false_positive_rate": fpr, "clean_sites": int(len(clean)), "bootstrap_draws": BOOTSTRAP_DRAWS}
    for level in levels:
        rows = injected[injected["level"] == level]
        key = f"{level:g}"
        if clean_draw is None or not len(rows):
            out[key] = None
            continue
        injected_draw = rng.integers(0, len(rows), (BOOTSTRAP_DRAWS, len(rows)))
        point, draws = {}, {}
        for method in methods:
            c = _evidence(clean, method).to_numpy()
            i = _evidence(rows, method).to_numpy()
            point[method] = float(_detection_at_own_quantile(c, i, fpr))
            draws[method] = _detection_at_own_quantile(c[clean_draw], i[injected_draw], fpr)
        entry: dict[str, object] = {"sites": int(len(rows)), "detection": {m: round(v, 4) for m, v in point.items()}}
        entry["engine_minus"] = {
            m: {"difference": round(point[engine] - point[m], 4),
                "low": round(float(np.quantile(draws[engine] - draws[m], 0.025)), 4),
                "high": round(float(np.quantile(draws[engine] - draws[m], 0.975)), 4)}
            for m in methods if m != engine}
        out[key] = entry
    return out

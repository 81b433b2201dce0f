"""``python -m analytics eval recruitment``: the pre-screen against ground truth, and the parser on real text.

1. **Generated pools** (held-out seeds :data:`TEST_SEEDS`, never used while writing the rules): for
   each seed a protocol for every indication the generator knows (Phase 2 and 3 alternately) and a
   pool of :data:`PATIENTS_PER_PROTOCOL` patients over four sites. Reported: how many criteria were
   read back (structured, confirmed at screening, needs review) and whether each structure equals the
   truth; criterion-level accuracy by criterion kind and by hard case (on the patient x criterion pairs
   the matcher decided, with the share it left unknown); patient-level precision and recall of
   "eligible" for the candidate list (no criterion failed) and for "eligible on records" (nothing
   unknown either), with 95% bootstrap intervals over protocols; and that no criterion was dropped.
2. **Real eligibility texts**: every study in ``urology_ctg-studies.json.zip``: criteria split, lines
   not assigned to any criterion (must be none), shares structured / confirmed at screening / needs
   review; and parsing accuracy on the hand-labelled sample in ``tests/data/recruitment_ctgov_labels.json``
   (labelled before the parser's patterns were written; see that file).
3. **Speed**: 10,000 patients x 30 criteria (:mod:`analytics.evaluation.recruitment_speed`).
"""

from __future__ import annotations

import collections
import hashlib
import json
import time
import zipfile
from pathlib import Path

import numpy as np

from analytics.generator.prescreening import simulate_pool
from analytics.generator.protocols import INDICATION_CONDITION, make_protocol
from analytics.generator.reference import CONDITION_POPULATION
from analytics.recruitment import units
from analytics.recruitment.criteria import STRUCTURED, ULN, Atom, Criterion
from analytics.recruitment import funnel
from analytics.recruitment.matching import MET, NOT_MET, REASONS, UNKNOWN, MatchResult, match
from analytics.recruitment.parser import parse_criteria
from analytics.recruitment.pool import Pool
from analytics.recruitment.text import split_criteria, unassigned_lines
from analytics.recruitment.vocabulary import CONDITIONS_BY_KEY, LABS_BY_KEY, MEDICATIONS_BY_KEY

TEST_SEEDS = (9401, 9402, 9403)
PATIENTS_PER_PROTOCOL = 800
SITES_PER_PROTOCOL = 4
SCREENING_DAY = 20_758  # 2026-11-01
BOOTSTRAP = 2000
REPO = Path(__file__).resolve().parents[2]
LABELS_PATH = REPO / "tests" / "data" / "recruitment_ctgov_labels.json"
NEW_LABELS_PATH = REPO / "tests" / "data" / "recruitment_ctgov_labels_new.json"  # labelled after the free-prose rules
UROLOGY_ZIP = REPO.parent / "shared" / "data" / "ctgov" / "urology_ctg-studies.json.zip"
TARGETS = {"recall": 0.98, "precision": 0.90, "seconds_10k_x_30": 5.0}


# --- comparing structures ------------------------------------------------------------------------


def _reduced(codes: set[str]) -> frozenset[str]:
    """Codes with any code covered by a shorter prefix in the set removed."""
    return frozenset(c for c in codes if not any(o != c and c.startswith(o) for o in codes))


def _canonical(atom: Atom) -> tuple:
    """An atom as comparable values: thresholds in the lab's own unit, windows to the week."""
    value, high = atom.value, atom.value_high
    term = LABS_BY_KEY.get(atom.concept)
    if term is not None and atom.unit not in (None, ULN, term.unit, "1") and value is not None:
        factor = _factor(atom.unit, term)
        value = None if factor is None else round(value * factor, 3)
        high = None if (high is None or factor is None) else round(high * factor, 3)
    if atom.kind == "ecog" and atom.comparator == "<=":
        return ("ecog", atom.concept, "between", 0.0, value)
    week = (lambda d: None if d is None else round(d / 7))
    return (atom.kind, atom.concept if atom.kind in ("lab", "ecog") else "", _reduced(set(atom.codes)),
            _reduced(set(atom.except_codes)), atom.comparator, value, high, atom.unit == ULN, week(atom.within_days),
            week(atom.at_least_days), atom.current, tuple(sorted(atom.sexes)))


def _factor(unit: str, term) -> float | None:
    try:
        return units.conversion_factor(unit, term.unit, term.molar_mass)
    except units.UnitError:
        return None


def same_structure(parsed: Criterion, truth: Criterion) -> bool:
    """Whether a parse reads a criterion exactly as its truth does (status, parts, how they combine)."""
    if parsed.status != truth.status:
        return False
    if truth.status != STRUCTURED:
        return True
    mine = sorted(map(repr, (_canonical(a) for a in parsed.atoms)))
    theirs = sorted(map(repr, (_canonical(a) for a in truth.atoms)))
    combine_matters = len(truth.atoms) > 1
    return mine == theirs and parsed.negated == truth.negated and (not combine_matters or parsed.combine == truth.combine)


# --- generated pools -----------------------------------------------------------------------------

# Why a listed candidate is not truly eligible: the matcher's reason on a criterion the truth fails.
FALSE_CANDIDATE_CAUSES = {
    "no result": "lab or score: no result", "result outside the window": "lab or score: only results outside the window",
    "unit cannot be converted": "lab: unit cannot be converted", "needs review": "criterion needs review (text)",
    "confirm at screening": "pregnancy or breastfeeding: not recorded",
    "confirmed at screening (not from records)": "confirmed at screening (administrative)",
    "list not stated complete": "condition or medication list not stated complete",
}
RANKED_RECALL = 0.98  # depth of the page's ranked list at which its precision is reported


def _false_candidate_causes(result: MatchResult, truth_passes: np.ndarray, false: np.ndarray,
                            causes: collections.Counter, alone: collections.Counter) -> None:
    """Count, for each listed candidate who is not truly eligible, the causes behind the criteria the truth fails."""
    for i in np.flatnonzero(false):
        failing = np.flatnonzero(~truth_passes[i])
        named = {FALSE_CANDIDATE_CAUSES.get(REASONS[result.reason[i, j]], f"other: {REASONS[result.reason[i, j]]}")
                 for j in failing}
        causes.update(named)
        if len(named) == 1:
            alone.update(named)


def _ranked_depth(result: MatchResult, eligible: np.ndarray, recall: float = RANKED_RECALL) -> tuple[int, int]:
    """(patients read, truly eligible among them) working down the page's ranking until ``recall`` of the truly
    eligible have been reached."""
    summary = funnel.patient_summary(result)
    position = {p: i for i, p in enumerate(result.pool.patients["patient_id"])}
    ranked = eligible[np.array([position[p] for p in summary["patient_id"]], dtype="int64")]
    if not eligible.any():
        return 0, 0
    found = np.cumsum(ranked)
    depth = int(np.searchsorted(found, np.ceil(recall * eligible.sum()))) + 1
    return depth, int(found[depth - 1])



CHANCE_REASONS = ("result outside the window", "no result")  # unknowns whose estimated chance is scored


def _chance_quality(truth: np.ndarray, chance: np.ndarray) -> dict[str, object]:
    """How well the ranking's chance of an unknown criterion predicts the truth: discrimination (AUC),
    calibration (mean estimate against the share that passes) and the Brier score."""
    from sklearn.metrics import brier_score_loss, roc_auc_score

    if len(truth) == 0:
        return {"cells": 0}
    out = {"cells": int(len(truth)), "share_passing": round(float(truth.mean()), 4),
           "mean_chance": round(float(chance.mean()), 4), "brier": round(float(brier_score_loss(truth, chance)), 4)}
    out["auc"] = round(float(roc_auc_score(truth, chance)), 4) if 0 < truth.sum() < len(truth) else None
    return out


def _interval(values_tp: np.ndarray, values_den: np.ndarray, rng: np.random.Generator) -> list[float]:
    """95% bootstrap interval of sum(tp)/sum(den) over protocols."""
    n = len(values_tp)
    picks = rng.integers(0, n, size=(BOOTSTRAP, n))
    ratios = values_tp[picks].sum(1) / np.maximum(values_den[picks].sum(1), 1)
    return [round(float(np.quantile(ratios, 0.025)), 4), round(float(np.quantile(ratios, 0.975)), 4)]


def evaluate_generated(seeds: tuple[int, ...] = TEST_SEEDS, patients: int = PATIENTS_PER_PROTOCOL) -> dict[str, object]:
    """Parse, match and score generated protocols and pools against their truth (see the module docstring)."""
    by_kind: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    by_hard: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    parse = collections.Counter()
    per_protocol = []
    dropped = 0
    match_seconds = 0.0
    causes, alone = collections.Counter(), collections.Counter()
    ceiling, ranked = [], []
    chances: dict[str, tuple[list, list]] = {reason: ([], []) for reason in CHANCE_REASONS}
    for seed in seeds:
        for index, indication in enumerate(INDICATION_CONDITION):
            rng = np.random.default_rng([seed, index])
            protocol = make_protocol(rng, indication, ("Phase 2", "Phase 3")[(seed + index) % 2])
            population = CONDITION_POPULATION[indication]
            sizes = np.full(SITES_PER_PROTOCOL, patients // SITES_PER_PROTOCOL)
            pool = simulate_pool(rng, protocol, f"E{seed}-{index}", [f"E{seed}-{index}-S{s}" for s in range(len(sizes))],
                                 sizes, np.full(len(sizes), SCREENING_DAY), population.female_share,
                                 population.age_mean, population.age_sd)
            parsed = parse_criteria(protocol.text)
            dropped += abs(len(parsed) - len(protocol.criteria)) + len(unassigned_lines(protocol.text,
                                                                                         split_criteria(protocol.text)))
            for criterion, truth in zip(parsed, protocol.criteria):
                parse[criterion.status] += 1
                parse["same_as_truth"] += same_structure(criterion, truth.truth)
                parse["total"] += 1
            started = time.perf_counter()
            result = match(Pool(pool.patients, pool.conditions, pool.observations, pool.medications), parsed)
            match_seconds += time.perf_counter() - started
            for j, (criterion, truth) in enumerate(zip(parsed, protocol.criteria)):
                predicted, actual = result.passes[:, j], pool.passes[:, j]
                kind = truth.truth.kind
                for bucket, key in ((by_kind, kind),):
                    bucket[key]["pairs"] += len(predicted)
                    bucket[key]["unknown"] += int((predicted == UNKNOWN).sum())
                    bucket[key]["decided"] += int((predicted != UNKNOWN).sum())
                    bucket[key]["correct"] += int(((predicted == MET) & actual).sum() + ((predicted == NOT_MET) & ~actual).sum())
                for hard in np.unique(pool.hard_case[:, j]):
                    if not hard:
                        continue
                    at = pool.hard_case[:, j] == hard
                    by_hard[hard]["pairs"] += int(at.sum())
                    by_hard[hard]["unknown"] += int((predicted[at] == UNKNOWN).sum())
                    by_hard[hard]["decided"] += int((predicted[at] != UNKNOWN).sum())
                    by_hard[hard]["correct"] += int(((predicted[at] == MET) & actual[at]).sum()
                                                    + ((predicted[at] == NOT_MET) & ~actual[at]).sum())
            eligible = pool.passes.all(1)
            candidates = (result.passes != NOT_MET).all(1)
            on_records = candidates & ((result.passes != UNKNOWN) | ~result.from_records[None, :]).all(1)
            per_protocol.append((int((candidates & eligible).sum()), int(candidates.sum()), int(eligible.sum()),
                                 int((on_records & eligible).sum()), int(on_records.sum())))
            _false_candidate_causes(result, pool.passes, candidates & ~eligible, causes, alone)
            ranked.append(_ranked_depth(result, eligible))
            for reason, (truths, estimates) in chances.items():
                at = (result.passes == UNKNOWN) & (result.reason == REASONS.index(reason))
                truths.append(pool.passes[at])
                estimates.append(result.chance[at])
            # The same pool read with the criteria's true structures: what perfect parsing would list.
            perfect = match(Pool(pool.patients, pool.conditions, pool.observations, pool.medications),
                            [c.truth for c in protocol.criteria])
            listed = (perfect.passes != NOT_MET).all(1)
            ceiling.append((int((listed & eligible).sum()), int(listed.sum())))
    counts = np.array(per_protocol)
    rng = np.random.default_rng(0)
    tp, cand, elig, tp_strict, strict = (counts[:, i] for i in range(5))
    patient = {
        "candidates (no criterion failed)": {
            "recall": round(tp.sum() / elig.sum(), 4), "recall_95ci": _interval(tp, elig, rng),
            "precision": round(tp.sum() / cand.sum(), 4), "precision_95ci": _interval(tp, cand, rng),
            "truly_eligible": int(elig.sum()), "candidates": int(cand.sum())},
        "eligible on records (nothing unknown from records)": {
            "recall": round(tp_strict.sum() / elig.sum(), 4), "recall_95ci": _interval(tp_strict, elig, rng),
            "precision": round(tp_strict.sum() / max(strict.sum(), 1), 4),
            "precision_95ci": _interval(tp_strict, strict, rng), "patients": int(strict.sum())},
    }
    ceiling_counts, ranked_counts = np.array(ceiling), np.array(ranked)
    false_total = int(cand.sum() - tp.sum())
    patient["candidates read with the true structures (perfect parsing)"] = {
        "precision": round(ceiling_counts[:, 0].sum() / ceiling_counts[:, 1].sum(), 4),
        "precision_95ci": _interval(ceiling_counts[:, 0], ceiling_counts[:, 1], rng), "candidates": int(ceiling_counts[:, 1].sum())}
    patient[f"ranked list, read until {RANKED_RECALL:.0%} of the truly eligible"] = {
        "precision": round(ranked_counts[:, 1].sum() / max(ranked_counts[:, 0].sum(), 1), 4),
        "precision_95ci": _interval(ranked_counts[:, 1], ranked_counts[:, 0], rng),
        "recall": round(ranked_counts[:, 1].sum() / elig.sum(), 4), "recall_95ci": _interval(ranked_counts[:, 1], elig, rng),
        "patients_read": int(ranked_counts[:, 0].sum())}
    patient["chance of an unknown criterion, against the truth"] = {
        reason: _chance_quality(np.concatenate(truths), np.concatenate(estimates))
        for reason, (truths, estimates) in chances.items()}
    patient["false candidates by cause"] = {
        "false_candidates": false_total,
        "with_this_cause": {k: {"patients": v, "share": round(v / max(false_total, 1), 4), "only_cause": alone[k]}
                            for k, v in causes.most_common()}}

    def table(bucket):
        return {key: {"pairs": c["pairs"], "unknown_share": round(c["unknown"] / c["pairs"], 4),
                      "accuracy_when_decided": round(c["correct"] / max(c["decided"], 1), 5)}
                for key, c in sorted(bucket.items())}

    return {
        "seeds": list(seeds), "protocols": len(per_protocol), "patients": int(len(per_protocol) * patients),
        "criteria": parse["total"], "criteria_dropped": dropped,
        "criteria_read": {"structured": parse["structured"], "confirmed_at_screening": parse["administrative"],
                          "needs_review": parse["needs_review"],
                          "share_parsed": round((parse["structured"] + parse["administrative"]) / parse["total"], 4),
                          "share_equal_to_truth": round(parse["same_as_truth"] / parse["total"], 4)},
        "criterion_level_by_kind": table(by_kind),
        "criterion_level_by_hard_case": table(by_hard),
        "patient_level": patient,
        "match_seconds_total": round(match_seconds, 2),
    }


# --- real texts ------------------------------------------------------------------------------------


def _studies(path: Path) -> dict[str, str]:
    texts = {}
    with zipfile.ZipFile(path) as archive:
        for name in sorted(archive.namelist()):
            if not name.endswith(".json"):
                continue
            document = json.loads(archive.read(name))
            section = document.get("protocolSection", {})
            nct = section.get("identificationModule", {}).get("nctId") or Path(name).stem
            texts[nct] = section.get("eligibilityModule", {}).get("eligibilityCriteria", "") or ""
    return texts


def _label_codes(concepts: list[str]) -> frozenset[str] | None:
    codes: set[str] = set()
    for concept in concepts:
        if concept.startswith("other:"):
            return None
        term = CONDITIONS_BY_KEY.get(concept) or MEDICATIONS_BY_KEY.get(concept)
        if term is not None:
            codes |= set(getattr(term, "icd10cm", ()) or getattr(term, "atc", ()))
        elif concept not in LABS_BY_KEY:
            return None
    return _reduced(codes)


STRUCTURABLE = {"age", "sex", "condition", "lab", "medication", "pregnancy", "contraception", "mixed", "ecog"}


def score_label(criterion: Criterion, label: dict) -> str:
    """``correct``, ``wrong`` (a structure that reads the criterion differently: the harmful error),
    ``missed`` (left for review though it could be structured) or ``mismatch`` (administrative for text or back)."""
    kind = label["kind"]
    if kind == "administrative":
        return {"administrative": "correct", "structured": "wrong"}.get(criterion.status, "mismatch")
    if kind in ("text", "procedure"):
        return {"needs_review": "correct", "structured": "wrong"}.get(criterion.status, "mismatch")
    codes = _label_codes(label.get("concepts", []))
    if codes is not None and label.get("icd10cm"):  # a condition outside the vocabulary, by its ICD-10-CM code
        codes = _reduced(set(codes) | set(label["icd10cm"]))
    if criterion.status != STRUCTURED:
        return "missed"
    if codes is None or label.get("extra"):
        return "wrong" if codes is None else ("correct" if _matches(criterion, label, codes) else "wrong")
    return "correct" if _matches(criterion, label, codes) else "wrong"


def _matches(criterion: Criterion, label: dict, codes: frozenset[str]) -> bool:
    atoms = criterion.atoms
    parsed_codes = _reduced({c for a in atoms if a.kind in ("condition", "medication") for c in a.codes})
    if parsed_codes != codes:
        return False
    labs = [c for c in label.get("concepts", []) if c in LABS_BY_KEY]
    if sorted({a.concept for a in atoms if a.kind in ("lab", "ecog")}) != sorted(set(labs)):
        return False
    if label.get("sexes") and sorted({s for a in atoms if a.kind == "sex" for s in a.sexes}) != sorted(label["sexes"]):
        return False
    numeric = [a for a in atoms if a.kind in ("age", "lab", "ecog") and a.comparator]
    if "value" in label:
        if not numeric:
            return False
        atom = numeric[0]
        term = LABS_BY_KEY.get(atom.concept)
        value = atom.value
        if term is not None and label.get("unit") and atom.unit not in (label["unit"], ULN):
            factor = _factor_between(atom.unit, label["unit"], term)
            value = None if factor is None else atom.value * factor
        if value is None or abs(value - label["value"]) > 0.01 * max(abs(label["value"]), 1) or atom.comparator != label[
                "comparator"]:
            return False
        if label.get("value_high") is not None and (atom.value_high is None or abs(atom.value_high - label["value_high"]) > 0.01):
            return False
    for name in ("within_days", "at_least_days"):
        wanted = label.get(name)
        found = {getattr(a, name) for a in atoms if getattr(a, name) is not None}
        if wanted is None and found or wanted is not None and not any(abs(f - wanted) <= 7 for f in found):
            return False
    if bool(label.get("negated")) != criterion.negated:
        return False
    if label.get("current") and not any(a.current for a in atoms):
        return False
    return True


def _factor_between(source: str, target: str, term) -> float | None:
    try:
        return units.conversion_factor(source, target, term.molar_mass)
    except units.UnitError:
        return None


def evaluate_registry(path: Path = UROLOGY_ZIP, labels_path: Path = LABELS_PATH,
                      new_labels_path: Path | None = NEW_LABELS_PATH) -> dict[str, object]:
    """The parser on every real text of the export, and its accuracy on the labelled samples (each on its own)."""
    texts = _studies(path)
    counts = collections.Counter()
    unassigned = 0
    for text in texts.values():
        parsed = parse_criteria(text)
        unassigned += len(unassigned_lines(text, split_criteria(text)))
        counts.update(c.status for c in parsed)
        counts["total"] += len(parsed)
    result = {
        "studies": len(texts), "criteria": counts["total"], "lines_not_assigned_to_a_criterion": unassigned,
        "shares": {"structured": round(counts["structured"] / counts["total"], 4),
                   "confirmed_at_screening": round(counts["administrative"] / counts["total"], 4),
                   "needs_review": round(counts["needs_review"] / counts["total"], 4)},
        "labelled_sample": score_sample(texts, labels_path),
    }
    if new_labels_path is not None and new_labels_path.exists():
        result["labelled_sample_new"] = score_sample(texts, new_labels_path)
    return result


def score_sample(texts: dict[str, str], labels_path: Path) -> dict[str, object]:
    """Parsing accuracy on one hand-labelled sample (see :func:`score_label`)."""
    document = json.loads(labels_path.read_text(encoding="utf-8"))
    outcome = collections.Counter()
    by_kind: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    missing_items = 0
    for label in document["labels"]:
        items = split_criteria(texts.get(label["nct_id"], ""))
        parsed = parse_criteria(texts.get(label["nct_id"], ""))
        if label["index"] >= len(items):
            missing_items += 1
            continue
        digest = hashlib.sha256(" ".join(items[label["index"]].text.split()).lower().encode()).hexdigest()[:16]
        if digest != label["text_sha256"] or items[label["index"]].section != label["section"]:
            missing_items += 1
            continue
        result = score_label(parsed[label["index"]], label)
        outcome[result] += 1
        by_kind[label["kind"]][result] += 1
    labelled = sum(outcome.values()) + missing_items
    return {
        "criteria": labelled, "studies": len({lab["nct_id"] for lab in document["labels"]}),
        "split_differently_from_the_labels": missing_items,
        "accuracy": round(outcome["correct"] / labelled, 4),
        "wrong_structure": outcome["wrong"], "missed_structure": outcome["missed"],
        "administrative_or_text_confused": outcome["mismatch"], "correct": outcome["correct"],
        "by_label_kind": {k: dict(v) for k, v in sorted(by_kind.items())},
    }


def evaluate_recruitment(seeds: tuple[int, ...] = TEST_SEEDS) -> dict[str, object]:
    from analytics.evaluation.recruitment_speed import bench_matching

    result: dict[str, object] = {"targets": TARGETS, "generated": evaluate_generated(seeds)}
    if UROLOGY_ZIP.exists():
        result["registry"] = evaluate_registry()
    else:
        result["registry"] = {"skipped": f"{UROLOGY_ZIP} is absent"}
    result["speed"] = bench_matching(runs=3)
    candidates = result["generated"]["patient_level"]["candidates (no criterion failed)"]
    ranked = result["generated"]["patient_level"][f"ranked list, read until {RANKED_RECALL:.0%} of the truly eligible"]
    result["meets_targets"] = {
        "recall": candidates["recall"] >= TARGETS["recall"],
        "precision": candidates["precision"] >= TARGETS["precision"],
        "precision_of_the_ranked_list_at_98%_recall": ranked["precision"] >= TARGETS["precision"] and (
            ranked["recall"] >= TARGETS["recall"]),
        "no_criterion_dropped": result["generated"]["criteria_dropped"] == 0 and (
            result["registry"].get("lines_not_assigned_to_a_criterion", 0) == 0),
        "speed": result["speed"]["meets_target"],
    }
    return result


def summary_lines(result: dict[str, object]) -> list[str]:
    g = result["generated"]
    c = g["patient_level"]["candidates (no criterion failed)"]
    s = g["patient_level"]["eligible on records (nothing unknown from records)"]
    lines = [
        f"Generated: {g['protocols']} protocols, {g['patients']:,} patients, {g['criteria']} criteria "
        f"(seeds {', '.join(map(str, g['seeds']))}); criteria dropped: {g['criteria_dropped']}",
        f"  criteria read: {g['criteria_read']['share_parsed']:.1%} structured or confirmed-at-screening, "
        f"{g['criteria_read']['share_equal_to_truth']:.1%} equal to the truth",
        f"  candidates (no criterion failed): recall {c['recall']:.4f} {c['recall_95ci']}, precision {c['precision']:.4f} "
        f"{c['precision_95ci']} (targets >= {TARGETS['recall']}, >= {TARGETS['precision']})",
        f"  eligible on records: recall {s['recall']:.4f} {s['recall_95ci']}, precision {s['precision']:.4f} {s['precision_95ci']}",
    ]
    perfect = g["patient_level"]["candidates read with the true structures (perfect parsing)"]
    ranked = g["patient_level"][f"ranked list, read until {RANKED_RECALL:.0%} of the truly eligible"]
    false = g["patient_level"]["false candidates by cause"]
    lines += [
        f"  candidates with perfect parsing (ceiling from records): precision {perfect['precision']:.4f} "
        f"{perfect['precision_95ci']}",
        f"  the page's ranked list read until {RANKED_RECALL:.0%} of the truly eligible: precision {ranked['precision']:.4f} "
        f"{ranked['precision_95ci']}, recall {ranked['recall']:.4f}",
        "  chance of an unknown against the truth: " + "; ".join(
            f"{k}: AUC {v.get('auc')}, mean chance {v.get('mean_chance')} vs share passing {v.get('share_passing')}, "
            f"Brier {v.get('brier')} ({v['cells']:,} cells)"
            for k, v in g["patient_level"]["chance of an unknown criterion, against the truth"].items()),
        f"  {false['false_candidates']:,} false candidates; causes (share, sole cause): " + "; ".join(
            f"{k} {v['share']:.0%} ({v['only_cause']})" for k, v in false["with_this_cause"].items()),
        "  criterion-level accuracy when decided (unknown share) by kind: " + "; ".join(
            f"{k} {v['accuracy_when_decided']:.4f} ({v['unknown_share']:.0%})" for k, v in g["criterion_level_by_kind"].items()),
    ]
    r = result["registry"]
    if "shares" in r:
        lines.append(
            f"Registry: {r['studies']} studies, {r['criteria']:,} criteria, lines not assigned: "
            f"{r['lines_not_assigned_to_a_criterion']}; structured {r['shares']['structured']:.1%}, confirmed at screening "
            f"{r['shares']['confirmed_at_screening']:.1%}, needs review {r['shares']['needs_review']:.1%}")
        for key, name in (("labelled_sample", "labelled sample"), ("labelled_sample_new", "new labelled sample")):
            if key in r:
                lab = r[key]
                lines.append(
                    f"  {name} ({lab['criteria']} criteria, {lab['studies']} studies): accuracy {lab['accuracy']:.1%}; "
                    f"wrong structure {lab['wrong_structure']}, missed {lab['missed_structure']}, "
                    f"administrative/text confused {lab['administrative_or_text_confused']}")
    sp = result["speed"]
    lines.append(f"Speed: {sp['patients']:,} patients x {sp['criteria']} criteria matched in {sp['seconds']:.2f} s "
                 f"(target < {TARGETS['seconds_10k_x_30']} s)")
    lines.append("Targets: " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in result["meets_targets"].items()))
    return lines

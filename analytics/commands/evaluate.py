"""``python -m analytics eval TARGET``: run a ground-truth evaluation and write its metrics as JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _rbm(args: argparse.Namespace) -> dict[str, object]:
    from analytics.evaluation.rbm import EvalConfig, evaluate_atypical_only, evaluate_rbm, summary_lines

    if args.only == "atypical":
        from analytics.evaluation.rbm.atypical_eval import ATYPICAL_CALIBRATION_SEEDS

        seeds = tuple(args.seeds) if args.seeds else (ATYPICAL_CALIBRATION_SEEDS if args.calibrate else None)
        result = evaluate_atypical_only(seeds, args.preset or "eval", quick=args.quick, calibration=args.calibrate)
        print("\n".join(summary_lines(result)))
        return result
    overrides: dict[str, object] = {}
    if args.only == "ae":
        overrides.update(usability_seeds=(), atypical=False, pilot_folder=None)
    if args.seeds:
        overrides["test_seeds"] = tuple(args.seeds)
        overrides["usability_seeds"] = () if args.only == "ae" else tuple(args.seeds[:3])
    if args.calibration_seeds:
        overrides["calibration_seeds"] = tuple(args.calibration_seeds)
    if args.preset:
        overrides["preset"] = args.preset
    if args.scenarios:
        overrides["scenarios"] = tuple(args.scenarios)
    config = EvalConfig.quick(**overrides) if args.quick else EvalConfig(**overrides)  # type: ignore[arg-type]
    result = evaluate_rbm(config)
    print("\n".join(summary_lines(result)))
    return result


def _enrollment(args: argparse.Namespace) -> dict[str, object]:
    from analytics.evaluation.enrollment import CALIBRATION_SEEDS, TEST_SEEDS, evaluate_enrollment, summary_lines

    seeds = tuple(args.seeds) if args.seeds else (CALIBRATION_SEEDS if args.calibrate else TEST_SEEDS)
    result = evaluate_enrollment(seeds=seeds, preset=args.preset or "enrollment", max_studies=args.max_studies,
                                 calibrate=args.calibrate)
    print("\n".join(summary_lines(result)))
    return result


def _drafting(args: argparse.Namespace) -> dict[str, object]:
    from analytics.evaluation.drafting import DEFAULT_SCENARIOS, DEFAULT_SEED, evaluate_drafting, summary_lines

    seed = args.seeds[0] if args.seeds else DEFAULT_SEED
    result = evaluate_drafting(seed=seed, scenarios=args.max_studies or DEFAULT_SCENARIOS)
    print("\n".join(summary_lines(result)))
    return result


def _quality(args: argparse.Namespace) -> dict[str, object]:
    from analytics.evaluation.quality import DEFAULT_SEEDS, evaluate_quality, summary_lines

    seeds = tuple(args.seeds) if args.seeds else DEFAULT_SEEDS
    result = evaluate_quality(seeds=seeds, preset=args.preset or "eval")
    print("\n".join(summary_lines(result)))
    return result


def _capa(args: argparse.Namespace) -> dict[str, object]:
    from analytics.evaluation.capa import CALIBRATION_SEEDS, TEST_SEEDS, evaluate_capa, summary_lines

    seeds = tuple(args.seeds) if args.seeds else (CALIBRATION_SEEDS if args.calibrate else TEST_SEEDS)
    result = evaluate_capa(seeds=seeds, preset=args.preset or "capa", calibrate=args.calibrate)
    print("\n".join(summary_lines(result)))
    return result


def _feasibility(args: argparse.Namespace) -> dict[str, object]:
    from analytics.evaluation.feasibility import CALIBRATION_SEEDS, RECORD_RULES, TEST_SEEDS, evaluate_feasibility, \
        summary_lines

    if args.calibrate and (args.ctgov or args.real_only):
        raise SystemExit("eval feasibility: --calibrate scores generated seeds only; --ctgov and --real-only are "
                         "for a test")
    seeds = tuple(args.seeds) if args.seeds else (CALIBRATION_SEEDS if args.calibrate else TEST_SEEDS)
    if args.real_only:
        seeds = ()
    # Calibration runs choose settings: generated seeds only, never the real exports' test window.
    result = evaluate_feasibility(seeds=seeds, include_real=not args.calibrate,
                                  record_rules=RECORD_RULES if args.calibrate else RECORD_RULES[:1],
                                  real_files=tuple(args.ctgov) if args.ctgov else None,
                                  exclude_files=tuple(args.exclude_ctgov or ()))
    print("\n".join(summary_lines(result)))
    return result


def _recruitment(args: argparse.Namespace) -> dict[str, object]:
    from analytics.evaluation.recruitment import TEST_SEEDS, evaluate_recruitment, summary_lines

    result = evaluate_recruitment(seeds=tuple(args.seeds) if args.seeds else TEST_SEEDS)
    print("\n".join(summary_lines(result)))
    return result


# target name -> runner; later evaluations add an entry here.
TARGETS = {"rbm": _rbm, "enrollment": _enrollment, "drafting": _drafting, "quality": _quality, "capa": _capa, "feasibility": _feasibility, "recruitment": _recruitment}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate analytics against synthetic ground truth")
    p.add_argument("target", choices=sorted(TARGETS), help="what to evaluate")
    p.add_argument("--out", type=Path, help="write the metrics as JSON to this file")
    p.add_argument("--seeds", type=int, nargs="+", help="generator seeds (default: the target's fresh seeds)")
    p.add_argument("--preset", help="generator preset (default: the target's own)")
    p.add_argument("--max-studies", type=int, help="enrollment: back-test only the first N studies of each seed; "
                                                   "drafting: the number of scenarios (13 drafts each)")
    p.add_argument("--calibration-seeds", type=int, nargs="+",
                   help="rbm: seeds that fix the thresholds at a given false-positive rate (default 7001-7003)")
    p.add_argument("--quick", action="store_true",
                   help="rbm: two test seeds, one calibration seed, ~200 injected sites per level (a few minutes)")
    p.add_argument("--only", choices=("atypical", "ae"),
                   help="rbm: only this part (atypical: the atypical-data tests and the pilot's atypical null, "
                        "about half a minute per seed; --seeds replaces its seeds, default 7111-7114; ae: the AE "
                        "under-reporting scenarios, without the usability grid, the atypical data and the pilot)")
    p.add_argument("--scenarios", nargs="+", help="rbm: only these scenarios (names in analytics/evaluation/rbm/scenarios.py)")
    p.add_argument("--calibrate", action="store_true",
                   help="enrollment, capa, feasibility: compare the variants on the calibration seeds (how the defaults were "
                        "chosen); rbm --only atypical: its calibration seeds (7001-7003, 7201-7206)")
    p.add_argument("--ctgov", type=Path, nargs="+", metavar="EXPORT",
                   help="feasibility: score these ClinicalTrials.gov exports (CSV or JSON zip) instead of the shared ones")
    p.add_argument("--exclude-ctgov", type=Path, nargs="+", metavar="EXPORT",
                   help="feasibility: leave out the trials of these exports (e.g. the shared ones, already measured)")
    p.add_argument("--real-only", action="store_true", help="feasibility: no generated histories, the exports only")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = TARGETS[args.target](args)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, default=str))
        print(f"wrote {args.out}")
    return 0

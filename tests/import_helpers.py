"""Shared helpers for the importer tests: where the shared real data lives, checksums, copies."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pandas as pd
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PILOT = SHARED_DATA / "sdtm" / "cdiscpilot01"
CTGOV = SHARED_DATA / "ctgov"
BAD_INPUTS = SHARED_DATA / "bad_inputs"

needs_shared_data = pytest.mark.skipif(
    not PILOT.is_dir(), reason=f"shared real data not found at {SHARED_DATA} (expected ../shared/data from the repo)"
)


def sha256(path: Path) -> str:
    """Digest of a warehouse file together with every restricted store beside it (and no staging file)."""
    path = Path(path)
    digest = hashlib.sha256(path.read_bytes())
    for other in sorted(path.parent.glob(f"*.restricted-*{path.suffix}")):
        digest.update(other.name.encode())
        digest.update(other.read_bytes())
    assert not list(path.parent.glob("*.building*")), "a staging file was left behind"
    return digest.hexdigest()


def copy_domains(target: Path, *names: str) -> Path:
    """Copy pilot files (e.g. "dm.xpt") into a temporary folder (never into the repository)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(PILOT / name, target / name)
    return target


def open_page(page: str, timeout: int = 120):
    """Run the app (the frame) and switch to ``page`` (e.g. "pages/data.py"), as a user's click would."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=timeout)
    at.switch_page(page)
    return at.run()


# --- a small SDTM study of the shapes real deliveries come in -----------------------------------

MINI = "MINI01"
MINI_SUBJECTS = ("MINI01-001-01", "MINI01-001-02", "MINI01-002-01", "MINI01-002-02")
MINI_ARMS = {"MINI01-001-01": ("A", "Drug A 10 mg"), "MINI01-001-02": ("PBO", "Placebo"),
             "MINI01-002-01": ("A", "Drug A 10 mg"), "MINI01-002-02": ("SCRNFAIL", "Screen Failure")}
MINI_FIRST_DOSE = {"MINI01-001-01": "2023-01-10", "MINI01-001-02": "2023-02-06", "MINI01-002-01": "2023-03-01"}
MINI_CONSENT = {"MINI01-001-01": "2023-01-02", "MINI01-001-02": "2023-01-30", "MINI01-002-01": "2023-02-20",
                "MINI01-002-02": "2023-03-01"}
MINI_VISIT_DAYS = {1: -7, 2: 1, 3: 15, 4: 29}


def _rows(**columns: list) -> pd.DataFrame:
    return pd.DataFrame(columns)


def mini_sv() -> pd.DataFrame:
    """SV as most real studies deliver it: no SVOCCUR column. Visits of the three treated subjects land a
    day late at week 2 for subject 002-01; the screen failure has only screening."""
    rows = []
    for subject, first in MINI_FIRST_DOSE.items():
        start = pd.Timestamp(first)
        for number, day in MINI_VISIT_DAYS.items():
            late = 1 if (subject == "MINI01-002-01" and number == 3) else 0
            date = start + pd.Timedelta(days=(day - 1 if day > 0 else day) + late)
            rows.append((subject, number, f"VISIT {number}", date.strftime("%Y-%m-%d")))
    rows.append(("MINI01-002-02", 1, "VISIT 1", "2023-03-01"))
    frame = pd.DataFrame(rows, columns=["USUBJID", "VISITNUM", "VISIT", "SVSTDTC"])
    return frame.assign(STUDYID=MINI, DOMAIN="SV")


def mini_study(folder: Path, *, drop: tuple[str, ...] = (), **extra: pd.DataFrame) -> Path:
    """Write the mini study as SDTM CSV files (one per dataset name) and return the folder.

    ``drop`` leaves datasets out; keyword arguments add or replace datasets (``lbch=frame``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    subjects = list(MINI_SUBJECTS)
    datasets = {
        "dm": _rows(STUDYID=[MINI] * 4, DOMAIN=["DM"] * 4, USUBJID=subjects, SITEID=["001", "001", "002", "002"],
                    RFICDTC=[MINI_CONSENT[s] for s in subjects],
                    RFSTDTC=[MINI_FIRST_DOSE.get(s, "") for s in subjects],
                    RFXSTDTC=[MINI_FIRST_DOSE.get(s, "") for s in subjects],
                    RFENDTC=["2023-03-31", "2023-04-30", "2023-05-31", ""],
                    ARMCD=[MINI_ARMS[s][0] for s in subjects], ARM=[MINI_ARMS[s][1] for s in subjects],
                    ACTARMCD=[MINI_ARMS[s][0] for s in subjects], ACTARM=[MINI_ARMS[s][1] for s in subjects],
                    COUNTRY=["USA", "USA", "DEU", "DEU"], SEX=["F", "M", "F", "M"], AGE=[50, 61, 45, 70],
                    AGEU=["YEARS"] * 4),
        "ts": _rows(STUDYID=[MINI] * 3, DOMAIN=["TS"] * 3, TSPARMCD=["TITLE", "TPHASE", "TBLIND"],
                    TSVAL=["A mini study", "Phase II", "DOUBLE BLIND"]),
        "ta": _rows(STUDYID=[MINI] * 2, DOMAIN=["TA"] * 2, ARMCD=["A", "PBO"], ARM=["Drug A 10 mg", "Placebo"],
                    TAETORD=[1, 1], ETCD=["TRTA", "PBO"], ELEMENT=["Drug A", "Placebo"], EPOCH=["TREATMENT"] * 2),
        "tv": _rows(STUDYID=[MINI] * 4, DOMAIN=["TV"] * 4, VISITNUM=list(MINI_VISIT_DAYS),
                    VISIT=[f"VISIT {n}" for n in MINI_VISIT_DAYS], VISITDY=list(MINI_VISIT_DAYS.values())),
        "sv": mini_sv(),
        "ex": _rows(STUDYID=[MINI] * 3, DOMAIN=["EX"] * 3, USUBJID=list(MINI_FIRST_DOSE), EXSEQ=[1, 1, 1],
                    EXTRT=["DRUG A", "PLACEBO", "DRUG A"], EXDOSE=[10, 0, 10], EXDOSU=["mg"] * 3,
                    EXSTDTC=list(MINI_FIRST_DOSE.values())),
        "suppex": _rows(STUDYID=[MINI] * 2, RDOMAIN=["EX"] * 2, USUBJID=["MINI01-001-01", "MINI01-001-02"],
                        IDVAR=["EXSEQ"] * 2, IDVARVAL=["1", "1"], QNAM=["EXLOT"] * 2, QLABEL=["Lot"] * 2,
                        QVAL=["DRUG A LOT 7", "PLACEBO LOT 3"]),
    }
    for name in drop:
        datasets.pop(name, None)
    datasets.update(extra)
    for name, frame in datasets.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


def as_release_1(current: Path, old: Path) -> int:
    """Rewrite a current warehouse the way release 1 laid it out (arms inside, ad hoc results); arms."""
    import duckdb

    from analytics.core import warehouse

    warehouse.copy_warehouse(current, old)
    with warehouse.inspect(current) as con:
        arms = con.execute("SELECT * FROM restricted.treatment_assignments").df()
    with duckdb.connect(str(old)) as con:
        con.execute("CREATE SCHEMA restricted")
        con.register("arms", arms)
        con.execute("CREATE TABLE restricted.treatment_assignments AS SELECT * FROM arms")
        con.execute("CREATE TABLE restricted.exposures (exposure_id BIGINT)")
        con.execute("DROP TABLE meta.study_versions")
        con.execute("DROP TABLE meta.derived_state")
        con.execute("DELETE FROM meta.warehouse_info WHERE key = 'restricted_file'")
        con.execute("DELETE FROM meta.schema_version")
        con.execute("INSERT INTO meta.schema_version VALUES (1, 'Initial CRO warehouse schema', now())")
    for store in old.parent.glob("*.restricted-*.duckdb"):
        store.unlink()
    return len(arms)

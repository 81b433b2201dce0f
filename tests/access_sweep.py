"""The access sweep's machinery: a warehouse whose sponsors carry markers, users of every kind, what is
forbidden to each, and the text of everything a page or a function hands out.

The marker warehouse is the tiny portfolio (two sponsors) plus a small SDTM study imported for a
third sponsor. Sponsor names end in ``[MK-<sponsor id>]`` and study titles in ``[MK-<study id>]``;
every treatment-revealing value (restricted store) starts with ``ARMMK`` or names the study drug
``ZORBEXAMAB``. For each user, :func:`forbidden_for` lists what they must never receive: ids and
names of other sponsors' studies, sites and subjects, of other sites for a monitor, every subject id
for a role limited to aggregates, every arm marker for a blinded role. :func:`leaks` finds them in
any text; :func:`texts_of` turns tables, figures, mappings and bytes (a CSV, an Excel file) into text.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analytics.core import derived, warehouse
from analytics.core.scope import AccessScope
from analytics.generator import generate_portfolio
from analytics.generator.presets import PRESETS
from analytics.registry import REGISTRY

SEED = 11
ARM_MARKERS = ("ARMMK", "ZORBEX")  # every value of the restricted store carries one
ARM_COLUMNS = {"treatment_assignments": ("arm", "actual_arm"), "exposures": ("treatment",),
               "treatment_qualifiers": ("value",), "trial_arms": ("arm", "element")}
THIRD_SPONSOR = "Tertia Bio"  # the imported study's sponsor (its id is made from the name: TERTIA-BIO)
MINI_STUDY = "MINI01"
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


# --- the marker warehouse ------------------------------------------------------------------------


def _marker_mini_study(folder: Path) -> Path:
    """The importer tests' mini SDTM study with arm texts that carry the markers."""
    from tests.import_helpers import mini_study

    mini_study(folder)
    replace = {"A": "ARMMKA", "PBO": "ARMMKP", "Drug A 10 mg": "ZORBEXAMAB 10 mg", "Placebo": "ARMMK Placebo",
               "DRUG A": "ZORBEXAMAB", "PLACEBO": "ARMMK PLACEBO", "Drug A": "ZORBEXAMAB",
               "DRUG A LOT 7": "ZORBEXAMAB LOT 7", "PLACEBO LOT 3": "ARMMK PLACEBO LOT 3"}
    columns = {"dm": ("ARMCD", "ARM", "ACTARMCD", "ACTARM"), "ta": ("ARMCD", "ARM", "ELEMENT"),
               "ex": ("EXTRT",), "suppex": ("QVAL",)}
    for name, cols in columns.items():
        path = folder / f"{name}.csv"
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        for col in cols:
            frame[col] = frame[col].map(lambda v: replace.get(v, v))
        frame.to_csv(path, index=False)
    return folder


def build_marker_warehouse(path: Path, work: Path) -> Path:
    """The tiny portfolio with markers in names and arms, plus the mini SDTM study of a third sponsor."""
    from analytics.importers.sdtm import SdtmOptions, prepare_sdtm
    from analytics.importers.staging import commit

    with warehouse.build_aside(path) as con:
        generate_portfolio(con, "tiny", SEED)
        con.execute("UPDATE main.sponsors SET name = name || ' [MK-' || sponsor_id || ']'")
        con.execute("UPDATE main.studies SET title = coalesce(title, study_id) || ' [MK-' || study_id || ']'")
        for table, columns in ARM_COLUMNS.items():
            for column in columns:
                con.execute(f"UPDATE restricted.main.{table} SET {column} = '{ARM_MARKERS[0]} ' || {column} "
                            f"WHERE {column} IS NOT NULL")
        warehouse.set_info(con, {"as_of_date": PRESETS["tiny"].as_of.isoformat(), "preset": "tiny", "seed": SEED})
        derived.refresh(con, REGISTRY)
    mini = _marker_mini_study(work / "mini")
    commit(prepare_sdtm(mini, path, SdtmOptions(study_id=MINI_STUDY, sponsor=THIRD_SPONSOR)), path)
    warehouse.close_all()
    return path


# --- who sees what -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Portfolio:
    """The whole marker warehouse, read without any scope (what the sweep compares against)."""

    studies: pd.DataFrame  # study_id, sponsor_id, protocol_id, title, sponsor_name
    sites: pd.DataFrame  # study_site_id, study_id, site_id, site_name
    subjects: pd.DataFrame  # subject_id, study_id, study_site_id
    reference_names: frozenset[str]  # names that also occur in reference data (never proof of a leak)

    @classmethod
    def read(cls, db: Path) -> "Portfolio":
        with warehouse.inspect(db) as con:
            studies = con.execute("SELECT st.study_id, st.sponsor_id, st.protocol_id, st.title, sp.name AS sponsor_name "
                                  "FROM main.studies st JOIN main.sponsors sp USING (sponsor_id)").df()
            sites = con.execute("SELECT ss.study_site_id, ss.study_id, ss.site_id, si.name AS site_name "
                                "FROM main.study_sites ss JOIN main.sites si USING (site_id)").df()
            subjects = con.execute("SELECT subject_id, study_id, study_site_id FROM main.subjects").df()
            names = {r[0] for r in con.execute("SELECT DISTINCT facility FROM main.historical_trial_sites "
                                               "WHERE facility IS NOT NULL").fetchall()}
        return cls(studies, sites, subjects, frozenset(names))

    def sponsors(self) -> list[str]:
        return sorted(self.studies["sponsor_id"].unique())

    def visible(self, scope: AccessScope) -> tuple[set[str], set[str]]:
        """(study ids, study-site ids) ``scope`` may see."""
        st = self.studies
        keep = pd.Series(True, index=st.index)
        if scope.sponsor_ids is not None:
            keep &= st["sponsor_id"].isin(scope.sponsor_ids)
        if scope.study_ids is not None:
            keep &= st["study_id"].isin(scope.study_ids)
        studies = set(st.loc[keep, "study_id"])
        sites = self.sites[self.sites["study_id"].isin(studies)]
        if scope.study_site_ids is not None:
            sites = sites[sites["study_site_id"].isin(scope.study_site_ids)]
        return studies, set(sites["study_site_id"])


@dataclass
class Forbidden:
    """What one user must never receive: whole tokens (ids), phrases (names) and markers (any case)."""

    tokens: set[str] = field(default_factory=set)
    phrases: set[str] = field(default_factory=set)
    markers: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.tokens or self.phrases or self.markers)


def forbidden_for(portfolio: Portfolio, scope: AccessScope) -> Forbidden:
    """Everything outside ``scope`` in the marker warehouse, and what its role may not see at all."""
    studies, sites = portfolio.visible(scope)
    found = Forbidden()
    other = portfolio.studies[~portfolio.studies["study_id"].isin(studies)]
    visible_sponsors = set(portfolio.studies.loc[portfolio.studies["study_id"].isin(studies), "sponsor_id"])
    for row in other.itertuples():
        found.tokens |= {row.study_id, row.protocol_id, f"MK-{row.study_id}"}
        found.phrases.add(row.title)
        if row.sponsor_id not in visible_sponsors:
            found.tokens |= {row.sponsor_id, f"MK-{row.sponsor_id}"}
            found.phrases.add(row.sponsor_name)
    hidden_sites = portfolio.sites[~portfolio.sites["study_site_id"].isin(sites)]
    found.tokens |= set(hidden_sites["study_site_id"])
    shown_institutions = set(portfolio.sites.loc[portfolio.sites["study_site_id"].isin(sites), "site_id"])
    hidden_institutions = hidden_sites[~hidden_sites["site_id"].isin(shown_institutions)]
    found.tokens |= set(hidden_institutions["site_id"])
    shown_names = set(portfolio.sites.loc[portfolio.sites["site_id"].isin(shown_institutions), "site_name"])
    found.phrases |= set(hidden_institutions["site_name"]) - shown_names - portfolio.reference_names
    subjects = portfolio.subjects
    hidden_subjects = subjects if not scope.subject_level else subjects[~subjects["study_site_id"].isin(sites)]
    found.tokens |= set(hidden_subjects["subject_id"])
    found.markers = ARM_MARKERS if scope.blinded else ()
    found.tokens.discard("")
    found.phrases = {p for p in found.phrases if isinstance(p, str) and p.strip()}
    return found


def leaks(texts: Iterable[str], forbidden: Forbidden, where: str) -> list[str]:
    """One line per forbidden id, name or marker found: where, what, and the text around it."""
    found: list[str] = []
    for text in texts:
        if not text:
            continue
        hits = [t for t in set(_TOKEN.findall(text)) if t in forbidden.tokens]
        hits += [p for p in forbidden.phrases if p in text]
        upper = text.upper()
        hits += [m for m in forbidden.markers if m in upper]
        for hit in hits:
            at = upper.find(hit.upper())
            found.append(f"{where}: {hit!r} in …{text[max(at - 60, 0):at + len(hit) + 60]!r}…")
    return found


# --- text of what was handed out -----------------------------------------------------------------


def texts_of(value: object) -> Iterator[str]:
    """Every string in a result: table cells and labels, figure JSON, mappings, files' bytes."""
    if value is None or isinstance(value, (bool, int, float)):
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, (bytes, bytearray)):
        yield from _file_texts(bytes(value))
    elif isinstance(value, pd.DataFrame):
        yield from (str(c) for c in value.columns)
        yield from (str(i) for i in value.index)
        for column in value.columns:
            for cell in value[column]:
                yield from texts_of(cell) if isinstance(cell, (list, tuple, dict)) else (str(cell),)
    elif isinstance(value, pd.Series):
        yield str(value.name)
        yield from texts_of(value.to_frame())
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from texts_of(item)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from texts_of(item)
    elif hasattr(value, "to_plotly_json"):
        yield json.dumps(value.to_plotly_json(), default=str)
    elif dataclasses.is_dataclass(value):
        yield from texts_of(dataclasses.asdict(value))
    else:
        yield repr(value)


def _file_texts(content: bytes) -> Iterator[str]:
    if content[:2] == b"PK":  # an Excel workbook (or any zip): the text of every member
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            for name in archive.namelist():
                yield archive.read(name).decode("utf-8", "replace")
    else:
        yield content.decode("utf-8", "replace")


def users_file_text(portfolio: Portfolio) -> str:
    """A users file with one user of every kind the sweep checks, for the marker warehouse's ids."""
    sponsors = portfolio.sponsors()
    generated = [s for s in sponsors if s.startswith("SP")]
    first, second = generated[0], generated[1]
    third = next(s for s in sponsors if s not in generated)
    study = sorted(portfolio.studies.loc[portfolio.studies["sponsor_id"] == first, "study_id"])[0]
    sites = sorted(portfolio.sites.loc[portfolio.sites["study_id"] == study, "study_site_id"])[:2]
    entries = {
        "lead_all": ("clinops_lead", '"*"', ""),
        "lead_two": ("clinops_lead", json.dumps([first, third]), ""),
        "monitor": ("monitor", '"*"', f"studies = {json.dumps([study])}\nsites = {json.dumps(sites)}\n"),
        "sponsor": ("sponsor_viewer", json.dumps([second]), ""),
        "dm_limited": ("data_manager", json.dumps([third]), ""),
        "quality": ("quality_manager", json.dumps([second]), ""),
        "writer": ("medical_writer", json.dumps([first]), ""),
        "statistician": ("unblinded_statistician", json.dumps([second]), ""),
        "presenter": ("clinops_lead", '"*"', ""),
        "admin": ("admin", '"*"', ""),
    }
    return "".join(f'[users.{uid}]\nrole = "{role}"\nsponsors = {sponsors_}\n{extra}\n'
                   for uid, (role, sponsors_, extra) in entries.items())

"""The access sweep: for every kind of user, every page they may open (AppTest, with and without its
own parameters set), every download those pages offer, every log line, and every page-facing function
called directly (with ids inside and outside the user's scope) hand out nothing outside the scope.

Pages come from ``PAGES`` and functions from ``analytics.core.caching.PAGE_FUNCTIONS`` (every cached
function of every ``analytics`` module), so a new page or function is swept with no edit here. A leak
fails the test and prints where: user, page or function, element, and the text around the leak.
See :mod:`tests.access_sweep` for the marker warehouse and what each user may not see.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf.json_format import MessageToDict
from streamlit.testing.v1 import AppTest

import analytics
from analytics.core import caching
from analytics.core.scope import NO_FILTER, AccessScope, PortfolioFilter
from analytics.core.warehouse import Warehouse
from analytics.drafting.context import SubjectUnavailable
from analytics.frame import access, identity, presentation
from analytics.frame.pages import PAGES, pages_for
from analytics.frame.session import CONTEXT_KEY
from tests.access_sweep import (ARM_MARKERS, Forbidden, Portfolio, build_marker_warehouse, forbidden_for, leaks,
                                texts_of, users_file_text)

APP = str(Path(__file__).resolve().parents[1] / "app.py")
# The order matters: the first user sees everything, so any cached result keyed without the scope
# would reach the users after it.
SWEEP_USERS = ("lead_all", "lead_two", "monitor", "sponsor", "dm_limited", "quality", "writer", "statistician",
               "presenter")
PRESENTED_SPONSOR = "SP02"
UNKNOWN_ID = "ZZ-UNKNOWN-0"


@pytest.fixture(scope="module")
def marker_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("marker")
    return build_marker_warehouse(folder / "warehouse.duckdb", folder)


@pytest.fixture(scope="module")
def portfolio(marker_db: Path) -> Portfolio:
    return Portfolio.read(marker_db)


@pytest.fixture(scope="module")
def users_file(portfolio: Portfolio, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("users") / "users.toml"
    path.write_text(users_file_text(portfolio))
    presenter = identity.load_users(path)["presenter"]
    presentation.lock(presenter, PRESENTED_SPONSOR)
    return path


@pytest.fixture
def sweep_env(marker_db: Path, users_file: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CRO_WAREHOUSE", str(marker_db))
    monkeypatch.setenv("CRO_USERS_FILE", str(users_file))
    return marker_db


def effective_user(user_id: str, users_file: Path) -> identity.User:
    """The user as the frame serves them (the presenter: presenting to one sponsor)."""
    user = identity.load_users(users_file)[user_id]
    lock = presentation.current_lock(user_id)
    return identity.presenting(user, lock.sponsor_id) if lock else user


# --- what a page hands out -----------------------------------------------------------------------


def _walk(node) -> Iterator:
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _walk(child)


_INTERNAL_IDS = {"id", "deferredFileId"}  # hashes Streamlit gives elements, new in every run


def _without_ids(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k not in _INTERNAL_IDS}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


def page_texts(at: AppTest) -> Iterator[tuple[str, str]]:
    """(element, text) for every element the run drew (tables by value, charts by their JSON)."""
    for node in _walk(at._tree):
        kind = getattr(node, "type", type(node).__name__)
        label = f"{kind}[{getattr(node, 'key', None) or getattr(node, 'label', '') or ''}]"
        if kind in ("arrow_data_frame", "dataframe", "table") and hasattr(node, "value"):
            texts = texts_of(node.value)
        elif kind == "plotly_chart":
            texts = iter([node.proto.spec])
        elif getattr(node, "proto", None) is not None:
            texts = texts_of(_without_ids(MessageToDict(node.proto)))
        else:
            continue
        for text in texts:
            yield label, text


def downloads(at: AppTest) -> dict[str, tuple[str, bytes]]:
    """key -> (file name, the bytes a click would produce) of every download this run offered."""
    offered = at.session_state[access.DOWNLOADS_KEY] if access.DOWNLOADS_KEY in at.session_state else {}
    return {key: (name, produce()) for key, (name, produce) in offered.items()}


class _Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(record.getMessage())
        except Exception:  # a record whose arguments do not format is still not a leak
            self.lines.append(str(record.msg))


def render(user_id: str, page_path: str, monkeypatch: pytest.MonkeyPatch, params: dict | None = None) -> AppTest:
    monkeypatch.setenv("CRO_USER", user_id)
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in (params or {}).items():
        at.query_params[key] = value
    at.switch_page(page_path)
    return at.run()


def sweep_page(user_id: str, spec, forbidden: Forbidden, monkeypatch: pytest.MonkeyPatch,
               params: dict | None = None) -> tuple[list[str], AppTest]:
    """Leaks of one render of one page (elements, downloads, log lines), and the render."""
    handler = _Captured()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        at = render(user_id, spec.path, monkeypatch, params)
        offered = downloads(at)
    finally:
        root.removeHandler(handler)
    where = f"{user_id} on {spec.key}" + (f" with {params}" if params else "")
    found = [line for element, text in page_texts(at) for line in leaks([text], forbidden, f"{where}, {element}")]
    for key, (name, content) in offered.items():
        found += leaks(texts_of(content), forbidden, f"{where}, download {key} ({name})")
    found += leaks(handler.lines, forbidden, f"{where}, log")
    assert not at.exception, f"{where}: {[e.value for e in at.exception]}"
    buttons = [n for n in _walk(at._tree) if getattr(n, "type", "") == "download_button"]
    assert len(buttons) == len(offered), (f"{where}: {len(buttons)} download buttons but {len(offered)} audited "
                                          "downloads: offer files through analytics.frame.access.download_button")
    return found, at


def _chosen_params(at: AppTest, spec) -> dict[str, str]:
    """The page's own parameters set to an allowed value each (the last: often not the default)."""
    ctx = at.session_state[CONTEXT_KEY]
    chosen = {}
    for param in spec.params:
        allowed = list(ctx.choices.get(param.name, {}))
        if allowed:
            chosen[param.name] = allowed[-1]
    return chosen


@pytest.mark.parametrize("user_id", SWEEP_USERS)
def test_no_page_hands_a_user_anything_outside_their_scope(user_id, sweep_env, users_file, portfolio,
                                                           monkeypatch) -> None:
    user = effective_user(user_id, users_file)
    forbidden = forbidden_for(portfolio, user.scope)
    assert forbidden or not user.scope.blinded, "every sweep user but the unblinded full one has something forbidden"
    found: list[str] = []
    swept = []
    for spec in pages_for(user.role):
        first, at = sweep_page(user_id, spec, forbidden, monkeypatch)
        found += first
        chosen = _chosen_params(at, spec)
        if chosen:
            more, _ = sweep_page(user_id, spec, forbidden, monkeypatch, chosen)
            found += more
        swept.append(spec.key)
    assert swept, f"{user_id} opens no page"
    assert not found, f"{len(found)} leak(s):\n" + "\n".join(found[:40])


def test_the_presenter_sees_only_the_presented_sponsors_pages_and_studies(sweep_env, users_file, portfolio,
                                                                          monkeypatch) -> None:
    user = effective_user("presenter", users_file)
    assert user.presenting_sponsor == PRESENTED_SPONSOR and user.scope.sponsor_ids == {PRESENTED_SPONSOR}
    assert {p.key for p in pages_for(user.role)} <= {p.key for p in pages_for(identity.SPONSOR_VIEWER)}
    at = render("presenter", "pages/overview.py", monkeypatch)
    studies = set(at.dataframe[0].value["Study"])
    assert studies == set(portfolio.studies.loc[portfolio.studies["sponsor_id"] == PRESENTED_SPONSOR, "study_id"])
    assert at.sidebar.multiselect(key="url_sponsor").options == [
        portfolio.studies.set_index("sponsor_id").loc[PRESENTED_SPONSOR, "sponsor_name"]]
    assert any("Presenting to" in m.value for m in at.sidebar.markdown)


# --- links naming ids outside the scope ----------------------------------------------------------


def _dump(at: AppTest) -> list[str]:
    return [text for _, text in page_texts(at)]


def _outside_ids(portfolio: Portfolio, scope: AccessScope) -> dict[str, str]:
    """One id of each kind (sponsor, study, study-site) that ``scope`` may not see."""
    studies, sites = portfolio.visible(scope)
    visible_sponsors = set(portfolio.studies.loc[portfolio.studies["study_id"].isin(studies), "sponsor_id"])
    return {
        "sponsor": next(s for s in portfolio.sponsors() if s not in visible_sponsors),
        "study": next(s for s in sorted(portfolio.studies["study_id"]) if s not in studies),
        "site": next(s for s in sorted(portfolio.sites["study_site_id"]) if s not in sites),
    }


@pytest.mark.parametrize("user_id", ("sponsor", "monitor", "presenter"))
def test_a_link_naming_an_outside_id_looks_exactly_like_one_naming_an_unknown_id(user_id, sweep_env, users_file,
                                                                                 portfolio, monkeypatch) -> None:
    user = effective_user(user_id, users_file)
    outside = _outside_ids(portfolio, user.scope)
    differences = []
    for spec in pages_for(user.role):
        names = [n for n in ("sponsor", "study", "site") if n in spec.filters] + [p.name for p in spec.params]
        if not names:
            continue
        unknown = _dump(render(user_id, spec.path, monkeypatch, {n: UNKNOWN_ID for n in names}))
        for kind, value in outside.items():
            shown = _dump(render(user_id, spec.path, monkeypatch, {n: value for n in names}))
            if [t.replace(value, UNKNOWN_ID) for t in shown] != unknown:
                differences.append(f"{user_id} on {spec.key}: a link naming the {kind} {value} differs from an "
                                   "unknown id")
    assert not differences, "\n".join(differences)


# --- page-facing functions called directly ---------------------------------------------------------


def page_functions() -> list:
    """Every cached function of every analytics module (importing them all registers them)."""
    for module in pkgutil.walk_packages(analytics.__path__, "analytics."):
        # Not library modules: the command line's entry point and Alembic's scripts run when imported.
        if not module.name.endswith("__main__") and ".records_migrations" not in module.name:
            importlib.import_module(module.name)
    return list(caching.PAGE_FUNCTIONS)


def _samples(portfolio: Portfolio, scope: AccessScope, wh: Warehouse) -> dict[str, list]:
    """Values for the arguments page-facing functions take, inside and outside ``scope``."""
    from analytics.kri.service import METHOD_LABELS, kri_names
    from analytics.drafting.specs import SUBJECT_KINDS
    from analytics.feasibility.scenario import ScenarioInputs
    from analytics.feasibility.trials import TrialSelection
    from analytics.quality.service import STATUSES as QUALITY_STATUSES
    from analytics.kri.tables import BREAKDOWN_LABELS

    studies, sites = portfolio.visible(scope)
    outside = _outside_ids(portfolio, scope) if (studies != set(portfolio.studies["study_id"])
                                                 or scope.study_site_ids is not None) else {}
    inside_study = sorted(studies)[:1]
    inside_site = sorted(sites)[:1]
    findings = wh.query(AccessScope.full_access(), "SELECT finding_id, study_site_id FROM quality_findings "
                                                   "ORDER BY finding_id")
    visible_subjects = portfolio.subjects.loc[portfolio.subjects["study_site_id"].isin(sites), "subject_id"]
    inside_subject = sorted(visible_subjects)[:1]
    outside_subject = next((s for s in sorted(portfolio.subjects["subject_id"]) if s not in set(visible_subjects)),
                           UNKNOWN_ID)
    areas = sorted(wh.query(AccessScope.full_access(), "SELECT DISTINCT therapeutic_area FROM scoped_studies "
                                                       "WHERE therapeutic_area IS NOT NULL")["therapeutic_area"])
    return {
        "method": list(METHOD_LABELS),
        "study_id": inside_study + [outside.get("study", UNKNOWN_ID)],
        "study_site_id": inside_site + [outside.get("site", UNKNOWN_ID)],
        "kri_id": list(kri_names())[:2],
        "kind": list(BREAKDOWN_LABELS),
        "subject_kind": list(SUBJECT_KINDS),
        "therapeutic_area": areas,
        "countries": [()],
        "sponsors": [(), (outside.get("sponsor", UNKNOWN_ID),)],
        "studies": [(), (outside.get("study", UNKNOWN_ID),)],
        "study_ids": [tuple(inside_study), (outside.get("study", UNKNOWN_ID),)],
        "as_of": [wh.as_of()],
        # Recruitment: no criteria matches every patient of the pools the scope reaches.
        "criteria": ["[]"],
        "relax_key": [None],
        "relaxed_json": [None],
        # Feasibility reads registry trials (reference data); its scoped parts are the candidate sites.
        "selection": [TrialSelection()],
        "source": [None],
        "target": ["duration", "rate"],
        "groups": [()],
        "inputs": [ScenarioInputs(target=120, sites=12, countries=3, start=wh.as_of(), ramp_months=6.0,
                                  planned_months=18.0, screening_rate=2.0, screening_rate_p10=1.0,
                                  screening_rate_p90=3.0, screen_failure=0.3)],
        "ids": [tuple(findings.loc[findings["study_site_id"].isin(sites), "finding_id"][:3]),
                tuple(findings.loc[~findings["study_site_id"].isin(sites), "finding_id"][:3])],
        "hidden": [()],
        "severities": [()],
        "categories": [()],
        "checks": [()],
        "status": list(QUALITY_STATUSES),
        "page": [1],
        "subject_id": inside_subject + [outside_subject],
        "outside_subjects": [outside.get("study", UNKNOWN_ID), outside.get("site", UNKNOWN_ID),
                             f"sponsor:{outside.get('sponsor', UNKNOWN_ID)}"],
        "filters": [NO_FILTER, PortfolioFilter(study_ids=(outside.get("study", UNKNOWN_ID),)),
                    PortfolioFilter(study_site_ids=(outside.get("site", UNKNOWN_ID),))],
    }


def _document_calls(samples: dict[str, list], wh: Warehouse, scope: AccessScope) -> Iterator[dict]:
    """Every document type about a subject the user may pick, and about subjects outside the scope."""
    from analytics.drafting.service import CATALOGUE_BY_KEY, subject_choices

    for doc_key, document in CATALOGUE_BY_KEY.items():
        inside = list(subject_choices(wh, scope, document.subject_kind))[:1]
        for subject in inside + samples["outside_subjects"]:
            yield {"wh": wh, "scope": scope, "doc_key": doc_key, "subject": subject}


def _calls(function, samples: dict[str, list], wh: Warehouse, scope: AccessScope) -> Iterator[dict]:
    """Keyword arguments for calls of ``function``: each sample value of one argument at a time."""
    signature = inspect.signature(function)
    if {"doc_key", "subject"} <= set(signature.parameters):  # a document's subject depends on its type
        yield from _document_calls(samples, wh, scope)
        return
    base: dict[str, object] = {}
    varied: list[tuple[str, list]] = []
    for name, parameter in signature.parameters.items():
        if name == "wh":
            base[name] = wh
        elif name == "scope":
            base[name] = scope
        elif name in samples:
            base[name] = samples[name][0]
            varied.append((name, samples[name]))
        elif parameter.default is not inspect.Parameter.empty:
            continue
        else:
            raise AssertionError(f"{function.__module__}.{function.__qualname__} takes {name!r}, which the sweep "
                                 "has no sample values for: add them to _samples in tests/test_access_sweep.py")
    yield dict(base)
    for name, values in varied:
        for value in values[1:]:
            yield {**base, name: value}


@pytest.mark.parametrize("user_id", SWEEP_USERS)
def test_no_page_facing_function_hands_out_anything_outside_the_scope(user_id, sweep_env, users_file, portfolio,
                                                                      marker_db) -> None:
    user = effective_user(user_id, users_file)
    forbidden = forbidden_for(portfolio, user.scope)
    wh = Warehouse.open(marker_db)
    samples = _samples(portfolio, user.scope, wh)
    functions = page_functions()
    assert len(functions) >= 10, "the page-facing functions were not found"
    found: list[str] = []
    for function in functions:
        name = f"{function.__module__}.{function.__qualname__}"
        for kwargs in _calls(function, samples, wh, user.scope):
            shown = {k: v for k, v in kwargs.items() if k not in ("wh", "scope")}
            try:
                result = function(**kwargs)
            except caching.SubjectLevelRefused:
                assert not user.scope.subject_level, f"{name} refused subject rows to a subject-level scope"
                continue
            except SubjectUnavailable:  # a document about a subject outside the scope: refused, nothing shown
                assert kwargs["subject"] in samples["outside_subjects"], f"{name}({shown}) refused an inside subject"
                continue
            found += leaks(texts_of(result), forbidden, f"{user_id}: {name}({shown})")
    assert not found, f"{len(found)} leak(s):\n" + "\n".join(found[:40])


def test_the_sweep_finds_a_planted_leak(portfolio) -> None:
    """The sweep can fail: a table with another sponsor's study, a figure with an arm, a CSV with a subject."""
    scope = AccessScope(sponsor_ids=frozenset({"SP02"}), subject_level=False)
    forbidden = forbidden_for(portfolio, scope)
    other_study = portfolio.studies.loc[portfolio.studies["sponsor_id"] == "SP01", "study_id"].iloc[0]
    subject = portfolio.subjects.loc[portfolio.subjects["study_id"] == "ST004", "subject_id"].iloc[0]
    import pandas as pd
    import plotly.graph_objects as go

    planted = [pd.DataFrame({"Study": [other_study]}), go.Figure(go.Bar(x=["ARMMK Placebo"], y=[1])),
               f"site,subject\nx,{subject}\n".encode()]
    for item in planted:
        assert leaks(texts_of(item), forbidden, "planted"), f"the sweep missed {item!r}"
    assert ARM_MARKERS[0] in forbidden.markers


def test_the_page_sweep_sees_tables_charts_and_downloads(sweep_env, users_file, portfolio, monkeypatch) -> None:
    """What the lead sees of every sponsor is a leak for the sponsor viewer: the sweep must say so, per element."""
    forbidden = forbidden_for(portfolio, effective_user("sponsor", users_file).scope)
    spec = next(p for p in PAGES if p.key == "overview")
    found, _ = sweep_page("lead_all", spec, forbidden, monkeypatch)
    places = " ".join(found)
    assert "dataframe" in places or "arrow_data_frame" in places, places[:500]
    assert "plotly_chart" in places and "download download_overview" in places


# --- a blinded data manager's load ----------------------------------------------------------------


def test_a_blinded_loaders_report_and_load_reveal_no_arm_and_are_audited(marker_db, users_file, portfolio, tmp_path,
                                                                         monkeypatch) -> None:
    from analytics.core import warehouse
    from tests.access_sweep import _marker_mini_study

    db = warehouse.copy_warehouse(marker_db, tmp_path / "db" / "warehouse.duckdb")
    root = tmp_path / "incoming"
    folder = _marker_mini_study(root / "mini2")
    ex = folder / "ex.csv"
    ex.write_text(ex.read_text().replace("2023-02-06", "2023-13-45"))  # a finding on an arm-revealing row
    monkeypatch.setenv("CRO_WAREHOUSE", str(db))
    monkeypatch.setenv("CRO_USERS_FILE", str(users_file))
    monkeypatch.setenv("CRO_IMPORT_ROOT", str(root))
    monkeypatch.setenv("CRO_USER", "dm_limited")
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("pages/data.py")
    at.run()
    at.radio(key="import_kind").set_value("sdtm")
    at.radio(key="import_how").set_value("Folder on the server").run()
    at.text_input(key="import_folder").input("mini2")
    at.text_input(key="import_sponsor").input("Tertia Bio").run()
    at.button(key="import_validate").click().run()
    report = next(d.value for d in at.dataframe if "Finding" in d.value.columns)
    assert report["File"].astype(str).str.contains("ex.csv").any(), "the report has a finding on the EX file"
    user = effective_user("dm_limited", users_file)
    forbidden = forbidden_for(portfolio, user.scope)
    found = [line for element, text in page_texts(at) for line in leaks([text], forbidden, f"data page, {element}")]
    found += [line for _, (name, content) in downloads(at).items() for line in leaks(texts_of(content), forbidden, name)]
    assert not found, "\n".join(found[:20])
    ex.write_text(ex.read_text().replace("2023-13-45", "2023-02-06"))
    at.button(key="import_validate").click().run()
    assert not at.exception and not at.error, [e.value for e in (*at.exception, *at.error)]
    before = access.records_store().audit_log(last=1)["seq"].iloc[0]
    at.button(key="import_confirm").click().run()
    assert not at.exception and any("Loaded" in s.value for s in at.success)
    log = access.records_store().audit_log(last=5)
    load = log[(log["seq"] > before) & (log["action"] == access.DATA_LOAD)]
    assert len(load) == 1 and load["actor"].iloc[0] == "dm_limited"
    payload = json.loads(load["payload"].iloc[0])
    assert payload["outcome"] == "loaded" and payload["studies"] == ["MINI01"]
    assert not any(m in load["payload"].iloc[0].upper() for m in ARM_MARKERS)

"""The optional model: a structure proposed for a criterion the rules left for review, checked against its
sentence, shown as a proposal until a person accepts it.

With an OpenAI-compatible endpoint configured (``CRO_LLM_BASE_URL``, ``CRO_LLM_MODEL``,
``CRO_LLM_API_KEY``; read by :func:`llm_endpoint`), :func:`propose` asks the model for the
criterion's parts as structured output (a JSON schema), with every number and unit *as written* in
the sentence. :func:`verify` then refuses any part whose numbers or units do not appear in the
sentence, whose kind is unknown, or whose concept the vocabularies cannot code (codes come from
:mod:`analytics.recruitment.vocabulary`, never from the model). Without an endpoint this path is off
and nothing is sent anywhere. A proposal changes nothing by itself: matching uses a structure only
after a person accepts it (:mod:`analytics.recruitment.decisions`).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from dataclasses import dataclass, field
from urllib.parse import urlparse

from analytics.recruitment import patterns as P
from analytics.recruitment.criteria import ATOM_KINDS, COMPARATORS, ULN, Atom, Criterion
from analytics.recruitment.vocabulary import ECOG, find_terms, lexicon

SYSTEM_PROMPT = (
    "You structure one clinical-trial eligibility criterion. Return JSON matching the schema: the parts of the "
    "criterion that a patient's records can answer (age, sex, condition, lab, ecog, medication, pregnancy, "
    "breastfeeding, contraception). For each part give the concept as the sentence names it, the comparator, "
    "the number(s) and the unit exactly as written in the sentence, and any time window or duration as the amount "
    "and unit written in the sentence. Never invent a number, a unit or a code. If the criterion cannot be answered "
    "from records, return no parts and say why in 'why_not'."
)
PROPOSAL_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["parts", "combine", "negated", "why_not"],
    "properties": {
        "parts": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["kind", "concept", "comparator", "value", "value_high", "unit", "window_amount", "window_unit",
                         "duration_amount", "duration_unit", "current", "sexes"],
            "properties": {
                "kind": {"type": "string", "enum": list(ATOM_KINDS)},
                "concept": {"type": "string"},
                "comparator": {"type": ["string", "null"], "enum": list(COMPARATORS) + [None]},
                "value": {"type": ["number", "null"]}, "value_high": {"type": ["number", "null"]},
                "unit": {"type": ["string", "null"]},
                "window_amount": {"type": ["number", "null"]}, "window_unit": {"type": ["string", "null"]},
                "duration_amount": {"type": ["number", "null"]}, "duration_unit": {"type": ["string", "null"]},
                "current": {"type": "boolean"},
                "sexes": {"type": "array", "items": {"type": "string", "enum": ["F", "M"]}},
            }}},
        "combine": {"type": "string", "enum": ["any", "all"]},
        "negated": {"type": "boolean"},
        "why_not": {"type": "string"},
    },
}


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible endpoint; ``configured`` is false without a base URL (the model path is off)."""

    base_url: str = ""
    model: str = ""
    api_key: str = ""
    allow_remote: bool = True
    timeout_s: float = 45.0

    @property
    def configured(self) -> bool:
        return bool(self.base_url.strip() and self.model.strip())

    @property
    def is_local(self) -> bool:
        host = urlparse(self.base_url).hostname or ""
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return host in ("localhost",)

    def __repr__(self) -> str:  # the key never reaches a log
        return f"Endpoint(base_url={self.base_url!r}, model={self.model!r})"


def llm_endpoint(environ: dict[str, str] | None = None) -> Endpoint:
    """The endpoint from the workbench settings when they carry one (``Settings.llm``), else from
    ``CRO_LLM_BASE_URL`` / ``CRO_LLM_MODEL`` / ``CRO_LLM_API_KEY``."""
    if environ is None:
        try:
            from analytics.core.settings import load_settings

            llm = getattr(load_settings(), "llm", None)
        except Exception:  # an unreadable secrets file leaves the model off, as a missing endpoint does
            llm = None
        if llm is not None and getattr(llm, "base_url", ""):
            return Endpoint(llm.base_url, getattr(llm, "model", ""), getattr(llm, "api_key", ""),
                            bool(getattr(llm, "allow_remote", True)), float(getattr(llm, "timeout_s", 45.0)))
        environ = dict(os.environ)
    return Endpoint(environ.get("CRO_LLM_BASE_URL", ""), environ.get("CRO_LLM_MODEL", ""),
                    environ.get("CRO_LLM_API_KEY", ""))


@dataclass(frozen=True)
class Proposal:
    """What the model proposed for one criterion, after :func:`verify`: the parts kept and why others were refused."""

    criterion_key: str
    atoms: tuple[Atom, ...]
    combine: str
    negated: bool
    refused: tuple[str, ...] = field(default_factory=tuple)
    why_not: str = ""
    model: str = ""

    @property
    def usable(self) -> bool:
        return bool(self.atoms) and not self.refused


_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def _numbers_in(text: str) -> set[float]:
    return {float(n.replace(",", ".")) for n in _NUMBER.findall(text)} | {float(v) for w, v in P.WORD_NUMBERS.items()
                                                                          if re.search(rf"\b{w}\b", text, re.I)}


def _units_in(text: str) -> set[str]:
    found = set()
    for pattern, spelling in P.UNIT_WORDS:
        if re.search(r"(?<![a-z])" + pattern, text, re.IGNORECASE):
            found.add(spelling.lower())
    if re.search(P.ULN_PHRASE, text, re.IGNORECASE):
        found.add(ULN.lower())
    return found


def _spelling(unit: str) -> str:
    for pattern, spelling in P.UNIT_WORDS:
        if re.fullmatch(pattern, unit.strip(), re.IGNORECASE):
            return spelling.lower()
    return ULN.lower() if re.fullmatch(P.ULN_PHRASE + "|x ?uln", unit.strip(), re.IGNORECASE) else unit.strip().lower()


def _days(amount: float, unit: str) -> int:
    key = unit.lower().rstrip("s")
    key = {"wk": "week", "mo": "month", "yr": "year"}.get(key, key)
    if key not in P.DAYS_PER:
        raise ValueError(f"time unit {unit!r}")
    return int(round(amount * P.DAYS_PER[key]))


def _coded(kind: str, concept: str) -> tuple[str, str, tuple[str, ...]] | None:
    """(key, name, codes) for a concept the vocabularies know, else None."""
    entries = {"condition": lexicon().conditions, "medication": lexicon().medications,
               "lab": lexicon().labs, "ecog": lexicon().labs}.get(kind)
    if entries is None:
        return (kind, kind.capitalize(), ())
    terms = find_terms(concept, entries)
    if len(terms) != 1:
        return None
    term = terms[0][2]
    codes = getattr(term, "icd10cm", None) or getattr(term, "atc", None) or getattr(term, "loinc", ())
    if kind == "ecog" and term is not ECOG:
        return None
    return term.key, term.name, tuple(codes)


def verify(criterion: Criterion, raw: dict[str, object], model: str = "") -> Proposal:
    """Keep the parts of a model's answer that the sentence supports; say why the others were refused."""
    text = criterion.text
    numbers, written_units = _numbers_in(text), _units_in(text)
    atoms, refused = [], []
    for index, part in enumerate(raw.get("parts") or []):
        label = f"part {index + 1} ({part.get('kind')}: {part.get('concept')})"
        kind = part.get("kind")
        if kind not in ATOM_KINDS:
            refused.append(f"{label}: unknown kind")
            continue
        values = [part.get(k) for k in ("value", "value_high", "window_amount", "duration_amount")]
        missing = [v for v in values if v is not None and float(v) not in numbers]
        if missing:
            refused.append(f"{label}: the number{'s' if len(missing) > 1 else ''} "
                           f"{', '.join(f'{float(v):g}' for v in missing)} not in the sentence")
            continue
        unit = part.get("unit")
        if unit and unit not in ("1", "years") and _spelling(str(unit)) not in written_units:
            refused.append(f"{label}: the unit {unit!r} is not in the sentence")
            continue
        coded = _coded(str(kind), str(part.get("concept") or ""))
        if coded is None:
            refused.append(f"{label}: the vocabularies cannot code {part.get('concept')!r}")
            continue
        key, name, codes = coded
        try:
            within = _days(float(part["window_amount"]), str(part["window_unit"])) if part.get("window_amount") else None
            at_least = (_days(float(part["duration_amount"]), str(part["duration_unit"]))
                        if part.get("duration_amount") else None)
            comparator = part.get("comparator")
            atom = Atom(str(kind), key, name, codes=codes, comparator=comparator,
                        value=None if part.get("value") is None else float(part["value"]),
                        value_high=None if part.get("value_high") is None else float(part["value_high"]),
                        unit=(ULN if _spelling(str(unit)) == ULN.lower() else str(unit)) if unit else None,
                        within_days=within, at_least_days=at_least, current=bool(part.get("current")),
                        sexes=tuple(part.get("sexes") or ()))
        except (ValueError, KeyError, TypeError) as exc:
            refused.append(f"{label}: {exc}")
            continue
        if atom.kind in ("lab", "ecog", "age") and (atom.comparator is None or atom.value is None):
            refused.append(f"{label}: no threshold")
            continue
        atoms.append(atom)
    return Proposal(criterion.key, tuple(atoms), str(raw.get("combine") or "any"), bool(raw.get("negated")),
                    tuple(refused), str(raw.get("why_not") or ""), model)


class ProposalError(RuntimeError):
    """The model could not be asked, or answered something that is not the schema's JSON."""


def propose(criterion: Criterion, endpoint: Endpoint) -> Proposal:
    """Ask the endpoint for the criterion's structure (structured output) and verify the answer."""
    if not endpoint.configured:
        raise ProposalError("no model endpoint is configured (CRO_LLM_BASE_URL, CRO_LLM_MODEL)")
    if not endpoint.allow_remote and not endpoint.is_local:
        raise ProposalError("the endpoint is not on this machine and sending protocol text to it is not allowed "
                            "(CRO_LLM_ALLOW_REMOTE)")
    from openai import OpenAI, OpenAIError

    client = OpenAI(base_url=endpoint.base_url, api_key=endpoint.api_key or "not-needed", timeout=endpoint.timeout_s,
                    max_retries=1)
    try:
        response = client.chat.completions.create(
            model=endpoint.model,
            messages=[{"role": "system", "content": SYSTEM_PROMPT},
                      {"role": "user", "content": f"{criterion.section.capitalize()} criterion: {criterion.text}"}],
            response_format={"type": "json_schema",
                             "json_schema": {"name": "criterion", "schema": PROPOSAL_SCHEMA, "strict": True}},
            temperature=0,
        )
        content = response.choices[0].message.content or ""
    except OpenAIError as exc:
        raise ProposalError(f"the model endpoint {endpoint.base_url} failed: {exc}") from exc
    try:
        raw = json.loads(content)
    except json.JSONDecodeError as exc:
        raise ProposalError(f"the model did not answer JSON: {content[:200]!r}") from exc
    if not isinstance(raw, dict):
        raise ProposalError("the model's answer is not a JSON object")
    return verify(criterion, raw, endpoint.model)

"""ClinicalTrials.gov study records (API v2 JSON) as flat rows the registry importer parses.

One record is a ``protocolSection`` (with ``derivedSection``, ``hasResults`` ...). It arrives as
a single-study document (the website's per-study JSON, and each member of the "Download JSON"
zip), a ``{"studies": [...]}`` API page, or a bare list of records. Values are taken as written;
:mod:`analytics.importers.ctgov` parses and normalizes them the same way for every format.
"""

from __future__ import annotations

from typing import Any

JSON_FIELDS = (
    "nct_id", "title", "status", "phase", "conditions", "interventions", "sponsor", "sponsor_class", "sex",
    "min_age", "max_age", "age_groups", "healthy_volunteers", "enrollment", "study_type", "start_date",
    "primary_completion_date", "completion_date", "primary_outcome", "eligibility_criteria", "sites",
    "secondary_outcome", "arm_count", "last_update_date",
)


def study_records(document: Any) -> list[dict[str, Any]] | None:
    """The study records of a document, or None when it is not a ClinicalTrials.gov study document."""
    if isinstance(document, dict) and "protocolSection" in document:
        return [document]
    studies = document.get("studies") if isinstance(document, dict) else document
    if not isinstance(studies, list):
        return None
    return [s if isinstance(s, dict) else {} for s in studies]


def _joined(values: Any) -> str | None:
    if not isinstance(values, list):
        return None
    text = "|".join(str(v).strip() for v in values if v is not None and str(v).strip())
    return text or None


def _intervention(item: Any) -> str | None:
    if not isinstance(item, dict) or not item.get("name"):
        return None
    return f"{item['type']}: {item['name']}" if item.get("type") else str(item["name"])


def _site(location: Any) -> dict[str, Any]:
    location = location if isinstance(location, dict) else {}
    return {"facility": location.get("facility"), "city": location.get("city"), "state": location.get("state"),
            "zip": location.get("zip"), "country": location.get("country"),
            "recruitment_status": location.get("status")}


def flatten(record: dict[str, Any]) -> dict[str, Any]:
    """One study record as a row of :data:`JSON_FIELDS` (missing modules give missing values)."""
    protocol = record.get("protocolSection") or {}

    def module(name: str) -> dict[str, Any]:
        found = protocol.get(name)
        return found if isinstance(found, dict) else {}

    ident, status, design = module("identificationModule"), module("statusModule"), module("designModule")
    sponsor = module("sponsorCollaboratorsModule").get("leadSponsor") or {}
    eligibility = module("eligibilityModule")
    locations = module("contactsLocationsModule").get("locations")
    outcomes = module("outcomesModule").get("primaryOutcomes") or []
    secondary = module("outcomesModule").get("secondaryOutcomes") or []
    arms = module("armsInterventionsModule").get("armGroups")
    interventions = module("armsInterventionsModule").get("interventions") or []
    return {
        "nct_id": ident.get("nctId"),
        "title": ident.get("briefTitle"),
        "status": status.get("overallStatus"),
        "phase": _joined(design.get("phases")),
        "conditions": _joined(module("conditionsModule").get("conditions")),
        "interventions": _joined([_intervention(i) for i in interventions]),
        "sponsor": sponsor.get("name"),
        "sponsor_class": sponsor.get("class"),
        "sex": eligibility.get("sex"),
        "min_age": eligibility.get("minimumAge"),
        "max_age": eligibility.get("maximumAge"),
        "age_groups": _joined(eligibility.get("stdAges")),
        "healthy_volunteers": eligibility.get("healthyVolunteers"),
        "enrollment": (design.get("enrollmentInfo") or {}).get("count"),
        "study_type": design.get("studyType"),
        "start_date": (status.get("startDateStruct") or {}).get("date"),
        "primary_completion_date": (status.get("primaryCompletionDateStruct") or {}).get("date"),
        "completion_date": (status.get("completionDateStruct") or {}).get("date"),
        "primary_outcome": _joined([o.get("measure") for o in outcomes if isinstance(o, dict)]),
        "eligibility_criteria": eligibility.get("eligibilityCriteria"),
        "sites": None if locations is None else [_site(loc) for loc in locations],
        "secondary_outcome": _joined([o.get("measure") for o in secondary if isinstance(o, dict)]),
        "arm_count": len(arms) if isinstance(arms, list) else None,
        "last_update_date": (status.get("lastUpdatePostDateStruct") or {}).get("date"),
    }

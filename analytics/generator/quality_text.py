"""Free text of quality events and CAPAs: labelled themes written many ways.

Each quality-event category has themes (what actually went wrong, e.g. "superseded consent version"),
and each theme several paraphrases of the event and of the corrective action, written with different
words on purpose. A description is one paraphrase with its numbers filled in, then varied the way
people write in a QMS: synonyms swapped, abbreviations, a source prefix ("Per CRA report:"), typos,
and sometimes a clause about a second theme ("mixed themes"). The primary theme is the label
(``truth.quality_event_labels``), so clustering the text into themes is a real test, not a lookup of
template sentences.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Theme:
    """One labelled theme: its category, event paraphrases, corrective-action paraphrases, a short clause."""

    name: str
    category: str
    events: tuple[str, ...]
    actions: tuple[str, ...]
    clause: str  # how the theme is mentioned in passing inside another event's text


THEMES: tuple[Theme, ...] = (
    Theme("Incomplete source documents", "Documentation", (
        "Source documents for {n} subjects incomplete at monitoring visit; progress notes missing",
        "CRA could not verify {n} visits because the medical notes were not filed",
        "Progress notes absent from the patient charts of {n} participants",
        "Missing clinic notes: source for {n} subjects not available for verification",
        "Patient files lacked visit documentation for {n} study visits",
    ), (
        "Source documentation checklist introduced and notes filed within 48 hours of each visit",
        "Coordinator now completes progress notes on the day of the visit; QC of charts weekly",
        "Charts reconciled against the visit schedule and missing notes retrieved",
    ), "source notes incomplete"),
    Theme("Delegation log gaps", "Documentation", (
        "Delegation log not updated after staff change; {n} entries missing signatures",
        "New sub-investigator performing tasks before being added to the delegation of authority log",
        "Staff signature and delegation list out of date for {n} team members",
        "Delegation of duties log lacks PI sign-off for {n} staff",
        "Study team members working without a signed delegation entry ({n} people)",
    ), (
        "Delegation log reviewed at every staff change and countersigned by the PI",
        "PI and coordinator review the delegation of authority log monthly",
        "Onboarding checklist requires a signed delegation entry before any study task",
    ), "delegation log out of date"),
    Theme("Missing essential documents", "Documentation", (
        "Essential documents missing from the investigator site file: {doc}",
        "ISF audit found the {doc} not filed",
        "Investigator site file incomplete; {doc} absent",
        "Regulatory binder missing the current {doc}",
        "Trial master file reconciliation: {doc} not on file at the site",
    ), (
        "ISF index reconciled against the essential-documents list; missing items retrieved",
        "Quarterly regulatory binder review added to the monitoring plan",
        "Site file checklist completed and filed documents verified by the CRA",
    ), "site file missing a document"),
    Theme("Superseded consent version", "Informed consent process", (
        "Site used superseded consent version {v} for {n} subjects",
        "{n} participants signed an outdated ICF (version {v}) after the amendment was approved",
        "Old informed consent form v{v} still in use; {n} patients consented on it",
        "Consent obtained on an expired version of the consent document for {n} subjects",
        "Obsolete ICF version {v} found in the consent packets of {n} subjects",
    ), (
        "Superseded consent forms withdrawn from clinic rooms; re-consent of affected subjects completed",
        "Version control log for consent documents introduced; old versions destroyed",
        "Affected subjects re-consented on the current version and IRB notified",
    ), "outdated consent version"),
    Theme("Consent documentation deficiencies", "Informed consent process", (
        "Consent process deficiencies found during audit for {n} subjects",
        "Informed consent signature dates missing or wrong for {n} participants",
        "Consent forms lack the person obtaining consent signature ({n} subjects)",
        "No record of the consent discussion in the notes of {n} patients",
        "ICF pages not initialled and date of consent unclear for {n} subjects",
    ), (
        "Consent process note template introduced and second-person review of each signed ICF",
        "Consent training repeated for all investigators; ICF completeness check at each visit",
        "Each consent form is checked for signatures and dates before the subject leaves",
    ), "consent signature missing"),
    Theme("IP temperature excursion", "IP management", (
        "Temperature excursion in site pharmacy fridge lasting {d} hours; {n} kits quarantined",
        "Study drug refrigerator above 8 C for {d} hours over the weekend; {n} kits affected",
        "IP storage out of range ({d} h excursion) and {n} kits put in quarantine",
        "Fridge alarm failed; investigational product exposed to warm temperature for {d} hours",
        "Cold chain breach: pharmacy storage warm for {d} hours, {n} kits on hold",
    ), (
        "Temperature logger with remote alarm installed and out-of-hours escalation defined",
        "Fridge replaced and daily min/max temperature review documented by pharmacy",
        "Excursion procedure retrained; affected kits assessed by the sponsor before release",
    ), "fridge temperature excursion"),
    Theme("IP accountability discrepancy", "IP management", (
        "IP accountability log does not reconcile: {n} kits unaccounted for",
        "Drug accountability records show {n} bottles missing at reconciliation",
        "Dispensing log and returned medication do not match ({n} kits)",
        "Count of study medication differs from the accountability form by {n} kits",
        "Unreconciled IP: {n} units cannot be traced in the pharmacy records",
    ), (
        "Accountability reconciled by pharmacist and CRA; dispensing log double-signed from now on",
        "Monthly drug reconciliation introduced with a second pharmacist check",
        "Returned medication counted at each visit and recorded the same day",
    ), "drug accountability mismatch"),
    Theme("Source-eCRF discrepancies", "Data integrity", (
        "Discrepancies between source and eCRF in {n} data points found at SDV",
        "SDV found {n} values transcribed wrongly from the medical record into the EDC",
        "eCRF entries do not match the source documents for {n} fields",
        "Transcription errors: {n} data points differ between charts and the database",
        "Data entered in EDC inconsistent with source for {n} items",
    ), (
        "Data entry performed from a worksheet with second-person verification of key fields",
        "Coordinator retrained on EDC completion; 100% SDV for the next three visits",
        "Entry guidelines clarified and edit checks added for the fields affected",
    ), "source and eCRF do not match"),
    Theme("Backdated entries", "Data integrity", (
        "Audit trail shows backdated eCRF entries for {n} visits",
        "EDC audit trail reveals visit data entered with earlier dates for {n} visits",
        "Entries appear to have been made retrospectively; audit trail dates inconsistent for {n} pages",
        "Late documentation presented as contemporaneous in {n} records",
        "Retrospective data entry with altered dates found in the audit trail ({n} visits)",
    ), (
        "ALCOA+ training delivered; late entries now flagged and explained in a note to file",
        "Audit trail review added to every monitoring visit",
        "Investigator attested the corrected timeline; sponsor QA informed",
    ), "audit trail dates questionable"),
    Theme("Late SAE reporting", "Safety reporting", (
        "{n} SAEs reported outside the 24-hour timeline",
        "Serious adverse events sent to the sponsor {d} days after site awareness",
        "SAE notification late for {n} events (beyond one day)",
        "Site missed the 24 h expedited reporting window for {n} serious events",
        "Delayed serious adverse event reports: {n} cases notified late",
    ), (
        "SAE reporting pathway posted in clinic and backup reporter named for absences",
        "Daily safety check of hospital admissions introduced so SAEs are reported within 24 hours",
        "Investigators retrained on expedited reporting timelines",
    ), "SAE reported late"),
    Theme("AE follow-up missing", "Safety reporting", (
        "AE follow-up information missing for {n} events",
        "No outcome recorded for {n} adverse events after the initial report",
        "Adverse event resolution dates not documented for {n} events",
        "{n} AEs left open without follow-up at later visits",
        "Follow-up of adverse events incomplete; {n} entries without outcome",
    ), (
        "Open AE listing reviewed at every visit until each event is resolved",
        "EDC report of unresolved AEs sent to the site weekly",
        "Coordinator checks outcome of every open AE before closing a visit",
    ), "AE outcome not followed up"),
    Theme("Procedures before training", "Training", (
        "{n} site staff performed study procedures before protocol training was documented",
        "Staff started study tasks without a signed training record ({n} people)",
        "Training log missing for {n} team members who carried out assessments",
        "Protocol training not completed before {n} staff began work on the study",
        "No documented training for {n} study staff performing procedures",
    ), (
        "Training matrix introduced; no study task before the training record is signed",
        "All staff trained and training records filed; CRA checks the log at each visit",
        "Site onboarding now includes protocol training sign-off before delegation",
    ), "training not documented"),
    Theme("Amendment training gap", "Training", (
        "Sub-investigator not trained on protocol amendment {v}",
        "Team not briefed on amendment {v} before the changed procedures took effect",
        "Training on protocol version {v} missing for {n} investigators",
        "Amended eligibility criteria (amendment {v}) unknown to {n} site staff",
        "Protocol amendment {v} implemented without retraining the site",
    ), (
        "Amendment training delivered to all staff and attendance filed",
        "Sponsor amendment notifications now trigger a training session within two weeks",
        "Amendment read-and-understood forms collected from every investigator",
    ), "amendment training missing"),
    Theme("Central lab delays", "Vendor / central lab", (
        "Central lab results delayed {d} days due to courier issues",
        "Courier missed pickups; lab reports arrived {d} days late",
        "Laboratory results not available for {d} days after sampling because of shipping problems",
        "Central laboratory turnaround exceeded by {d} days (transport delays)",
        "Sample shipments stuck in transit; results {d} days overdue",
    ), (
        "Backup courier contracted and pickup schedule confirmed weekly",
        "Vendor escalation with the central lab; turnaround tracked in the vendor metrics",
        "Shipment tracking reviewed daily by the coordinator",
    ), "lab results delayed by courier"),
    Theme("Imaging vendor rejections", "Vendor / central lab", (
        "Imaging vendor rejected {n} scans for protocol non-compliance",
        "{n} MRI scans failed the central reader's quality check",
        "Scans not acquired per the imaging manual; {n} rejected by the core lab",
        "Core imaging lab returned {n} images as unreadable",
        "Radiology acquisition parameters wrong for {n} scans, rejected centrally",
    ), (
        "Imaging technologists retrained on the acquisition manual; phantom scan repeated",
        "Scan parameter checklist used before every study acquisition",
        "Core lab feedback reviewed with radiology monthly",
    ), "scans rejected by imaging vendor"),
    Theme("Equipment calibration lapse", "Equipment", (
        "ECG machine calibration expired {d} days before use",
        "Centrifuge out of service; {n} samples processed late",
        "Blood pressure device used past its calibration date for {d} days",
        "Scales and devices not calibrated; certificate expired {d} days earlier",
        "Equipment maintenance overdue: calibration lapsed for {d} days",
    ), (
        "Equipment inventory with calibration due dates set up and reviewed monthly",
        "Devices recalibrated and a maintenance contract put in place",
        "Calibration certificates filed and reminders scheduled before expiry",
    ), "device calibration expired"),
)
THEME_NAMES: tuple[str, ...] = tuple(t.name for t in THEMES)
ESSENTIAL_DOCUMENTS = ("CV of sub-investigator", "lab normal ranges", "IRB approval letter",
                       "financial disclosure", "monitoring visit log")

# How the same thing is written by different people: (word, alternatives). Applied to whole words.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "subjects": ("patients", "participants", "pts", "subj."),
    "participants": ("subjects", "patients"),
    "patients": ("subjects", "pts"),
    "missing": ("absent", "not available", "lacking"),
    "found": ("identified", "noted", "observed"),
    "incomplete": ("not complete", "partial"),
    "site": ("centre", "center", "investigator site"),
    "staff": ("personnel", "team members"),
    "monitoring": ("IMV", "monitoring"),
    "informed consent form": ("ICF", "consent form"),
    "consent": ("consent", "IC"),
    "investigational product": ("IP", "study drug"),
    "study drug": ("IP", "study medication"),
    "kits": ("kits", "packs", "units"),
    "delayed": ("late", "held up"),
    "documented": ("recorded", "on file"),
    "hours": ("h", "hrs"),
    "days": ("d", "days"),
    "results": ("reports", "values"),
    "audit": ("audit", "inspection"),
    "training": ("training", "trg"),
    "protocol": ("protocol", "CSP"),
    "not": ("not", "never"),
}
PREFIXES = ("", "", "", "Per CRA report: ", "Noted during IMV - ", "Site self-reported: ", "QA audit finding: ",
            "Sponsor escalation: ", "Observed at SDV; ", "Remote review: ")
SUFFIXES = ("", "", "", ". Escalated to QA.", ". PI informed.", ". CRA to follow up.", " - see monitoring report.",
            ". Impact on subject safety being assessed.", ". Corrective action requested.")
TYPO_SHARE = 0.06  # share of longer words with a typo
MIXED_SHARE = 0.18  # share of events whose text also mentions a second theme


def _fill(template: str, rng: np.random.Generator) -> str:
    return template.format(
        n=int(rng.integers(2, 12)), d=int(rng.integers(2, 30)), v=f"{int(rng.integers(2, 7))}.0",
        doc=ESSENTIAL_DOCUMENTS[int(rng.integers(len(ESSENTIAL_DOCUMENTS)))],
    )


def _typo(word: str, rng: np.random.Generator) -> str:
    i = int(rng.integers(1, len(word) - 1))
    kind = int(rng.integers(3))
    if kind == 0:  # swapped letters
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == 1:  # dropped letter
        return word[:i] + word[i + 1:]
    return word[:i] + word[i] + word[i:]  # doubled letter


def vary(text: str, rng: np.random.Generator) -> str:
    """``text`` as someone else might have written it: synonyms, abbreviations and typos."""
    lowered = text
    for phrase in ("informed consent form", "investigational product", "study drug"):
        if phrase in lowered.lower() and rng.uniform() < 0.5:
            start = lowered.lower().index(phrase)
            alternative = SYNONYMS[phrase][int(rng.integers(len(SYNONYMS[phrase])))]
            lowered = lowered[:start] + alternative + lowered[start + len(phrase):]
    words = lowered.split(" ")
    out = []
    for word in words:
        core = word.rstrip(".,;:")
        tail = word[len(core):]
        key = core.lower()
        if key in SYNONYMS and rng.uniform() < 0.35:
            core = SYNONYMS[key][int(rng.integers(len(SYNONYMS[key])))]
        elif len(core) > 4 and core.isalpha() and rng.uniform() < TYPO_SHARE:
            core = _typo(core, rng)
        out.append(core + tail)
    return " ".join(out)


def event_text(theme: int, rng: np.random.Generator, other: int | None = None) -> str:
    """A varied description of an event of ``theme`` (mentioning theme ``other`` in passing if given)."""
    spec = THEMES[theme]
    body = vary(_fill(spec.events[int(rng.integers(len(spec.events)))], rng), rng)
    if other is not None:
        body += f"; also {THEMES[other].clause}"
    text = PREFIXES[int(rng.integers(len(PREFIXES)))] + body + SUFFIXES[int(rng.integers(len(SUFFIXES)))]
    return text[0].upper() + text[1:] if rng.uniform() < 0.9 else text.lower()


def action_text(theme: int, root_cause: str, rng: np.random.Generator) -> str:
    """A varied CAPA description: the problem in a few words, the root cause and the action."""
    spec = THEMES[theme]
    action = vary(spec.actions[int(rng.integers(len(spec.actions)))], rng)
    problem = vary(spec.clause, rng)
    forms = (f"{problem.capitalize()}. Root cause: {root_cause}. Action: {action}.",
             f"Action: {action} (root cause {root_cause.lower()}; issue: {problem}).",
             f"{action}. RCA: {root_cause}.")
    return forms[int(rng.integers(len(forms)))]


def pick_themes(category: np.ndarray, categories: tuple[str, ...], rng: np.random.Generator) -> np.ndarray:
    """A theme of each event's category, uniformly among that category's themes."""
    by_category = {c: [i for i, t in enumerate(THEMES) if t.category == c] for c in categories}
    missing = [c for c, themes in by_category.items() if not themes]
    if missing:
        raise ValueError(f"quality-event categories without themes: {missing}")
    u = rng.uniform(size=len(category))
    return np.array([by_category[categories[c]][int(x * len(by_category[categories[c]]))]
                     for c, x in zip(category, u)], dtype="int64")

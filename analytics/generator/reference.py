"""Reference vocabularies and distributions the synthetic portfolio is drawn from.

Numbers here are plausible round values from practice and the literature (e.g. CTCAE grade cut-
offs relative to the upper/lower limit of normal; ClinicalTrials.gov median durations by phase of
about 10/23/22/19 months). They are constants, not results.
"""

from __future__ import annotations

from dataclasses import dataclass

COUNTRIES: tuple[tuple[str, str, str, float], ...] = (
    # code, name, region, share of sites
    ("US", "United States", "North America", 0.26),
    ("CA", "Canada", "North America", 0.04),
    ("MX", "Mexico", "Latin America", 0.02),
    ("BR", "Brazil", "Latin America", 0.03),
    ("AR", "Argentina", "Latin America", 0.02),
    ("GB", "United Kingdom", "Europe", 0.05),
    ("DE", "Germany", "Europe", 0.06),
    ("FR", "France", "Europe", 0.05),
    ("ES", "Spain", "Europe", 0.05),
    ("IT", "Italy", "Europe", 0.04),
    ("NL", "Netherlands", "Europe", 0.02),
    ("BE", "Belgium", "Europe", 0.02),
    ("PL", "Poland", "Europe", 0.04),
    ("CZ", "Czechia", "Europe", 0.02),
    ("HU", "Hungary", "Europe", 0.02),
    ("BG", "Bulgaria", "Europe", 0.02),
    ("UA", "Ukraine", "Europe", 0.01),
    ("IL", "Israel", "Middle East", 0.01),
    ("IN", "India", "Asia-Pacific", 0.03),
    ("CN", "China", "Asia-Pacific", 0.06),
    ("JP", "Japan", "Asia-Pacific", 0.04),
    ("KR", "South Korea", "Asia-Pacific", 0.04),
    ("AU", "Australia", "Asia-Pacific", 0.03),
    ("ZA", "South Africa", "Africa", 0.02),
)

CITIES: dict[str, tuple[str, ...]] = {
    "US": ("Boston", "Houston", "Chicago", "San Diego", "Nashville", "Seattle", "Miami", "Denver"),
    "CA": ("Toronto", "Montreal", "Vancouver"),
    "MX": ("Mexico City", "Guadalajara"),
    "BR": ("Sao Paulo", "Porto Alegre", "Curitiba"),
    "AR": ("Buenos Aires", "Cordoba"),
    "GB": ("London", "Manchester", "Glasgow", "Leeds"),
    "DE": ("Berlin", "Munich", "Hamburg", "Heidelberg"),
    "FR": ("Paris", "Lyon", "Marseille", "Toulouse"),
    "ES": ("Madrid", "Barcelona", "Valencia", "Sevilla"),
    "IT": ("Milan", "Rome", "Bologna", "Naples"),
    "NL": ("Amsterdam", "Rotterdam", "Utrecht"),
    "BE": ("Brussels", "Leuven", "Ghent"),
    "PL": ("Warsaw", "Krakow", "Lodz", "Gdansk"),
    "CZ": ("Prague", "Brno"),
    "HU": ("Budapest", "Debrecen"),
    "BG": ("Sofia", "Plovdiv"),
    "UA": ("Kyiv", "Lviv"),
    "IL": ("Tel Aviv", "Haifa"),
    "IN": ("Mumbai", "Bengaluru", "Delhi", "Pune"),
    "CN": ("Beijing", "Shanghai", "Guangzhou", "Chengdu"),
    "JP": ("Tokyo", "Osaka", "Nagoya"),
    "KR": ("Seoul", "Busan"),
    "AU": ("Sydney", "Melbourne", "Brisbane"),
    "ZA": ("Johannesburg", "Cape Town"),
}

INSTITUTION_KINDS = (
    "University Hospital",
    "Medical Center",
    "Clinical Research Institute",
    "General Hospital",
    "Research Clinic",
    "Specialty Center",
)

FIRST_NAMES = (
    "Anna", "Ben", "Carla", "David", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kavya",
    "Liam", "Maria", "Nikolai", "Olga", "Pedro", "Qing", "Rosa", "Samir", "Tomas", "Uma", "Victor",
    "Wen", "Yusuf", "Zofia",
)
LAST_NAMES = (
    "Adams", "Bauer", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Horvath", "Ito", "Jensen",
    "Kowalski", "Lopez", "Moreau", "Novak", "Okafor", "Petrov", "Rossi", "Schmidt", "Tanaka",
    "Usman", "Varga", "Wong", "Yilmaz", "Zhang", "Silva",
)

SPONSOR_NAMES = (
    "Aurora Therapeutics", "Borealis Pharma", "Cygnus Biosciences", "Deneb Oncology", "Eridani Bio",
    "Fornax Medicines", "Gemini Biologics", "Hydra Life Sciences", "Izar Pharmaceuticals",
    "Juno Immunotherapies", "Kepler Rx", "Lyra Neuroscience", "Mira Vaccines", "Nova Cardio",
    "Orion Rare Diseases", "Perseus Pharma", "Quasar Bio", "Rigel Therapeutics", "Sirius Health",
    "Tucana Biotech", "Ursa Medical", "Vega Biopharma", "Wezen Therapeutics", "Xena Pharma",
    "Yildun Bio", "Zaurak Medicines",
)


@dataclass(frozen=True)
class TherapeuticArea:
    """A therapeutic area with its indications and operational character."""

    name: str
    code: str
    indications: tuple[str, ...]
    screen_failure_rate: float  # share of screened subjects who fail screening
    ae_rate_per_year: float  # expected AEs per subject-year on study (before heterogeneity)
    sae_share: float  # share of AEs that are serious
    weight: float  # share of studies in the portfolio


THERAPEUTIC_AREAS: tuple[TherapeuticArea, ...] = (
    TherapeuticArea("Oncology", "ONC", ("Non-small cell lung cancer", "Breast cancer", "Colorectal cancer",
                    "Multiple myeloma", "Prostate cancer"), 0.38, 9.0, 0.16, 0.30),
    TherapeuticArea("Neurology", "NEU", ("Alzheimer's disease", "Parkinson's disease", "Multiple sclerosis",
                    "Migraine"), 0.40, 4.5, 0.07, 0.15),
    TherapeuticArea("Cardiovascular", "CV", ("Heart failure", "Hypertension", "Atrial fibrillation"),
                    0.22, 3.5, 0.09, 0.12),
    TherapeuticArea("Metabolic", "MET", ("Type 2 diabetes", "Obesity", "NASH"), 0.28, 3.0, 0.05, 0.12),
    TherapeuticArea("Immunology", "IMM", ("Rheumatoid arthritis", "Psoriasis", "Ulcerative colitis",
                    "Atopic dermatitis"), 0.30, 4.0, 0.05, 0.15),
    TherapeuticArea("Infectious disease", "INF", ("RSV", "Chronic hepatitis B", "Influenza"), 0.15, 2.5,
                    0.04, 0.08),
    TherapeuticArea("Respiratory", "RES", ("Asthma", "COPD"), 0.25, 3.2, 0.06, 0.08),
)

PHASE_SHARES = {"Phase 1": 0.15, "Phase 2": 0.33, "Phase 3": 0.42, "Phase 4": 0.10}
# Relative size of a study by phase (median randomized target) and its design.
PHASE_DESIGN = {
    # phase: (median target, enrollment months planned, visit interval days, planned visits, blinded share)
    "Phase 1": (40, 8, 7, 16, 0.5),
    "Phase 2": (160, 14, 14, 30, 0.85),
    "Phase 3": (500, 20, 21, 40, 0.9),
    "Phase 4": (350, 16, 28, 20, 0.2),
}

ARMS_BLINDED = ("Placebo", "Active low dose", "Active high dose")
ARMS_OPEN = ("Active", "Standard of care")

SCREEN_FAILURE_REASONS = (
    ("Inclusion criteria not met", 0.38),
    ("Exclusion criterion met", 0.30),
    ("Laboratory value out of range", 0.14),
    ("Withdrew consent", 0.10),
    ("Lost before randomization", 0.05),
    ("Sponsor decision", 0.03),
)
DISCONTINUATION_REASONS = (
    ("Adverse event", 0.30),
    ("Withdrawal by subject", 0.30),
    ("Lost to follow-up", 0.15),
    ("Lack of efficacy", 0.12),
    ("Physician decision", 0.08),
    ("Protocol deviation", 0.05),
)

# (preferred term, system organ class, relative frequency)
AE_TERMS: tuple[tuple[str, str, float], ...] = (
    ("Headache", "Nervous system disorders", 0.10),
    ("Dizziness", "Nervous system disorders", 0.05),
    ("Nausea", "Gastrointestinal disorders", 0.09),
    ("Diarrhoea", "Gastrointestinal disorders", 0.07),
    ("Vomiting", "Gastrointestinal disorders", 0.04),
    ("Constipation", "Gastrointestinal disorders", 0.03),
    ("Fatigue", "General disorders and administration site conditions", 0.08),
    ("Pyrexia", "General disorders and administration site conditions", 0.04),
    ("Injection site reaction", "General disorders and administration site conditions", 0.04),
    ("Nasopharyngitis", "Infections and infestations", 0.06),
    ("Upper respiratory tract infection", "Infections and infestations", 0.05),
    ("Urinary tract infection", "Infections and infestations", 0.03),
    ("Pneumonia", "Infections and infestations", 0.015),
    ("Rash", "Skin and subcutaneous tissue disorders", 0.04),
    ("Pruritus", "Skin and subcutaneous tissue disorders", 0.03),
    ("Arthralgia", "Musculoskeletal and connective tissue disorders", 0.04),
    ("Back pain", "Musculoskeletal and connective tissue disorders", 0.04),
    ("Hypertension", "Vascular disorders", 0.03),
    ("Cough", "Respiratory, thoracic and mediastinal disorders", 0.04),
    ("Dyspnoea", "Respiratory, thoracic and mediastinal disorders", 0.02),
    ("Insomnia", "Psychiatric disorders", 0.03),
    ("Anaemia", "Blood and lymphatic system disorders", 0.025),
    ("Neutropenia", "Blood and lymphatic system disorders", 0.015),
    ("Alanine aminotransferase increased", "Investigations", 0.02),
    ("Atrial fibrillation", "Cardiac disorders", 0.01),
    ("Fall", "Injury, poisoning and procedural complications", 0.02),
    ("Decreased appetite", "Metabolism and nutrition disorders", 0.025),
)


@dataclass(frozen=True)
class LabTest:
    """A lab or vital-sign test: distribution, unit, normal range and how it is graded.

    ``log_scale`` tests are log-normal (``center`` is the median); others are normal (``center`` is
    the mean). ``between_sd`` and ``within_sd`` are the between-subject and within-subject standard
    deviations on that scale, which gives within-subject correlation over visits.
    """

    code: str
    domain: str
    unit: str
    center: float
    between_sd: float
    within_sd: float
    ref_low: float | None
    ref_high: float | None
    decimals: int
    log_scale: bool
    graded: str = ""  # "high", "low" or "" (not graded)


LAB_TESTS: tuple[LabTest, ...] = (
    LabTest("SYSBP", "VS", "mmHg", 128, 12, 8, 90, 140, 0, False),
    LabTest("DIABP", "VS", "mmHg", 78, 8, 6, 60, 90, 0, False),
    LabTest("PULSE", "VS", "beats/min", 72, 8, 7, 60, 100, 0, False),
    LabTest("TEMP", "VS", "C", 36.7, 0.2, 0.25, 36.1, 37.2, 1, False),
    LabTest("WEIGHT", "VS", "kg", 78, 15, 0.9, None, None, 1, False),
    LabTest("ALT", "LB", "U/L", 22, 0.35, 0.22, 7, 56, 0, True, "high"),
    LabTest("AST", "LB", "U/L", 24, 0.30, 0.20, 10, 40, 0, True, "high"),
    LabTest("BILI", "LB", "umol/L", 10, 0.35, 0.22, 3, 21, 0, True, "high"),
    LabTest("CREAT", "LB", "umol/L", 80, 0.20, 0.08, 53, 115, 0, True, "high"),
    LabTest("GLUC", "LB", "mmol/L", 5.4, 0.12, 0.12, 3.9, 7.8, 1, True, "high"),
    LabTest("HGB", "LB", "g/L", 138, 0.08, 0.05, 120, 170, 0, True, "low"),
    LabTest("WBC", "LB", "10^9/L", 6.5, 0.22, 0.15, 4.0, 11.0, 1, True, "low"),
    LabTest("PLAT", "LB", "10^9/L", 250, 0.20, 0.12, 150, 400, 0, True, "low"),
    LabTest("SODIUM", "LB", "mmol/L", 140, 0.015, 0.012, 135, 145, 0, True, "low"),
    LabTest("K", "LB", "mmol/L", 4.3, 0.07, 0.07, 3.5, 5.1, 1, True, "high"),
)

# CTCAE-style cut-offs: multiples of ULN for "high" tests, fractions of LLN for "low" tests.
HIGH_GRADE_CUTS = (1.0, 3.0, 5.0, 20.0)
LOW_GRADE_CUTS = (1.0, 0.8, 0.65, 0.5)

# Deviation categories: (name, relative frequency, probability important, description templates)
DEVIATION_CATEGORIES: tuple[tuple[str, float, float, tuple[str, ...]], ...] = (
    ("Informed consent", 0.09, 0.55, (
        "Subject signed an outdated version {v} of the informed consent form",
        "Consent obtained after the first study procedure at visit {visit}",
        "Re-consent to protocol amendment {v} not obtained before visit {visit}",
        "Consent form missing investigator signature and date",
    )),
    ("Eligibility", 0.08, 0.75, (
        "Subject randomized despite exclusion criterion {n} being met",
        "Inclusion criterion {n} lab value not confirmed before randomization",
        "Eligibility checklist incomplete at randomization; criterion {n} not assessed",
    )),
    ("Visit schedule", 0.24, 0.05, (
        "Visit {visit} performed {d} days outside the protocol window",
        "Visit {visit} missed; subject rescheduled outside window",
        "Telephone follow-up at visit {visit} not performed",
    )),
    ("Study procedures", 0.18, 0.15, (
        "ECG not performed at visit {visit}",
        "Questionnaire not administered at visit {visit} as required",
        "Vital signs measured after dosing instead of before at visit {visit}",
        "Pharmacokinetic sample at visit {visit} drawn {d} hours late",
    )),
    ("Investigational product", 0.14, 0.45, (
        "Subject took incorrect dose of study drug for {d} days",
        "Study drug dispensed from a kit assigned to another subject at visit {visit}",
        "IP stored outside the temperature range for {d} hours before dispensing",
        "Dose interrupted for {d} days without investigator documentation",
    )),
    ("Concomitant medication", 0.09, 0.40, (
        "Prohibited medication taken for {d} days during the treatment period",
        "Rescue medication use not recorded at visit {visit}",
    )),
    ("Safety reporting", 0.06, 0.50, (
        "Serious adverse event reported to sponsor {d} days after awareness (late)",
        "Pregnancy test not performed before dosing at visit {visit}",
    )),
    ("Laboratory samples", 0.12, 0.10, (
        "Lab sample at visit {visit} haemolysed; not repeated",
        "Central lab sample shipped at ambient temperature; {d} hours in transit",
        "Sample collection tube expired at visit {visit}",
    )),
)

QUALITY_EVENT_CATEGORIES: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("Documentation", 0.22, (
        "Source documents for {n} subjects incomplete at monitoring visit; missing progress notes",
        "Delegation log not updated after staff change; {n} entries missing signatures",
        "Essential documents missing from the investigator site file: {doc}",
    )),
    ("Informed consent process", 0.14, (
        "Consent process deficiencies found during audit for {n} subjects",
        "Site used superseded consent version {v} for {n} subjects",
    )),
    ("IP management", 0.14, (
        "Temperature excursion in site pharmacy fridge lasting {d} hours; {n} kits quarantined",
        "IP accountability log does not reconcile: {n} kits unaccounted for",
        "Expired IP kits dispensed to {n} subjects",
    )),
    ("Data integrity", 0.12, (
        "Audit trail shows backdated eCRF entries for {n} visits",
        "Discrepancies between source and eCRF in {n} data points found at SDV",
    )),
    ("Safety reporting", 0.12, (
        "{n} SAEs reported outside the 24-hour timeline",
        "AE follow-up information missing for {n} events",
    )),
    ("Training", 0.12, (
        "{n} site staff performed study procedures before protocol training was documented",
        "Sub-investigator not trained on protocol amendment {v}",
    )),
    ("Vendor / central lab", 0.08, (
        "Central lab results delayed {d} days due to courier issues",
        "Imaging vendor rejected {n} scans for protocol non-compliance",
    )),
    ("Equipment", 0.06, (
        "ECG machine calibration expired {d} days before use",
        "Centrifuge out of service; {n} samples processed late",
    )),
)
ESSENTIAL_DOCUMENTS = ("CV of sub-investigator", "lab normal ranges", "IRB approval letter",
                       "financial disclosure", "monitoring visit log")

ROOT_CAUSES: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("Human error", 0.26, (
        "Coordinator overlooked the requirement under workload; peer check introduced",
        "Transcription error by site staff; double-entry verification added",
    )),
    ("Process gap", 0.22, (
        "No site procedure defined for this step; SOP written and staff trained",
        "Hand-over between shifts not covered by the procedure; checklist added",
    )),
    ("Training gap", 0.20, (
        "Staff not trained on the latest protocol amendment; retraining delivered",
        "New coordinator onboarded without protocol training; training matrix updated",
    )),
    ("System / tooling", 0.12, (
        "eCRF edit check missing for this field; edit check specification updated",
        "Temperature monitor alarm not configured; alarm escalation set up",
    )),
    ("Communication", 0.10, (
        "Amendment notification not forwarded to site pharmacy; distribution list fixed",
        "Sponsor guidance not communicated to sub-investigators; newsletter introduced",
    )),
    ("Resource constraints", 0.10, (
        "Site understaffed during enrollment peak; backup coordinator assigned",
        "Single coordinator on leave; workload redistributed",
    )),
)

MILESTONES = (
    "Protocol approved",
    "First site activated",
    "First patient in",
    "50% enrolled",
    "Last patient in",
    "Last patient last visit",
    "Database lock",
    "Clinical study report",
)

# ClinicalTrials.gov-shaped history: phase label, share, median enrollment, median months, median sites
HISTORICAL_PHASES: tuple[tuple[str, float, float, float, float], ...] = (
    ("PHASE1", 0.24, 32, 10, 2),
    ("PHASE1|PHASE2", 0.05, 45, 20, 4),
    ("PHASE2", 0.30, 80, 23, 8),
    ("PHASE2|PHASE3", 0.04, 250, 24, 25),
    ("PHASE3", 0.22, 420, 22, 45),
    ("PHASE4", 0.15, 180, 19, 6),
)

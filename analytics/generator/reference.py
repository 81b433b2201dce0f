"""Reference vocabularies and distributions the synthetic portfolio is drawn from.

Numbers here are plausible round values from practice and the literature (e.g. CTCAE grade cut-
offs relative to the upper/lower limit of normal; ClinicalTrials.gov-like median durations by phase
of about 26/35/38/37 months, as in the shared registry exports). They are constants, not results.
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
# Relative size of a study by phase (median randomized target) and its design. Planned enrollment
# months are what sponsors plan; studies take about twice as long (see ENROLLMENT_REALITY), which
# with the treatment and follow-up periods gives ClinicalTrials.gov-like start-to-completion medians.
PHASE_DESIGN = {
    # phase: (median target, enrollment months planned, visit interval days, planned visits, blinded share,
    #         follow-up days after the last treatment visit)
    "Phase 1": (40, 8, 7, 24, 0.5, 30),
    "Phase 2": (160, 13, 14, 26, 0.85, 30),
    "Phase 3": (500, 13, 28, 13, 0.9, 28),
    "Phase 4": (350, 14, 28, 13, 0.2, 0),
}

# How enrollment really goes against plan (round values from practice and the literature: site
# start-up about 31 weeks (Tufts CSDD), sponsors plan about 20; about 11% of activated sites enroll
# nobody; studies take nearly double their planned enrollment time, with a tail of badly late ones).
ENROLLMENT_REALITY = {
    "planned_start_up_days": 180.0,  # the sponsor's assumption, selection to activation
    "start_up_median_days": 217.0,  # what it takes: ~31 weeks
    "start_up_sigma": 0.45,  # log-normal spread between sites
    "country_start_up_sigma": 0.25,  # countries differ (ethics, contracts, import licences)
    "never_activated_share": 0.10,  # selected sites that never activate
    "no_patient_share": 0.05,  # activated sites that never find a patient (more enroll nobody by chance)
    "performance_median": 0.9,  # realized mean rate / the plan's assumed rate
    "performance_sigma": 0.65,
    "badly_late_share": 0.15,  # studies hit by a competing trial, an amendment or a hold
    "badly_late_factor": 0.5,
    "trend_mean_per_year": -0.15,  # site rates decline as the prevalent pool is used up
    "trend_sd_per_year": 0.15,
    "walk_sd_per_month": 0.06,  # study-level log-rate random walk (competition, amendments, supply)
    "ramp_days": 30.0,  # a new site screens at half speed at first
}
# Calendar-month multipliers of screening (holidays: December, August; mean 1).
SEASONALITY = (0.92, 1.04, 1.07, 1.05, 1.05, 1.03, 0.95, 0.80, 1.06, 1.08, 1.05, 0.70)

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

# Quality-event categories and their shares; the themes within each, with their wording, are in
# analytics.generator.quality_text.
QUALITY_EVENT_CATEGORIES: tuple[tuple[str, float], ...] = (
    ("Documentation", 0.22),
    ("Informed consent process", 0.14),
    ("IP management", 0.14),
    ("Data integrity", 0.12),
    ("Safety reporting", 0.12),
    ("Training", 0.12),
    ("Vendor / central lab", 0.08),
    ("Equipment", 0.06),
)

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

# ClinicalTrials.gov-shaped history: phase label, share, median enrollment, median months, median sites.
# Medians follow the shared ClinicalTrials.gov exports (interventional studies, start to completion
# date, all statuses; tests/test_generator.py compares them).
HISTORICAL_PHASES: tuple[tuple[str, float, float, float, float], ...] = (
    ("PHASE1", 0.24, 48, 26, 2),
    ("PHASE1|PHASE2", 0.05, 53, 35, 4),
    ("PHASE2", 0.30, 104, 35, 8),
    ("PHASE2|PHASE3", 0.04, 238, 41, 25),
    ("PHASE3", 0.22, 378, 38, 45),
    ("PHASE4", 0.15, 292, 37.5, 6),
)
HISTORICAL_MONTHS_SIGMA = 0.7  # log-normal spread of durations (registry quartiles ~22-56 months, Phase 3)

# --- who is enrolled ---------------------------------------------------------------------------
# The generator's assumptions about the population with each condition (round values, not
# epidemiology): female share, age mean and SD (years), and relative prevalence by race and ethnicity
# against the country's general population. Written to main.condition_population with that source.
POPULATION_SOURCE = "synthetic: analytics.generator reference assumptions, not epidemiological data"


@dataclass(frozen=True)
class ConditionPopulation:
    female_share: float
    age_mean: float
    age_sd: float
    black_rr: float = 1.0
    asian_rr: float = 1.0
    hispanic_rr: float = 1.0


CONDITION_POPULATION: dict[str, ConditionPopulation] = {
    "Non-small cell lung cancer": ConditionPopulation(0.45, 70, 9),
    "Breast cancer": ConditionPopulation(0.99, 61, 12, black_rr=1.1),
    "Colorectal cancer": ConditionPopulation(0.45, 66, 12, black_rr=1.2),
    "Multiple myeloma": ConditionPopulation(0.44, 69, 10, black_rr=2.0),
    "Prostate cancer": ConditionPopulation(0.0, 68, 8, black_rr=1.7),
    "Alzheimer's disease": ConditionPopulation(0.64, 78, 7, black_rr=1.6, hispanic_rr=1.4),
    "Parkinson's disease": ConditionPopulation(0.40, 70, 9),
    "Multiple sclerosis": ConditionPopulation(0.72, 45, 11, asian_rr=0.5),
    "Migraine": ConditionPopulation(0.78, 40, 12),
    "Heart failure": ConditionPopulation(0.45, 72, 11, black_rr=1.5),
    "Hypertension": ConditionPopulation(0.48, 60, 13, black_rr=1.4),
    "Atrial fibrillation": ConditionPopulation(0.45, 74, 9, black_rr=0.7),
    "Type 2 diabetes": ConditionPopulation(0.47, 60, 12, black_rr=1.3, asian_rr=1.2, hispanic_rr=1.5),
    "Obesity": ConditionPopulation(0.55, 48, 13, black_rr=1.3, hispanic_rr=1.2),
    "NASH": ConditionPopulation(0.50, 54, 12, hispanic_rr=1.5),
    "Rheumatoid arthritis": ConditionPopulation(0.72, 58, 13),
    "Psoriasis": ConditionPopulation(0.50, 47, 14),
    "Ulcerative colitis": ConditionPopulation(0.48, 42, 15),
    "Atopic dermatitis": ConditionPopulation(0.55, 35, 14),
    "RSV": ConditionPopulation(0.55, 70, 10),
    "Chronic hepatitis B": ConditionPopulation(0.40, 45, 12, asian_rr=4.0),
    "Influenza": ConditionPopulation(0.52, 45, 18),
    "Asthma": ConditionPopulation(0.60, 45, 16, black_rr=1.3),
    "COPD": ConditionPopulation(0.47, 66, 10),
}
HEALTHY_VOLUNTEERS = ConditionPopulation(0.35, 36, 10)  # Phase 1 studies enroll healthy volunteers

# Race categories the generator draws (CDISC DM.RACE terms) and each country's general-population mix.
RACE_CATEGORIES = ("WHITE", "BLACK OR AFRICAN AMERICAN", "ASIAN", "AMERICAN INDIAN OR ALASKA NATIVE",
                   "NATIVE HAWAIIAN OR OTHER PACIFIC ISLANDER", "MULTIPLE", "OTHER")
_WHITE_EU = (0.97, 0.01, 0.01, 0, 0, 0.005, 0.005)
COUNTRY_RACE: dict[str, tuple[float, ...]] = {
    "US": (0.72, 0.13, 0.06, 0.01, 0.002, 0.03, 0.048),
    "CA": (0.73, 0.04, 0.18, 0.04, 0, 0.01, 0.0),
    "MX": (0.35, 0.01, 0.0, 0.30, 0, 0.24, 0.10),
    "BR": (0.45, 0.10, 0.01, 0.01, 0, 0.40, 0.03),
    "AR": (0.85, 0.0, 0.0, 0.05, 0, 0.08, 0.02),
    "GB": (0.82, 0.04, 0.09, 0, 0, 0.03, 0.02),
    "DE": (0.93, 0.02, 0.03, 0, 0, 0.01, 0.01),
    "FR": (0.85, 0.08, 0.05, 0, 0, 0.01, 0.01),
    "ES": (0.93, 0.01, 0.02, 0, 0, 0.0, 0.04),
    "IT": (0.95, 0.02, 0.02, 0, 0, 0.005, 0.005),
    "NL": (0.85, 0.05, 0.05, 0, 0, 0.05, 0.0),
    "BE": (0.88, 0.05, 0.03, 0, 0, 0.0, 0.04),
    "PL": _WHITE_EU, "CZ": _WHITE_EU, "HU": _WHITE_EU, "BG": _WHITE_EU, "UA": _WHITE_EU,
    "IL": (0.95, 0.02, 0.0, 0, 0, 0.0, 0.03),
    "IN": (0.0, 0.0, 1.0, 0, 0, 0, 0),
    "CN": (0.0, 0.0, 1.0, 0, 0, 0, 0),
    "JP": (0.0, 0.0, 1.0, 0, 0, 0, 0),
    "KR": (0.0, 0.0, 1.0, 0, 0, 0, 0),
    "AU": (0.72, 0.01, 0.18, 0, 0.01, 0.04, 0.04),
    "ZA": (0.08, 0.80, 0.03, 0, 0, 0.09, 0.0),
}
# Share of the general population that is Hispanic or Latino, by country.
COUNTRY_HISPANIC: dict[str, float] = {"US": 0.18, "MX": 0.95, "AR": 0.90, "BR": 0.50, "ES": 0.05, "CA": 0.02}
# Countries whose sites mostly do not record race and ethnicity (e.g. French data-protection rules).
RACE_NOT_RECORDED: dict[str, float] = {"FR": 0.85, "DE": 0.15, "NL": 0.2}
# Trials under-enroll some groups relative to the condition's population (odds multipliers).
TRIAL_REPRESENTATION = {"BLACK OR AFRICAN AMERICAN": 0.55, "AMERICAN INDIAN OR ALASKA NATIVE": 0.5,
                        "HISPANIC OR LATINO": 0.7}
TRIAL_AGE_SHIFT_YEARS = -4.0  # trials enroll younger than the condition's population (exclusions, frailty)
TRIAL_AGE_SD_FACTOR = 0.85
SITE_MIX_CONCENTRATION = 12.0  # Dirichlet concentration of a site's race mix around its country's
DIVERSITY_PLAN_PHASE2_SHARE = 0.4  # Phase 3 studies always have a diversity plan, this share of Phase 2

"""Eligibility criteria for generated studies: realistic text whose structure the generator knows.

Each study gets a protocol drawn from :data:`TEMPLATES` for its indication and therapeutic area: an
age range, the diagnosis (with a duration for chronic diseases), the indication's labs (HbA1c for
type 2 diabetes, LVEF for heart failure, blood counts and organ function with ECOG for oncology, ...),
contraception, consent, and exclusions (recent myocardial infarction or stroke, other malignancy
except skin cancer, renal and liver function, pregnancy, washout of prohibited medications, viral
infections, another trial, the investigator's judgement). Every template has several wordings, so
the parser meets varied text; each criterion carries its true structure
(:class:`~analytics.recruitment.criteria.Criterion` with ``source="generator"``) for the evaluation,
and the pool simulator (:mod:`analytics.generator.prescreening`) draws patients against it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from analytics.recruitment.criteria import ADMINISTRATIVE, EXCLUSION, INCLUSION, NEEDS_REVIEW, STRUCTURED, ULN, Atom, \
    Criterion
from analytics.recruitment.vocabulary import CONDITIONS_BY_KEY, ECOG, LABS_BY_KEY, MEDICATIONS_BY_KEY

# Indication -> the vocabulary's condition key (every indication the portfolio generator draws).
INDICATION_CONDITION = {
    "Non-small cell lung cancer": "lung_cancer", "Breast cancer": "breast_cancer", "Colorectal cancer": "colorectal_cancer",
    "Multiple myeloma": "multiple_myeloma", "Prostate cancer": "prostate_cancer", "Alzheimer's disease": "alzheimer",
    "Parkinson's disease": "parkinson", "Multiple sclerosis": "multiple_sclerosis", "Migraine": "migraine",
    "Heart failure": "heart_failure", "Hypertension": "hypertension", "Atrial fibrillation": "atrial_fibrillation",
    "Type 2 diabetes": "type_2_diabetes", "Obesity": "obesity", "NASH": "nash", "Rheumatoid arthritis": "rheumatoid_arthritis",
    "Psoriasis": "psoriasis", "Ulcerative colitis": "ulcerative_colitis", "Atopic dermatitis": "atopic_dermatitis",
    "RSV": "rsv", "Chronic hepatitis B": "hepatitis_b", "Influenza": "influenza", "Asthma": "asthma", "COPD": "copd",
}
ONCOLOGY = frozenset({"Non-small cell lung cancer", "Breast cancer", "Colorectal cancer", "Multiple myeloma",
                      "Prostate cancer"})
ACUTE = frozenset({"RSV", "Influenza"})  # no diagnosis duration


@dataclass(frozen=True)
class LabPlan:
    """How patients' values of one lab are drawn: centre and spread in the lab's unit, and the unit some sites use."""

    mean: float
    sd: float
    alt_unit: str | None = None  # a second unit results arrive in (converted by the matcher)
    uln: float | None = None  # upper limit of normal, for thresholds relative to it
    low: float = 0.0  # values are clipped to [low, high]
    high: float = 1e9


LAB_PLANS: dict[str, LabPlan] = {
    "hba1c": LabPlan(8.2, 1.5, "mmol/mol", low=4.5, high=15),
    "fasting_glucose": LabPlan(150, 40, "mmol/L", low=60, high=400),
    "creatinine": LabPlan(1.0, 0.35, "umol/L", uln=1.2, low=0.4, high=6),
    "egfr": LabPlan(72, 22, low=8, high=130),
    "hemoglobin": LabPlan(12.8, 1.8, "g/L", low=6, high=18),
    "platelets": LabPlan(230, 70, "10^3/uL", low=20, high=600),
    "anc": LabPlan(3.6, 1.4, "/mm3", low=0.2, high=12),
    "alt": LabPlan(28, 18, uln=40, low=5, high=400),
    "ast": LabPlan(26, 15, uln=40, low=5, high=400),
    "bilirubin": LabPlan(0.8, 0.4, "umol/L", uln=1.2, low=0.1, high=6),
    "psa": LabPlan(8, 7, low=0.01, high=200),
    "testosterone": LabPlan(120, 160, "nmol/L", low=5, high=900),
    "bmi": LabPlan(29, 5.5, low=16, high=60),
    "systolic_bp": LabPlan(142, 18, low=85, high=220),
    "lvef": LabPlan(40, 12, low=10, high=75),
    "mmse": LabPlan(21, 4.5, low=5, high=30),
    "crp": LabPlan(12, 10, "mg/dL", low=0.2, high=150),
    "ldl": LabPlan(125, 35, "mmol/L", low=40, high=300),
    ECOG.key: LabPlan(1.0, 0.9, low=0, high=4),
}


@dataclass(frozen=True)
class GeneratedCriterion:
    """A criterion as the protocol writes it, its true structure, and how often its statement is true in a pool."""

    truth: Criterion
    statement_rate: float  # share of a pool for which the statement is true (before demographics decide)


@dataclass(frozen=True)
class Protocol:
    """A generated study's eligibility: the text, each criterion's truth, and the structured age and sex limits."""

    text: str
    criteria: tuple[GeneratedCriterion, ...]
    min_age: float | None
    max_age: float | None
    sex: str  # ALL, MALE or FEMALE
    indication: str


@dataclass
class _Draft:
    rng: np.random.Generator
    indication: str
    inclusion: list[GeneratedCriterion] = field(default_factory=list)
    exclusion: list[GeneratedCriterion] = field(default_factory=list)

    def pick(self, options: tuple[str, ...]) -> str:
        return options[int(self.rng.integers(len(options)))]

    def add(self, section: str, text: str, atoms: tuple[Atom, ...] = (), rate: float = 0.0, status: str = STRUCTURED,
            combine: str = "any", negated: bool = False) -> None:
        target = self.inclusion if section == INCLUSION else self.exclusion
        truth = Criterion(0, section, text, status, atoms=atoms, combine=combine, negated=negated, source="generator")
        target.append(GeneratedCriterion(truth, rate))


def _condition(key: str, **kw: object) -> Atom:
    term = CONDITIONS_BY_KEY[key]
    return Atom("condition", term.key, term.name, codes=term.icd10cm, **kw)


def _medication(key: str, **kw: object) -> Atom:
    term = MEDICATIONS_BY_KEY[key]
    return Atom("medication", term.key, term.name, codes=term.atc, **kw)


def _lab(key: str, comparator: str, value: float, unit: str | None = None, high: float | None = None,
         within_days: int | None = None) -> Atom:
    term = LABS_BY_KEY[key]
    return Atom("ecog" if term is ECOG else "lab", term.key, term.name, codes=term.loinc, comparator=comparator,
                value=value, value_high=high, unit=unit or term.unit, within_days=within_days)


def _number(value: float) -> str:
    return f"{value:g}" if value != int(value) else f"{int(value)}"


# --- templates -----------------------------------------------------------------------------------


def _age(d: _Draft, low: int, high: int | None) -> None:
    if high is None:
        text = d.pick((f"Aged {low} years or older", f"Age >= {low} years at screening", f"At least {low} years of age"))
        d.add(INCLUSION, text, (Atom("age", "age", "Age", comparator=">=", value=float(low), unit="years"),))
        return
    text = d.pick((f"Aged {low} to {high} years, inclusive", f"Age between {low} and {high} years at screening",
                   f"Men and women aged {low}-{high} years", f"{low} to {high} years of age"))
    d.add(INCLUSION, text, (Atom("age", "age", "Age", comparator="between", value=float(low), value_high=float(high),
                                 unit="years"),))


def _diagnosis(d: _Draft, key: str) -> None:
    name = d.indication if d.indication not in ("RSV",) else "respiratory syncytial virus (RSV) infection"
    lowered = name if name.isupper() or name[:2].isupper() else name[0].lower() + name[1:]
    if d.indication in ACUTE:
        text = d.pick((f"Confirmed {lowered}", f"Diagnosis of {lowered}"))
        d.add(INCLUSION, text, (_condition(key),), 0.96)
        return
    if d.indication in ONCOLOGY:
        text = d.pick((f"Documented diagnosis of {lowered}", f"Diagnosis of {lowered}",
                       f"Histologically confirmed {lowered}"))
        d.add(INCLUSION, text, (_condition(key),), 0.96)
        return
    months = int(d.rng.choice((3, 6, 12)))
    text = d.pick((f"Diagnosis of {lowered} for at least {months} months before screening",
                   f"Documented {lowered} for at least {months} months", f"{name} diagnosed at least {months} months ago"))
    d.add(INCLUSION, text, (_condition(key, at_least_days=int(round(months * 30.4375))),), 0.93)


def _indication_labs(d: _Draft) -> None:
    add, pick, rng = d.add, d.pick, d.rng
    ind = d.indication
    if ind == "Type 2 diabetes":
        low, high = float(rng.choice((7.0, 7.5))), float(rng.choice((10.0, 10.5, 11.0)))
        add(INCLUSION, pick((f"HbA1c between {low:.1f}% and {high:.1f}% at screening", f"HbA1c {low:.1f}-{high:.1f}%",
                             f"Glycated haemoglobin (HbA1c) >= {low:.1f}% and <= {high:.1f}%")),
            (_lab("hba1c", "between", low, "%", high),), 0.0, combine="all")
    elif ind == "Heart failure":
        value = float(rng.choice((35, 40, 45)))
        add(INCLUSION, pick((f"LVEF <= {value:g}%", f"Left ventricular ejection fraction of {value:g}% or less")),
            (_lab("lvef", "<=", value, "%"),))
    elif ind == "Hypertension":
        value = float(rng.choice((140, 145, 150)))
        add(INCLUSION, pick((f"Systolic blood pressure >= {value:g} mmHg at screening", f"SBP of at least {value:g} mmHg")),
            (_lab("systolic_bp", ">=", value, "mmHg"),))
    elif ind == "Obesity":
        value = float(rng.choice((30, 35)))
        add(INCLUSION, pick((f"BMI >= {value:g} kg/m2", f"Body mass index of at least {value:g} kg/m2")),
            (_lab("bmi", ">=", value, "kg/m2"),))
    elif ind == "Alzheimer's disease":
        low, high = float(rng.choice((16, 18, 20))), float(rng.choice((24, 26)))
        add(INCLUSION, pick((f"MMSE score between {low:g} and {high:g} at screening", f"MMSE {low:g}-{high:g}")),
            (_lab("mmse", "between", low, "1", high),))
    elif ind == "Rheumatoid arthritis":
        value = float(rng.choice((6, 10)))
        add(INCLUSION, pick((f"CRP >= {value:g} mg/L at screening", f"C-reactive protein of at least {value:g} mg/L")),
            (_lab("crp", ">=", value, "mg/L"),))
    elif ind == "Prostate cancer":
        add(INCLUSION, pick(("Serum testosterone < 50 ng/dL", "Castrate level of testosterone (< 50 ng/dL)")),
            (_lab("testosterone", "<", 50.0, "ng/dL"),))
        value = float(rng.choice((1.0, 2.0)))
        if rng.uniform() < 0.5:
            add(INCLUSION, f"PSA >= {value:g} ng/mL within 3 months before screening",
                (_lab("psa", ">=", value, "ng/mL", within_days=91),))
        else:
            add(INCLUSION, f"PSA of at least {value:g} ng/mL", (_lab("psa", ">=", value, "ng/mL"),))
    if ind in ONCOLOGY:
        grades = int(rng.choice((1, 2)))
        if rng.uniform() < 0.3:
            add(INCLUSION, f"ECOG performance status <= {grades}", (_lab(ECOG.key, "<=", float(grades), "1"),))
        else:
            add(INCLUSION, pick((f"ECOG performance status 0-{grades}", f"ECOG performance status of 0 to {grades}")),
                (_lab(ECOG.key, "between", 0.0, "1", float(grades)),))
        add(INCLUSION, pick(("ANC >= 1.5 x 10^9/L", "Absolute neutrophil count >= 1500/mm3")),
            (_lab("anc", ">=", 1.5, "10^9/L"),))
        add(INCLUSION, pick(("Platelets >= 100 x 10^9/L", "Platelet count of at least 100 x 10^9/L")),
            (_lab("platelets", ">=", 100.0, "10^9/L"),))
        add(INCLUSION, pick(("Hemoglobin >= 9.0 g/dL", "Haemoglobin >= 90 g/L")),
            (_lab("hemoglobin", ">=", 9.0, "g/dL"),))
        add(INCLUSION, pick(("Total bilirubin <= 1.5 x ULN", "Total bilirubin no more than 1.5 times the upper limit of normal")),
            (_lab("bilirubin", "<=", 1.5, ULN),))


def _exclusions(d: _Draft) -> None:
    add, pick, rng = d.add, d.pick, d.rng
    ind = d.indication
    months = int(rng.choice((3, 6)))
    add(EXCLUSION, pick((f"History of myocardial infarction or stroke within {months} months before screening",
                         f"Myocardial infarction or stroke in the past {months} months")),
        (_condition("myocardial_infarction", within_days=int(round(months * 30.4375))),
         _condition("stroke", within_days=int(round(months * 30.4375)))), 0.05)
    if ind not in ONCOLOGY:
        years = int(rng.choice((3, 5)))
        add(EXCLUSION, pick((f"History of malignancy within {years} years, other than non-melanoma skin cancer",
                             f"Malignancy within the past {years} years except non-melanoma skin cancer")),
            (_condition("malignancy", within_days=int(round(years * 365.25)), except_codes=("C44",)),), 0.05)
    if ind not in ("Chronic hepatitis B",):
        add(EXCLUSION, pick(("Known HIV infection or active hepatitis B or C", "HIV infection, or active hepatitis B or C")),
            (_condition("hiv"), _condition("hepatitis_b_or_c", current=True)), 0.03)
    if rng.uniform() < 0.5:
        value = float(rng.choice((30, 45)))
        add(EXCLUSION, pick((f"eGFR < {value:g} mL/min/1.73 m2", f"Estimated glomerular filtration rate below {value:g} mL/min/1.73 m2")),
            (_lab("egfr", "<", value, "mL/min/1.73 m2"),))
    else:
        value = float(rng.choice((1.5, 2.0)))
        add(EXCLUSION, pick((f"Serum creatinine > {value:g} mg/dL", f"Creatinine greater than {value:g} mg/dL at screening")),
            (_lab("creatinine", ">", value, "mg/dL"),))
    value = float(rng.choice((2.5, 3.0)))
    add(EXCLUSION, pick((f"ALT or AST > {value:g} x ULN", f"ALT or AST greater than {value:g} times the upper limit of normal")),
        (_lab("alt", ">", value, ULN), _lab("ast", ">", value, ULN)))
    add(EXCLUSION, pick(("Pregnant or breastfeeding women", "Pregnancy or lactation", "Women who are pregnant or breastfeeding")),
        (Atom("pregnancy", "pregnancy", "Pregnant"), Atom("breastfeeding", "breastfeeding", "Breastfeeding")), 0.0)
    weeks = int(rng.choice((4, 8)))
    if ind in ("Rheumatoid arthritis", "Psoriasis", "Ulcerative colitis", "Atopic dermatitis", "Asthma", "COPD",
               "Multiple sclerosis"):
        add(EXCLUSION, pick((f"Treatment with systemic corticosteroids within {weeks} weeks before screening",
                             f"Use of systemic corticosteroids in the past {weeks} weeks")),
            (_medication("corticosteroids", within_days=weeks * 7),), 0.08)
    elif ind in ("Type 2 diabetes", "Obesity", "NASH"):
        add(EXCLUSION, pick(("Type 1 diabetes", "History of type 1 diabetes")), (_condition("type_1_diabetes"),), 0.03)
        add(EXCLUSION, pick((f"Use of insulin within {weeks} weeks before screening", f"Insulin treatment in the past {weeks} weeks")),
            (_medication("insulin", within_days=weeks * 7),), 0.08)
        add(EXCLUSION, pick(("History of pancreatitis", "Prior pancreatitis")), (_condition("pancreatitis"),), 0.03)
    elif ind in ONCOLOGY:
        add(EXCLUSION, pick((f"Chemotherapy within {weeks} weeks before screening", f"Prior chemotherapy in the last {weeks} weeks")),
            (_medication("chemotherapy", within_days=weeks * 7),), 0.08)
        add(EXCLUSION, pick(("Other active malignancy", "Active second malignancy")), (), 0.02, status=NEEDS_REVIEW)
    else:
        add(EXCLUSION, pick(("Current use of anticoagulants", "Current anticoagulant therapy")),
            (_medication("anticoagulants", current=True),), 0.06)
    if ind in ("Alzheimer's disease", "Parkinson's disease", "Multiple sclerosis", "Migraine"):
        add(EXCLUSION, pick(("History of epilepsy", "Epilepsy or seizures")), (_condition("epilepsy"),), 0.03)
    if ind in ("Heart failure", "Hypertension", "Atrial fibrillation"):
        add(EXCLUSION, pick(("Hypertrophic cardiomyopathy", "Known hypertrophic obstructive cardiomyopathy")), (), 0.02,
            status=NEEDS_REVIEW)
    add(EXCLUSION, pick(("Participation in another clinical trial within 30 days before screening",
                         "Treatment with an investigational drug within 30 days")), (), 0.0, status=ADMINISTRATIVE)
    add(EXCLUSION, pick(("Any condition that, in the opinion of the investigator, would compromise the patient's safety "
                         "or participation", "Any medical condition that the investigator considers would make the "
                         "patient unsuitable")), (), 0.03, status=NEEDS_REVIEW)


SEX_SPECIFIC = {"Prostate cancer": "MALE", "Breast cancer": "FEMALE"}


def make_protocol(rng: np.random.Generator, indication: str, phase: str) -> Protocol:
    """A protocol for a study in ``indication``: criteria text and each criterion's true structure."""
    d = _Draft(rng, indication)
    low = int(rng.choice((18, 18, 18, 40, 50))) if phase != "Phase 1" else 18
    high = None if rng.uniform() < 0.3 else int(rng.choice((65, 70, 75, 80, 85)))
    if phase == "Phase 1":
        high = 55
    _age(d, low, high)
    sex = SEX_SPECIFIC.get(indication, "ALL")
    if sex != "ALL":
        d.add(INCLUSION, d.pick(("Male patients", "Men")) if sex == "MALE" else d.pick(("Female patients", "Women")),
              (Atom("sex", "sex", "Sex", sexes=(sex[0],)),))
    _diagnosis(d, INDICATION_CONDITION[indication])
    _indication_labs(d)
    if sex != "MALE":
        d.add(INCLUSION, d.pick(("Women of childbearing potential must agree to use highly effective contraception",
                                 "Women of childbearing potential must use effective contraception during the study")),
              (Atom("contraception", "contraception", "Uses effective contraception"),))
    d.add(INCLUSION, d.pick(("Able and willing to provide written informed consent", "Signed informed consent",
                             "Willing to comply with all study visits and procedures")), status=ADMINISTRATIVE)
    _exclusions(d)
    numbered = []
    for number, item in enumerate(d.inclusion + d.exclusion, start=1):
        truth = Criterion(number, item.truth.section, item.truth.text, item.truth.status, atoms=item.truth.atoms,
                          combine=item.truth.combine, negated=item.truth.negated, note=item.truth.note, source="generator")
        numbered.append(GeneratedCriterion(truth, item.statement_rate))
    lines = ["Inclusion Criteria:", ""] + [f"* {c.truth.text}" for c in numbered if c.truth.section == INCLUSION]
    lines += ["", "Exclusion Criteria:", ""] + [f"* {c.truth.text}" for c in numbered if c.truth.section == EXCLUSION]
    return Protocol("\n".join(lines), tuple(numbered), float(low), float(high) if high else None, sex, indication)


ProtocolFactory = Callable[[np.random.Generator, str, str], Protocol]

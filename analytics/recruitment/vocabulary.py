"""What the criteria parser recognizes: conditions (ICD-10-CM), labs and measures (LOINC, unit, molar mass),
medications (WHO ATC), each with the phrases protocols use for it.

Codes are matched as prefixes: a criterion on ``E11`` (type 2 diabetes mellitus) matches a patient's
``E11.65``. ``tests/test_recruitment_vocabulary.py`` checks every ICD-10-CM code here against the
official code set (simple-icd-10-cm), so a typo cannot slip in. The terms are the ones eligibility
criteria use most (the generated protocols' indications and common exclusions, and the urology
registry sample); anything else a criterion names is left for a person or the model to structure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class ConditionTerm:
    """A condition: its key, display name, ICD-10-CM code prefixes and the phrases that name it."""

    key: str
    name: str
    icd10cm: tuple[str, ...]
    phrases: tuple[str, ...]  # regular expressions, matched case-insensitively on word boundaries


@dataclass(frozen=True)
class LabTerm:
    """A lab test, vital sign or score: LOINC codes, the unit criteria use and the molar mass for conversions."""

    key: str
    name: str
    loinc: tuple[str, ...]
    unit: str  # the canonical unit values are compared in
    phrases: tuple[str, ...]
    molar_mass: float | None = None  # g/mol, for mass <-> substance concentration
    hba1c: bool = False  # NGSP % <-> IFCC mmol/mol
    decimals: int = 1  # how results are usually reported (the generator rounds to this)


@dataclass(frozen=True)
class MedicationTerm:
    """A drug or drug class: WHO ATC code prefixes and the names (generic, brand, class) protocols use."""

    key: str
    name: str
    atc: tuple[str, ...]
    phrases: tuple[str, ...]


C = ConditionTerm
# "alcohol and/or drug abuse", "drug, alcohol, or substance abuse": the noun the list shares comes at its end.
_LIST_GLUE = r"(?:[\s,/]|\band\b|\bor\b)*"
_SHARED_ABUSE = (r"(?=\s*(?:,|/|\band\b|\bor\b)" + _LIST_GLUE + r"(?:(?:drug|alcohol|substance)s?" + _LIST_GLUE + r")*"
                 r"(?:abuse|dependence|misuse|use disorders?)\b)")
CONDITIONS: tuple[ConditionTerm, ...] = (
    C("type_2_diabetes", "Type 2 diabetes mellitus", ("E11",), (r"type\s*(?:2|ii|two) diabetes(?: mellitus)?", r"diabetes(?: mellitus)?,? type\s*(?:2|ii|two)\b", r"t2dm",
      r"non[- ]insulin[- ]dependent diabetes")),
    C("type_1_diabetes", "Type 1 diabetes mellitus", ("E10",), (r"type\s*(?:1|i|one) diabetes(?: mellitus)?", r"diabetes(?: mellitus)?,? type\s*(?:1|i|one)\b", r"t1dm",
      r"insulin[- ]dependent diabetes")),
    C("diabetes", "Diabetes mellitus", ("E08", "E09", "E10", "E11", "E13"), (r"diabetes(?: mellitus)?", r"diabetic")),
    C("hypertension", "Hypertension", ("I10", "I11", "I12", "I13", "I15", "I16"),
      (r"(?:arterial |essential )?hypertension", r"high blood pressure")),
    C("heart_failure", "Heart failure", ("I50",), (r"(?:congestive )?heart failure", r"chf", r"cardiac failure")),
    C("myocardial_infarction", "Myocardial infarction", ("I21", "I22", "I25.2"),
      (r"myocardial infarction", r"heart attack", r"\bmi\b")),
    C("unstable_angina", "Unstable angina", ("I20.0",), (r"unstable angina",)),
    C("angina", "Angina pectoris", ("I20",), (r"angina(?: pectoris)?",)),
    C("coronary_disease", "Coronary artery disease", ("I25",), (r"coronary (?:artery|heart) disease", r"cad\b")),
    C("stroke", "Stroke", ("I60", "I61", "I62", "I63"),
      (r"stroke", r"cerebrovascular accident", r"\bcva\b", r"cerebral infarction", r"intracranial hemorrhage")),
    C("tia", "Transient ischemic attack", ("G45",), (r"transient ischa?emic attack", r"\btia\b")),
    C("atrial_fibrillation", "Atrial fibrillation", ("I48",), (r"atrial fibrillation", r"atrial flutter")),
    C("long_qt", "Long QT syndrome", ("I45.81",), (r"long qt syndrome", r"congenital long qt")),
    C("venous_thromboembolism", "Venous thromboembolism", ("I26", "I82.4"),
      (r"deep (?:vein|venous) thrombosis", r"\bdvt\b", r"pulmonary embolism", r"venous thromboembolism")),
    C("copd", "Chronic obstructive pulmonary disease", ("J44",), (r"chronic obstructive pulmonary disease", r"copd")),
    C("asthma", "Asthma", ("J45",), (r"asthma",)),
    C("ckd", "Chronic kidney disease", ("N18",), (r"chronic kidney disease", r"\bckd\b", r"chronic renal (?:failure|insufficiency)")),
    C("esrd", "End-stage renal disease", ("N18.6",), (r"end[- ]stage (?:renal|kidney) disease", r"\besrd\b", r"dialysis")),
    C("acute_kidney_injury", "Acute kidney injury", ("N17",), (r"acute kidney injury", r"acute renal failure")),
    C("hepatitis_b_or_c", "Hepatitis B or C", ("B16", "B18.0", "B18.1", "B17.1", "B18.2"),
      (r"hepatitis b (?:or|and|/|and/or) c(?: virus)?(?: infection)?", r"\bhbv (?:or|and|/) hcv\b")),
    C("hepatitis_b", "Hepatitis B", ("B16", "B18.0", "B18.1"), (r"hepatitis b", r"\bhbv\b")),
    C("hepatitis_c", "Hepatitis C", ("B17.1", "B18.2"), (r"hepatitis c", r"\bhcv\b")),
    C("hiv", "HIV disease", ("B20", "Z21"), (r"human immunodeficiency virus", r"\bhiv\b", r"(?-i:AIDS)",
      r"acquired immune ?deficiency syndrome", r"(?:a )?positive hiv(?: test| result| serology)?")),
    C("cirrhosis", "Cirrhosis of liver", ("K70.3", "K74.6"), (r"(?:liver |hepatic )?cirrhosis",)),
    C("nash", "Nonalcoholic steatohepatitis", ("K75.81",), (r"non[- ]?alcoholic steatohepatitis", r"\bnash\b", r"\bmash\b")),
    C("pancreatitis", "Pancreatitis", ("K85", "K86.0", "K86.1"), (r"pancreatitis",)),
    C("malignancy", "Malignant neoplasm (any)", ("C",), (r"malignan(?:cy|cies|t (?:neoplasm|tumou?r|disease))",
      r"(?:other |active |prior |second )?cancer", r"carcinoma")),
    C("prostate_cancer", "Malignant neoplasm of prostate", ("C61",),
      (r"prostat(?:e|ic) (?:cancer|carcinoma|adenocarcinoma)", r"adenocarcinoma of the prostate",
       r"carcinoma of the prostate", r"cancer of the prostate")),
    C("breast_cancer", "Malignant neoplasm of breast", ("C50",), (r"breast (?:cancer|carcinoma)",)),
    C("lung_cancer", "Malignant neoplasm of bronchus and lung", ("C34",),
      (r"non[- ]small[- ]cell lung (?:cancer|carcinoma)", r"\bnsclc\b", r"lung cancer")),
    C("colorectal_cancer", "Malignant neoplasm of colon, rectosigmoid junction or rectum", ("C18", "C19", "C20"),
      (r"colorectal (?:cancer|carcinoma)", r"colon cancer", r"rectal cancer")),
    C("multiple_myeloma", "Multiple myeloma", ("C90.0",), (r"multiple myeloma",)),
    C("bladder_cancer", "Malignant neoplasm of bladder", ("C67",),
      (r"bladder (?:cancer|carcinoma)", r"urothelial (?:cancer|carcinoma)", r"carcinoma of the bladder")),
    C("kidney_cancer", "Malignant neoplasm of kidney", ("C64",), (r"renal cell (?:cancer|carcinoma)", r"kidney cancer", r"\brcc\b")),
    C("skin_cancer_nonmelanoma", "Other malignant neoplasm of skin", ("C44",),
      (r"(?:basal|squamous)(?: or (?:basal|squamous))? cell (?:skin )?(?:cancer|carcinoma)s?(?: of the skin)?",
       r"non[- ]?melanoma skin cancer")),
    C("melanoma", "Melanoma", ("C43",), (r"melanoma",)),
    C("bph", "Benign prostatic hyperplasia", ("N40",), (r"benign prostatic (?:hyperplasia|hypertrophy|enlargement)",
      r"\bbph\b", r"\bluts\b(?: (?:due to|secondary to) bph)?", r"enlarged prostate",
      r"prostat(?:e|ic) enlargement(?: with lower urinary tract symptoms)?")),
    C("erectile_dysfunction", "Erectile dysfunction", ("N52",), (r"erectile dysfunction", r"(?-i:ED)", r"impotence")),
    C("overactive_bladder", "Overactive bladder", ("N32.81",), (r"overactive bladder", r"\boab\b")),
    C("urinary_incontinence", "Urinary incontinence", ("N39.3", "N39.4", "R32"),
      (r"(?:stress |urge |mixed )?(?:urinary )?incontinence",)),
    C("kidney_stones", "Calculus of kidney and ureter", ("N20",),
      (r"(?:kidney|renal|ureteral|urinary) (?:stones?|calculi|calculus)", r"nephrolithiasis", r"urolithiasis")),
    C("uti", "Urinary tract infection", ("N39.0", "N30.0", "N10"),
      (r"urinary tract infections?", r"\butis?\b", r"pyelonephritis", r"acute cystitis")),
    C("interstitial_cystitis", "Interstitial cystitis", ("N30.1",), (r"interstitial cystitis", r"bladder pain syndrome")),
    C("urethral_stricture", "Urethral stricture", ("N35",), (r"urethral strictures?",)),
    C("prostatitis", "Prostatitis", ("N41",), (r"prostatitis",)),
    C("neurogenic_bladder", "Neuromuscular dysfunction of bladder", ("N31",), (r"neurogenic bladder",)),
    C("urinary_retention", "Retention of urine", ("R33",), (r"urinary retention",)),
    C("peyronie", "Peyronie disease", ("N48.6",), (r"peyronie'?s disease",)),
    C("hypogonadism", "Testicular hypofunction", ("E29.1",), (r"hypogonadism",)),
    C("alzheimer", "Alzheimer's disease", ("G30",), (r"alzheimer'?s disease", r"alzheimer'?s")),
    C("dementia", "Dementia", ("F01", "F02", "F03", "G30"), (r"dementia",)),
    C("parkinson", "Parkinson's disease", ("G20",), (r"parkinson'?s disease",)),
    C("multiple_sclerosis", "Multiple sclerosis", ("G35",), (r"multiple sclerosis",)),
    C("migraine", "Migraine", ("G43",), (r"migraines?",)),
    C("epilepsy", "Epilepsy and seizures", ("G40",), (r"epilepsy", r"seizure disorder", r"seizures")),
    C("peripheral_neuropathy", "Polyneuropathy", ("G60", "G61", "G62", "G63", "E11.4"),
      (r"peripheral neuropathy", r"polyneuropathy")),
    C("depression", "Depressive disorder", ("F32", "F33"), (r"(?:major )?depress(?:ion|ive disorder)",)),
    C("bipolar", "Bipolar disorder", ("F31",), (r"bipolar disorder",)),
    C("schizophrenia", "Schizophrenia", ("F20",), (r"schizophrenia",)),
    C("alcohol_abuse", "Alcohol related disorders", ("F10",), (r"alcohol (?:abuse|dependence|use disorder)", r"alcoholism",
      r"alcohol" + _SHARED_ABUSE)),
    C("drug_abuse", "Drug abuse", ("F11", "F12", "F13", "F14", "F15", "F16", "F18", "F19"),
      (r"(?:drug|substance) (?:abuse|dependence|use disorder)", r"drugs?" + _SHARED_ABUSE)),
    C("rheumatoid_arthritis", "Rheumatoid arthritis", ("M05", "M06"), (r"rheumatoid arthritis",)),
    C("psoriasis", "Psoriasis", ("L40",), (r"(?:plaque )?psoriasis",)),
    C("ulcerative_colitis", "Ulcerative colitis", ("K51",), (r"ulcerative colitis",)),
    C("crohn", "Crohn's disease", ("K50",), (r"crohn'?s disease",)),
    C("atopic_dermatitis", "Atopic dermatitis", ("L20",), (r"atopic dermatitis", r"atopic eczema")),
    C("lupus", "Systemic lupus erythematosus", ("M32",), (r"systemic lupus erythematosus", r"\bsle\b", r"lupus")),
    C("rsv", "Respiratory syncytial virus infection", ("B97.4", "J12.1", "J20.5", "J21.0"),
      (r"respiratory syncytial virus(?: \(rsv\))?(?: infection| disease)?", r"\brsv\b(?: infection| disease)?")),
    C("influenza", "Influenza", ("J09", "J10", "J11"), (r"influenza",)),
    C("tuberculosis", "Tuberculosis", ("A15", "Z22.7"), (r"(?:active |latent )?tuberculosis", r"\btb\b")),
    C("obesity", "Obesity", ("E66",), (r"obesity",)),
    C("hypothyroidism", "Hypothyroidism", ("E03",), (r"hypothyroidism",)),
    C("hyperthyroidism", "Hyperthyroidism", ("E05",), (r"hyperthyroidism",)),
    C("anemia", "Anemia", ("D50", "D51", "D52", "D53", "D55", "D56", "D57", "D58", "D59", "D60", "D61", "D62", "D63",
      "D64"), (r"ana?emia",)),
    C("bleeding_disorder", "Coagulation defects", ("D65", "D66", "D67", "D68", "D69"),
      (r"bleeding disorders?", r"coagulopathy", r"bleeding diathesis", r"ha?emophilia")),
    C("glaucoma", "Glaucoma", ("H40",), (r"glaucoma",)),
    C("sleep_apnea", "Obstructive sleep apnea", ("G47.33",), (r"(?:obstructive )?sleep apnea",)),
    C("kidney_transplant", "Kidney transplant status", ("Z94.0",), (r"kidney transplant", r"renal transplant")),
    C("organ_transplant", "Transplanted organ status", ("Z94",), (r"(?:solid )?organ transplant",)),
    C("osteoporosis", "Osteoporosis", ("M80", "M81"), (r"osteoporosis",)),
    C("spinal_cord_injury", "Spinal cord injury", ("S14.1", "S24.1", "S34.1"), (r"spinal cord injury",)),
)

L = LabTerm
LABS: tuple[LabTerm, ...] = (
    L("hba1c", "HbA1c", ("4548-4", "17856-6", "59261-8"), "%",
      (r"hba1c", r"hb\s?a1c", r"a1c", r"glycated ha?emoglobin", r"glycosylated ha?emoglobin", r"ha?emoglobin a1c"),
      hba1c=True),
    L("fasting_glucose", "Fasting plasma glucose", ("1558-6", "2345-7"), "mg/dL",
      (r"fasting (?:plasma |blood |serum )?glucose", r"\bfpg\b"), molar_mass=180.16, decimals=0),
    L("creatinine", "Serum creatinine", ("2160-0", "38483-4"), "mg/dL",
      (r"(?:serum )?creatinine(?! clearance)",), molar_mass=113.12, decimals=2),
    L("egfr", "eGFR", ("33914-3", "62238-1", "98979-8", "48642-3", "48643-1"), "mL/min/1.73 m2",
      (r"\begfr\b", r"estimated glomerular filtration rate", r"glomerular filtration rate", r"\bgfr\b"), decimals=0),
    L("creatinine_clearance", "Creatinine clearance", ("2164-2",), "mL/min",
      (r"creatinine clearance", r"\bcrcl\b"), decimals=0),
    L("hemoglobin", "Hemoglobin", ("718-7",), "g/dL", (r"ha?emoglobin(?! a1c)", r"\bhgb\b", r"\bhb\b(?!\s?a1c)")),
    L("platelets", "Platelet count", ("777-3", "26515-7"), "10^9/L", (r"platelets?(?: count)?", r"\bplt\b"), decimals=0),
    L("anc", "Absolute neutrophil count", ("751-8", "26499-4"), "10^9/L",
      (r"absolute neutrophil count", r"\banc\b", r"neutrophils?(?: count)?"), decimals=2),
    L("wbc", "White blood cell count", ("6690-2", "26464-8"), "10^9/L",
      (r"white blood cells?(?: count)?", r"\bwbc\b", r"leukocytes?(?: count)?"), decimals=1),
    L("alt", "ALT", ("1742-6",), "U/L", (r"\balt\b", r"alanine (?:amino)?transaminase", r"\bsgpt\b"), decimals=0),
    L("ast", "AST", ("1920-8",), "U/L", (r"\bast\b", r"aspartate (?:amino)?transaminase", r"\bsgot\b"), decimals=0),
    L("bilirubin", "Total bilirubin", ("1975-2",), "mg/dL", (r"(?:total |serum )?bilirubin",), molar_mass=584.66),
    L("albumin", "Serum albumin", ("1751-7",), "g/dL", (r"(?:serum )?albumin",)),
    L("psa", "PSA", ("2857-1",), "ng/mL", (r"\bpsa\b", r"prostate[- ]specific antigen"), decimals=2),
    L("testosterone", "Serum testosterone", ("2986-8",), "ng/dL", (r"(?:serum |total )?testosterone",),
      molar_mass=288.42, decimals=0),
    L("potassium", "Potassium", ("2823-3",), "mmol/L", (r"(?:serum )?potassium", r"\bk\+")),
    L("sodium", "Sodium", ("2951-2",), "mmol/L", (r"(?:serum )?sodium",), decimals=0),
    L("ldl", "LDL cholesterol", ("13457-7", "18262-6", "2089-1"), "mg/dL",
      (r"ldl(?:[- ]c(?:holesterol)?)?", r"low[- ]density lipoprotein(?: cholesterol)?"), molar_mass=386.65, decimals=0),
    L("triglycerides", "Triglycerides", ("2571-8",), "mg/dL", (r"triglycerides?",), molar_mass=885.7, decimals=0),
    L("bmi", "Body mass index", ("39156-5",), "kg/m2", (r"body mass index", r"\bbmi\b")),
    L("weight", "Body weight", ("29463-7",), "kg", (r"(?:body )?weight",)),
    L("systolic_bp", "Systolic blood pressure", ("8480-6",), "mmHg", (r"systolic(?: blood pressure| bp)?", r"\bsbp\b"),
      decimals=0),
    L("diastolic_bp", "Diastolic blood pressure", ("8462-4",), "mmHg",
      (r"diastolic(?: blood pressure| bp)?", r"\bdbp\b"), decimals=0),
    L("heart_rate", "Heart rate", ("8867-4",), "1/min", (r"heart rate", r"pulse rate"), decimals=0),
    L("qtc", "QTc interval", ("8636-3",), "ms", (r"qtc[fb]?(?: interval)?", r"corrected qt(?: interval)?"), decimals=0),
    L("lvef", "Left ventricular ejection fraction", ("10230-1",), "%",
      (r"left ventricular ejection fraction", r"\blvef\b", r"ejection fraction"), decimals=0),
    L("inr", "INR", ("6301-6",), "1", (r"\binr\b", r"international normali[sz]ed ratio")),
    L("tsh", "TSH", ("3016-3",), "mIU/L", (r"\btsh\b", r"thyroid[- ]stimulating hormone"), decimals=2),
    L("crp", "C-reactive protein", ("1988-5",), "mg/L", (r"c[- ]reactive protein", r"\bcrp\b")),
    L("mmse", "MMSE total score", ("72106-8",), "1", (r"\bmmse\b", r"mini[- ]mental state examination"), decimals=0),
    L("ipss", "International Prostate Symptom Score", (), "1",
      (r"\bipss\b", r"international prostate symptom score", r"\baua[- ]?si\b"), decimals=0),
    L("qmax", "Maximum urinary flow rate", (), "mL/s", (r"\bq\s?max\b", r"(?:maximum|peak) (?:urinary )?flow rate"),
      decimals=1),
    L("pvr", "Post-void residual volume", (), "mL", (r"post[- ]?void residual(?: (?:urine )?volume)?", r"\bpvr\b"),
      decimals=0),
    L("prostate_volume", "Prostate volume", (), "mL", (r"prostate (?:volume|size)",), decimals=0),
    L("iief_ef", "IIEF erectile function domain score", (), "1",
      (r"iief[- ]?(?:ef|ed)?(?: domain)?(?: score)?", r"erectile function domain(?: score)?"), decimals=0),
)
ECOG = LabTerm("ecog", "ECOG performance status", ("89247-1",), "1",
               (r"ecog(?: performance status)?(?: score)?", r"eastern cooperative oncology group(?: performance status)?",
                r"(?:who |zubrod )?performance status"), decimals=0)
PREGNANCY_LOINC = "82810-3"  # Pregnancy status (FHIR pregnancy-status profile)

M = MedicationTerm
# Drug classes: named by their class words only; a criterion naming one drug matches that drug alone.
MEDICATION_CLASSES: tuple[MedicationTerm, ...] = (
    M("insulin", "Insulins", ("A10A",), (r"insulins?",)),
    M("oral_antidiabetics", "Blood glucose lowering drugs, excl. insulins", ("A10B",),
      (r"oral (?:hypoglyc(?:a)?emic|antidiabetic|anti-diabetic|glucose[- ]lowering) (?:agents?|drugs?|medications?)",)),
    M("glp1", "GLP-1 receptor agonists", ("A10BJ",), (r"glp-?1 (?:receptor )?agonists?", r"glp-?1 ras?")),
    M("sglt2", "SGLT2 inhibitors", ("A10BK",), (r"sglt-?2 inhibitors?",)),
    M("corticosteroids", "Systemic corticosteroids", ("H02",),
      (r"(?:systemic |oral )?corticosteroids?", r"(?:systemic |oral )?steroids?", r"glucocorticoids?")),
    M("anticoagulants", "Anticoagulants", ("B01AA", "B01AB", "B01AE", "B01AF"),
      (r"anti-?coagula(?:nts?|tion)(?: therapy)?", r"vitamin k antagonists?", r"\bdoacs?\b", r"\bnoacs?\b")),
    M("antiplatelets", "Platelet aggregation inhibitors", ("B01AC",), (r"anti-?platelets?(?: agents?| therapy| drugs?)?",)),
    M("five_ari", "5-alpha reductase inhibitors", ("G04CB",), (r"5-?(?:alpha|α|a)[- ]?reductase inhibitors?", r"5-?aris?")),
    M("alpha_blockers", "Alpha-adrenoreceptor antagonists", ("G04CA", "C02CA"),
      (r"alpha[- ]?(?:\[?1\]?[- ])?(?:adrenergic )?(?:blockers?|antagonists?)",)),
    M("pde5", "PDE5 inhibitors", ("G04BE03", "G04BE08", "G04BE09", "G04BE10"),
      (r"pde-? ?5 ?i(?:nhibitors?)?s?", r"phosphodiesterase(?: type)?[- ]5 \(?(?:pde-? ?5)?\)? ?inhibitors?")),
    M("antimuscarinics", "Urinary antispasmodics (antimuscarinics)", ("G04BD",),
      (r"anti-?muscarinics?", r"anticholinergics?")),
    M("beta3_agonists", "Beta-3 adrenergic agonists", ("G04BD12", "G04BD15"), (r"beta-?3 (?:adrenergic )?agonists?",)),
    M("antiandrogens", "Anti-androgens", ("L02BB",), (r"anti-?androgens?",)),
    M("adt", "Androgen deprivation therapy", ("L02AE", "L02BX02"),
      (r"androgen deprivation(?: therapy)?", r"\badt\b", r"gnrh (?:agonists?|antagonists?|analogues?)",
       r"lhrh (?:agonists?|antagonists?|analogues?)")),
    M("hormonal_therapy", "Endocrine therapy", ("L02",), (r"hormon(?:al|e) therapy", r"endocrine therapy")),
    M("androgens", "Androgens", ("G03B",), (r"androgens?", r"testosterone (?:replacement )?(?:therapy|supplementation)",
      r"\btrt\b")),
    M("nitrates", "Organic nitrates", ("C01DA",), (r"nitrates?", r"nitric oxide donors?")),
    M("chemotherapy", "Antineoplastic agents", ("L01",),
      (r"(?:cancer |cytotoxic )?chemotherapy", r"cytotoxic (?:therapy|agents?)", r"antineoplastic (?:therapy|agents?)")),
    M("immunosuppressants", "Immunosuppressants", ("L04",),
      (r"immunosuppressi(?:ve|on|ants?)(?: therapy| agents?| drugs?)?",)),
    M("tnf_inhibitors", "TNF-alpha inhibitors", ("L04AB",),
      (r"tnf-?(?:alpha|α)? (?:inhibitors?|blockers?|antagonists?)", r"anti-?tnf")),
    M("statins", "HMG CoA reductase inhibitors", ("C10AA",), (r"statins?",)),
    M("cyp3a4_inhibitors", "Strong CYP3A4 inhibitors", ("J02AB02", "J02AC02", "J02AC03", "J01FA09", "J05AE03"),
      (r"(?:strong |potent )?(?:cyp ?3a4?|cytochrome p450 3a4?) inhibitors?",)),
    M("antibiotics", "Antibacterials for systemic use", ("J01",), (r"(?:systemic )?antibiotics?", r"antibacterials?")),
    M("opioids", "Opioids", ("N02A",), (r"opioids?", r"opiates?")),
    M("antidepressants", "Antidepressants", ("N06A",), (r"antidepressants?",)),
    M("antipsychotics", "Antipsychotics", ("N05A",), (r"antipsychotics?", r"neuroleptics?")),
    M("hormonal_contraceptives", "Hormonal contraceptives for systemic use", ("G03A",),
      (r"hormonal contracepti(?:ves?|on)", r"oral contraceptives?")),
    M("nsaids", "NSAIDs", ("M01A",), (r"nsaids?", r"non[- ]steroidal anti[- ]inflammatory(?: drugs?)?")),
    M("beta_blockers", "Beta blocking agents", ("C07",), (r"beta[- ]?blockers?",)),
)
# Single drugs by generic (and a few brand) names, with their WHO ATC codes.
_DRUGS = (
    ("tadalafil", "G04BE08", ("cialis",)), ("sildenafil", "G04BE03", ("viagra",)),
    ("vardenafil", "G04BE09", ("levitra",)), ("avanafil", "G04BE10", ()),
    ("finasteride", "G04CB01", ("proscar", "propecia")), ("dutasteride", "G04CB02", ("avodart",)),
    ("tamsulosin", "G04CA02", ("flomax",)), ("alfuzosin", "G04CA01", ()), ("silodosin", "G04CA04", ()),
    ("terazosin", "G04CA03", ()), ("doxazosin", "C02CA04", ()), ("oxybutynin", "G04BD04", ()),
    ("tolterodine", "G04BD07", ()), ("solifenacin", "G04BD08", ()), ("darifenacin", "G04BD10", ()),
    ("trospium", "G04BD09", ()), ("fesoterodine", "G04BD11", ()), ("mirabegron", "G04BD12", ()),
    ("vibegron", "G04BD15", ()), ("bicalutamide", "L02BB03", ()), ("enzalutamide", "L02BB04", ()),
    ("apalutamide", "L02BB05", ()), ("darolutamide", "L02BB06", ()), ("flutamide", "L02BB01", ()),
    ("abiraterone", "L02BX03", ()), ("leuprorelin", "L02AE02", ("leuprolide",)), ("goserelin", "L02AE03", ()),
    ("triptorelin", "L02AE04", ()), ("degarelix", "L02BX02", ()), ("testosterone", "G03BA03", ()),
    ("nitroglycerin", "C01DA02", ("glyceryl trinitrate",)), ("isosorbide mononitrate", "C01DA14", ()),
    ("isosorbide dinitrate", "C01DA08", ()), ("warfarin", "B01AA03", ()), ("apixaban", "B01AF02", ()),
    ("rivaroxaban", "B01AF01", ()), ("dabigatran", "B01AE07", ()), ("edoxaban", "B01AF03", ()),
    ("heparin", "B01AB01", ()), ("enoxaparin", "B01AB05", ()), ("clopidogrel", "B01AC04", ()),
    ("ticagrelor", "B01AC24", ()), ("prasugrel", "B01AC22", ()), ("aspirin", "B01AC06", ("acetylsalicylic acid",)),
    ("metformin", "A10BA02", ()), ("semaglutide", "A10BJ06", ()), ("liraglutide", "A10BJ02", ()),
    ("dulaglutide", "A10BJ05", ()), ("exenatide", "A10BJ01", ()), ("empagliflozin", "A10BK03", ()),
    ("dapagliflozin", "A10BK01", ()), ("canagliflozin", "A10BK02", ()), ("prednisone", "H02AB07", ()),
    ("prednisolone", "H02AB06", ()), ("dexamethasone", "H02AB02", ()), ("methylprednisolone", "H02AB04", ()),
    ("hydrocortisone", "H02AB09", ()), ("methotrexate", "L04AX03", ()), ("ciclosporin", "L04AD01", ("cyclosporine",)),
    ("tacrolimus", "L04AD02", ()), ("azathioprine", "L04AX01", ()), ("mycophenolate", "L04AA06", ()),
    ("adalimumab", "L04AB04", ()), ("infliximab", "L04AB02", ()), ("etanercept", "L04AB01", ()),
    ("atorvastatin", "C10AA05", ()), ("rosuvastatin", "C10AA07", ()), ("simvastatin", "C10AA01", ()),
    ("ketoconazole", "J02AB02", ()), ("itraconazole", "J02AC02", ()), ("voriconazole", "J02AC03", ()),
    ("clarithromycin", "J01FA09", ()), ("ritonavir", "J05AE03", ()), ("morphine", "N02AA01", ()),
    ("oxycodone", "N02AA05", ()), ("ibuprofen", "M01AE01", ()), ("naproxen", "M01AE02", ()),
    ("diclofenac", "M01AB05", ()), ("onabotulinumtoxina", "M03AX01", ("botulinum toxin", "botox")),
)
DRUGS: tuple[MedicationTerm, ...] = tuple(
    M(name.replace(" ", "_"), name.capitalize(), (atc,), (re.escape(name) + r"(?: hcl| hydrochloride| citrate)?",)
      + tuple(re.escape(b) for b in brands))
    for name, atc, brands in _DRUGS
)
MEDICATIONS: tuple[MedicationTerm, ...] = MEDICATION_CLASSES + DRUGS


@dataclass(frozen=True)
class Lexicon:
    """One compiled pattern per vocabulary: the longest phrase wins where several overlap."""

    conditions: tuple[tuple[re.Pattern[str], ConditionTerm], ...]
    labs: tuple[tuple[re.Pattern[str], LabTerm], ...]
    medications: tuple[tuple[re.Pattern[str], MedicationTerm], ...]


def _compiled(terms, phrases) -> tuple:
    return tuple((re.compile(r"(?<![\w-])(?:" + "|".join(phrases(t)) + r")(?![\w])", re.IGNORECASE), t) for t in terms)


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    """The vocabularies as compiled patterns (built once per process)."""
    return Lexicon(_compiled(CONDITIONS, lambda t: t.phrases), _compiled(LABS + (ECOG,), lambda t: t.phrases),
                   _compiled(MEDICATIONS, lambda t: t.phrases))


def find_terms(text: str, entries: tuple) -> list[tuple[int, int, object]]:
    """Non-overlapping (start, end, term) occurrences in ``text``, longest match first, in text order."""
    found = []
    for pattern, term in entries:
        for match in pattern.finditer(text):
            found.append((match.start(), match.end(), term))
    found.sort(key=lambda f: (-(f[1] - f[0]), f[0]))
    chosen: list[tuple[int, int, object]] = []
    for start, end, term in found:
        if all(end <= s or start >= e for s, e, _ in chosen):
            chosen.append((start, end, term))
    return sorted(chosen, key=lambda f: f[0])


# Events dated by their onset: a problem list may keep "myocardial infarction" active for years after it.
ACUTE_EVENTS = frozenset({"myocardial_infarction", "stroke", "tia", "venous_thromboembolism", "acute_kidney_injury",
                          "unstable_angina", "pancreatitis", "influenza", "rsv", "uti"})
CONDITIONS_BY_KEY = {t.key: t for t in CONDITIONS}
LABS_BY_KEY = {t.key: t for t in LABS + (ECOG,)}
MEDICATIONS_BY_KEY = {t.key: t for t in MEDICATIONS}
LAB_BY_LOINC = {code: t for t in LABS + (ECOG,) for code in t.loinc}

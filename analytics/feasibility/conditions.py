"""Condition groups: registry condition text mapped to groups by one ordered table of patterns.

ClinicalTrials.gov conditions are free text ("Alzheimer Disease", "Dementia of Alzheimer Type",
"Overactive Bladder"), so benchmarks group them. The first group whose pattern matches any of a
trial's conditions (or, when the conditions say nothing, its title) wins; order matters
(``prostate cancer`` is Oncology before Urology matches ``prostat``). Trials no pattern matches are
"Other".
"""

from __future__ import annotations

import re

import pandas as pd

OTHER = "Other"
# group -> regular expression over lower-case condition text; first match wins.
CONDITION_GROUPS: tuple[tuple[str, str], ...] = (
    ("Oncology", r"cancer|carcinom|tumou?r|neoplas|lymphom|leuka?emi|myelom|melanom|sarcom|gliom|glioblastom|"
                 r"oncolog|metasta|malignan"),
    ("Neurology", r"alzheimer|dementia|parkinson|multiple sclerosis|migraine|headache|epilep|seizure|stroke|"
                  r"neuropath|cognitive|amyotrophic|huntington|neurodegenera|brain injur"),
    ("Mental health", r"depress|anxiety|schizophren|bipolar|psychia|psychos|autism|adhd|substance|alcohol|opioid|"
                      r"smoking|tobacco|insomnia|ptsd|mental|emotional distress|loneliness"),
    ("Cardiovascular", r"heart|cardi|hypertens|atrial|coronary|myocard|vascular|arrhythm|thrombo|hyperlipid|"
                       r"cholesterol|aneurysm"),
    ("Metabolic and endocrine", r"diabet|obes|overweight|nash|steatohepat|fatty liver|metabolic|thyroid|insulin|"
                                r"glyc"),
    ("Immunology and inflammation", r"rheumatoid|psoria|lupus|crohn|colitis|inflammatory bowel|dermatitis|eczema|"
                                    r"spondyl|sjogren|vasculitis|arthritis"),
    ("Infectious disease", r"\brsv\b|syncytial|hepatitis|influenza|\bhiv\b|covid|sars-cov|infect|sepsis|tubercul|"
                           r"malaria|pneumonia|vaccin"),
    ("Respiratory", r"asthma|copd|pulmonary|bronch|cystic fibrosis|respiratory|lung disease"),
    ("Urology and nephrology", r"prostat|bladder|urin|incontinen|kidney|renal|nephr|erectile|urolog|nocturia|"
                               r"urethr|ureter|enuresis"),
    ("Musculoskeletal and pain", r"osteoarthritis|osteopor|fracture|pain|musculoskeletal|sarcopenia|fibromyalgia|"
                                 r"\bback\b|knee|hip\b"),
    ("Ageing and frailty", r"aging|ageing|frail|elderly|older adult|falls?\b|geriatric|healthy aging"),
)
GROUP_NAMES: tuple[str, ...] = tuple(name for name, _ in CONDITION_GROUPS) + (OTHER,)
_COMPILED = tuple((name, re.compile(pattern)) for name, pattern in CONDITION_GROUPS)


def condition_group(conditions: str | None, title: str | None = None) -> str:
    """The group of one trial from its conditions (``|``-separated), else its title."""
    for text in (conditions, title):
        if not isinstance(text, str) or not text.strip():
            continue
        lowered = text.lower()
        for name, pattern in _COMPILED:
            if pattern.search(lowered):
                return name
    return OTHER


def condition_groups(conditions: pd.Series, titles: pd.Series) -> pd.Series:
    """:func:`condition_group` for every trial (the same index)."""
    return pd.Series([condition_group(c, t) for c, t in zip(conditions, titles)], index=conditions.index,
                     dtype="string")

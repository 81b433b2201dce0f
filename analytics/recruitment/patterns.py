"""The criteria parser's declarations: what each phrase means, as data the one engine runs.

:mod:`analytics.recruitment.parser` reads a criterion with these tables and nothing else: the
comparators and units as protocols spell them, age patterns, time windows, negation, the phrases
that make a criterion administrative (answered by the patient at screening) or a matter of judgement
(kept for a person), and the words a criterion may contain beyond its recognized terms and still
count as fully understood. Adding a phrase is adding a row here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NUMBER = r"(\d+(?:[.,]\d+)?)"
DAYS_PER = {"day": 1, "week": 7, "month": 30.4375, "year": 365.25}
WORD_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                "ten": 10, "twelve": 12, "eighteen": 18, "twenty": 20, "thirty": 30, "sixty": 60, "ninety": 90}

# Comparator phrases -> symbol, longest first (the engine builds one alternation from them).
COMPARATOR_WORDS: tuple[tuple[str, str], ...] = (
    (r"greater than or equal to", ">="), (r"more than or equal to", ">="), (r"higher than or equal to", ">="),
    (r"less than or equal to", "<="), (r"lower than or equal to", "<="), (r"equal to or (?:greater|more|higher) than", ">="),
    (r"equal to or (?:less|lower) than", "<="), (r">\s*/\s*=", ">="), (r"<\s*/\s*=", "<="), (r"≥|>=|=>", ">="),
    (r"≤|<=|=<", "<="), (r"of at least", ">="), (r"at least", ">="), (r"no (?:less|lower|fewer) than", ">="),
    (r"not (?:less|lower) than", ">="), (r"minimum(?: of)?", ">="), (r"no (?:more|greater|higher) than", "<="),
    (r"not (?:more|greater|higher) than", "<="), (r"not exceeding", "<="), (r"maximum(?: of)?", "<="),
    (r"up to", "<="), (r"at most", "<="), (r"greater than", ">"), (r"more than", ">"), (r"higher than", ">"),
    (r"above", ">"), (r"over", ">"), (r"exceeding", ">"), (r"in excess of", ">"), (r"less than", "<"),
    (r"lower than", "<"), (r"below", "<"), (r"under", "<"), (r"fewer than", "<"), (r">", ">"), (r"<", "<"),
)
# "11% or higher", "2.0 mg/dL or less" after the number.
TRAILING_COMPARATORS: tuple[tuple[str, str], ...] = (
    (r"or (?:higher|greater|more|above|over)", ">="), (r"or (?:lower|less|below|under|fewer)", "<="),
    (r"and (?:above|over|higher)", ">="), (r"and (?:below|under|lower)", "<="),
)

# Units as criteria write them (lower case) -> the spelling :mod:`analytics.recruitment.units` reads.
UNIT_WORDS: tuple[tuple[str, str], ...] = (
    (r"nanograms? per milliliter", "ng/mL"), (r"nanograms? per deciliter", "ng/dL"),
    (r"nanomoles? per liter", "nmol/L"), (r"micromoles? per liter", "umol/L"), (r"millimoles? per liter", "mmol/L"),
    (r"millimoles? per mole", "mmol/mol"), (r"milligrams? per deciliter", "mg/dL"), (r"grams? per deciliter", "g/dL"),
    (r"grams? per liter", "g/L"), (r"kilograms? per square met(?:er|re)", "kg/m2"),
    (r"milli(?:meter|liter|metre|litre)s? of mercury", "mmHg"), (r"milliliters? per minute(?: per 1\.73 ?m2)?", "mL/min"),
    (r"international units per liter", "U/L"), (r"units per liter", "U/L"), (r"beats per minute", "1/min"),
    (r"milliseconds?", "ms"), (r"percent", "%"),
    (r"ml/min(?:ute)?/1\.73 ?m(?:\^?2|²)", "mL/min/1.73 m2"), (r"ml/min(?:ute)? per 1\.73 ?m(?:\^?2|²)", "mL/min/1.73 m2"),
    (r"ml/min(?:ute)?", "mL/min"), (r"x ?10\^?9 ?/ ?l", "10^9/L"), (r"10\^?9 ?/ ?l", "10^9/L"), (r"x ?10\^?3 ?/ ?[uµμ]l", "10^3/uL"),
    (r"10\^?3 ?/ ?[uµμ]l", "10^3/uL"), (r"/ ?mm(?:\^?3|³)", "/mm3"), (r"cells ?/ ?mm(?:\^?3|³)", "/mm3"), (r"/ ?[uµμ]l", "/uL"),
    (r"mmol ?/ ?mol", "mmol/mol"), (r"mmol ?/ ?l", "mmol/L"), (r"[uµμ]mol ?/ ?l", "umol/L"), (r"nmol ?/ ?l", "nmol/L"),
    (r"pmol ?/ ?l", "pmol/L"), (r"mg ?/ ?dl", "mg/dL"), (r"mg ?/ ?l", "mg/L"), (r"g ?/ ?dl", "g/dL"), (r"g ?/ ?l", "g/L"),
    (r"ng ?/ ?ml", "ng/mL"), (r"ng ?/ ?dl", "ng/dL"), (r"pg ?/ ?ml", "pg/mL"), (r"[uµμ]g ?/ ?l", "ug/L"),
    (r"miu ?/ ?l", "mIU/L"), (r"m?iu ?/ ?ml", "mIU/mL"), (r"i?u ?/ ?l", "U/L"), (r"meq ?/ ?l", "mEq/L"),
    (r"kg ?/ ?m(?:\\?\^?2|²)", "kg/m2"), (r"mm ?hg", "mmHg"), (r"ml ?/ ?s(?:ec)?", "mL/s"), (r"msec", "ms"),
    (r"ms\b", "ms"), (r"bpm", "1/min"), (r"kg\b", "kg"), (r"lbs?\b", "lb"), (r"pounds?\b", "lb"), (r"ml\b", "mL"), (r"cc\b", "mL"), (r"%", "%"),
    (r"points?\b", "1"),
)
ULN_PHRASE = r"(?:x|×|times)\s*(?:the\s*)?(?:institutional\s*)?(?:uln|upper limits? of (?:the )?normal(?: range)?|upper normal limit)"


@dataclass(frozen=True)
class AgeSpec:
    """An age phrase: its pattern (groups: the values) and the comparator it means."""

    pattern: str
    comparator: str


_YEARS = r"\s*(?:years?|yrs?|y)(?:\s*(?:of age|old|of age or older))?"
AGE_SPECS: tuple[AgeSpec, ...] = (
    AgeSpec(r"(?:under|below|younger than|less than) the age of\s*" + NUMBER, "<"),
    AgeSpec(r"(?:over|above|older than|more than) the age of\s*" + NUMBER, ">"),
    AgeSpec(r"(?:at or )?above the age of\s*" + NUMBER + r"\s*(?:years?)?\s*(?:or|and) (?:older|above|over)", ">="),
    AgeSpec(r"between\s*(?:the ages of\s*)?" + NUMBER + r"\s*(?:years?\s*)?(?:and|-|to)\s*" + NUMBER + _YEARS, "between"),
    AgeSpec(r"(?:aged?|ages)\s*(?:of\s*)?(?:from\s*)?" + NUMBER + r"\s*(?:years?\s*)?(?:-|to|through|~)\s*" + NUMBER, "between"),
    AgeSpec(NUMBER + r"\s*(?:-|to|~)\s*" + NUMBER + _YEARS, "between"),
    AgeSpec(r"(?:aged?\s*|age:?\s*)?(?:>=|≥|at least|minimum(?: age)? of|no (?:less|younger) than)\s*" + NUMBER + r"(?:" + _YEARS
            + r")?(?=\W|$)", ">="),
    AgeSpec(NUMBER + _YEARS + r"\s*(?:or|and)\s*(?:older|above|over|more|greater)", ">="),
    AgeSpec(r"aged?\s*" + NUMBER + r"\s*(?:\+|or older|or over|or above|and older|and over|and above)", ">="),
    AgeSpec(r"(?:aged?\s*|age:?\s*)?(?:>|older than|over|above|more than|greater than)\s*" + NUMBER + r"(?:" + _YEARS
            + r")?(?=\W|$)", ">"),
    AgeSpec(r"(?:aged?\s*|age:?\s*)?(?:<=|≤|no (?:more|older) than|up to|maximum(?: age)? of|at most)\s*" + NUMBER + r"(?:"
            + _YEARS + r")?(?=\W|$)", "<="),
    AgeSpec(NUMBER + _YEARS + r"\s*(?:or|and)\s*(?:younger|under|below|less)", "<="),
    AgeSpec(r"(?:aged?\s*|age:?\s*)?(?:<|younger than|under|less than|below)\s*" + NUMBER + r"(?:" + _YEARS
            + r")?(?=\W|$)", "<"),
)
AGE_CONTEXT = re.compile(r"\b(?:age[ds]?|years?|yrs?|old|adults?|older)\b", re.IGNORECASE)

# "within 6 months", "in the past 12 months", "during the last 2 weeks", "30 days prior to screening".
_UNIT = r"(days?|weeks?|wks?|months?|mos?|years?|yrs?)"
_AMOUNT = r"(\d+|" + "|".join(WORD_NUMBERS) + r")(?:\s*\(\d+\))?"
WINDOW_PATTERNS: tuple[str, ...] = (
    r"within\s*(?:the\s*)?(?:last|past|previous|preceding|prior)?\s*" + _AMOUNT + r"\s*" + _UNIT,
    r"(?:in|during|over)\s*the\s*(?:last|past|previous|preceding|prior)\s*" + _AMOUNT + r"\s*" + _UNIT,
    r"(?:in|during)\s*the\s*" + _AMOUNT + r"\s*" + _UNIT + r"\s*(?:before|prior to|preceding)",
    r"" + _AMOUNT + r"\s*" + _UNIT + r"\s*(?:before|prior to|preceding)\s*(?:screening|baseline|enrol?lment|randomi[sz]ation|"
    r"(?:the\s*)?(?:first|initial)\s*(?:dose|visit)|study entry|entry|day 1|visit 1|inclusion)",
    r"(?:last|past)\s*" + _AMOUNT + r"\s*" + _UNIT,
)
# "for at least 6 months", "of at least 3 months duration", "diagnosed >= 1 year before screening".
DURATION_PATTERNS: tuple[str, ...] = (
    r"(?:for|of)\s*(?:at least|a minimum of|more than|>=|>|≥|over)\s*" + _AMOUNT + r"\s*" + _UNIT,
    r"(?:at least|a minimum of|>=|≥)\s*" + _AMOUNT + r"\s*" + _UNIT + r"\s*(?:duration|before|prior)",
    r"" + _AMOUNT + r"\s*" + _UNIT + r"\s*(?:or longer|or more)",
    r"(?:at least|more than|over|>=|>)\s*" + _AMOUNT + r"\s*" + _UNIT + r"\s*ago",
)

NEGATION = re.compile(
    r"^(?:no|not|never|without|absence of|free of|must not (?:have|be)|does not have|do not have|has not|have not|"
    r"not have|have never|has never|no known|no history of|no evidence of|no prior|no previous|no current)\b",
    re.IGNORECASE)
CURRENT = re.compile(r"\b(?:current(?:ly)?|concomitant(?:ly)?|ongoing|active|receiving|on treatment with|taking|"
                     r"treated with|being treated|use of|using|uses|on (?=\w+ therapy)|present(?:ly)?|existing|"
                     r"continuing)\b", re.IGNORECASE)
EVER = re.compile(r"\b(?:history of|prior|previous(?:ly)?|past|ever|known|previous treatment|received|have taken|"
                  r"had|exposure)\b", re.IGNORECASE)
EXCEPT = re.compile(r"\b(?:except(?: for)?|other than|with the exception of|excluding|apart from|unless)\b",
                    re.IGNORECASE)

# A criterion answered by the patient or the team at screening, never from records.
ADMINISTRATIVE = re.compile(
    r"\b(?:informed consent|consent form|sign(?:ed)? (?:the )?(?:informed )?consent|willing(?:ness)?|able and willing|"
    r"agree(?:s|d)? to|agreement to|able to (?:read|understand|comply|follow|complete|attend|swallow|provide)|"
    r"comply with|compliance with|available for|availability|study (?:procedures|visits|schedule|requirements)|"
    r"(?:another|other|any other|concurrent) (?:clinical )?(?:trial|study|research)|clinical trials?|"
    r"investigational (?:drug|agent|product|device|medication|therapy)s?|partner|sexual (?:attempts|intercourse attempts)|"
    r"questionnaires?|diary|language|literate|read and write|mobile phone|smartphone|internet|travel|"
    r"reside|residence|live within|employee|relative of|vulnerable|legal(?:ly)? (?:guardian|representative)|"
    r"prisoners?|incarcerated|refuse[sd]?|unable to (?:give|provide) consent)\b",
    re.IGNORECASE)
# A criterion that needs a person's judgement: these win over "administrative".
JUDGEMENT = re.compile(
    r"\b(?:opinion|judge?ment|judged|deemed|considered|at the discretion|investigator(?:'s)? (?:assessment|discretion)|"
    r"as (?:determined|assessed|judged|evaluated) by|clinically (?:significant|relevant|important|meaningful)|"
    r"significant(?:ly)?|serious(?:ly)?|severe|uncontrolled|poorly controlled|unstable|adequate(?:ly)?|sufficient|"
    r"suspected|suspicion|life expectancy|contraindications?|hypersensitivity|allerg(?:y|ic|ies)|intolerance|"
    r"defined (?:as|by)|according to|per (?:the )?protocol|stable|interfere|compromise|jeopardi[sz]e)\b",
    re.IGNORECASE)
# Vague wording: a record criterion with these is kept for a person; an administrative one stays administrative.
VAGUE = re.compile(
    r"\b(?:appropriate|suitable|likely|may(?! not\b)|might|could|would|such as|e\.g\.|for example|including but not limited|"
    r"including|etc\.?|certain|other (?:diseases?|conditions?|disorders?|illness)|"
    r"any (?:condition|disease|disorder|"
    r"illness|medical|other)|plan(?:ned|s)? to|scheduled|expected|anticipated?)\b",
    re.IGNORECASE)
# "Other malignancy", "second primary cancer": relative to the study's own disease, which records cannot tell apart.
OTHER_THAN_STUDIED = re.compile(r"\b(?:other|another|second|additional)\s+(?:active\s+|prior\s+|primary\s+|invasive\s+)*"
                                r"(?:malignan\w*|cancers?|tumou?rs?|neoplasms?|primary)\b", re.IGNORECASE)
PARTNER = re.compile(r"\bpartners?\b", re.IGNORECASE)
# Plain-language lead-ins that add nothing to an exclusion ("You may not participate in this study if you have ...").
LEAD_IN = re.compile(r"\b(?:you\s+)?(?:may|can|will|should)\s+not\s+(?:participate|take part|enrol+|enter|be (?:enrol+ed|included))"
                     r"\s+in\s+(?:the|this)\s+(?:study|trial)\s+if\b", re.IGNORECASE)
# "tadalafil or any other PDE5 inhibitor": the class that follows includes the named drug.
ANY_OTHER = re.compile(r"\b(?:or|and|nor)\s+(?:any\s+)?other\s+", re.IGNORECASE)
# An abbreviation in brackets right after a term: "erectile dysfunction (ED)".
ABBREVIATION = re.compile(r"\s*\((?-i:[A-Z][A-Za-z0-9-]{1,9})\)")

PREGNANCY = re.compile(r"\b(?:pregnan(?:t|cy|cies)|positive pregnancy test|expecting a baby)\b", re.IGNORECASE)
BREASTFEEDING = re.compile(r"\b(?:breast[- ]?feeding|lactating|lactation|nursing)\b", re.IGNORECASE)
CONTRACEPTION = re.compile(r"\b(?:contracepti(?:on|ve|ves)|birth control|abstinence|sterili[sz]ed)\b", re.IGNORECASE)
MALE = re.compile(r"\b(?:males?|men|man|boys?)\b", re.IGNORECASE)
FEMALE = re.compile(r"\b(?:females?|women|woman|girls?)\b", re.IGNORECASE)
BOTH_SEXES = re.compile(r"\b(?:males?|men) (?:and|or|&|/) (?:females?|women)\b|\b(?:females?|women) (?:and|or|&|/) "
                        r"(?:males?|men)\b|\bboth sexes\b|\beither sex\b|\bany sex\b", re.IGNORECASE)

# Words a criterion may contain beyond its recognized terms and still count as fully understood.
FILLER_WORDS = frozenset("""
a an the of in on at to for from by with without and or nor not no any all either both as is are be been being was
were has have had having who whom whose which that this these those their his her its there than then also only
patient patients subject subjects participant participants person persons individual individuals people adult adults
man men male males woman women female females aged age ages year years old yrs older younger
history histories known documented diagnosed diagnosis diagnoses confirmed evidence presence present prior previous
previously past current currently active ongoing existing recent recently new newly treatment treatments treated
therapy therapies use used using uses usage receive receives received receiving taking take taken intake
medication medications drug drugs agent agents concomitant concomitantly chronic acute level levels value values
result results count serum plasma blood total measured measurement test tests laboratory lab labs screening
baseline visit enrollment enrolment entry randomization randomisation study day days week weeks month months
within during last preceding before after since prior following ever never time times duration least minimum
maximum more less greater lower higher than equal above below under over up must should will shall can may
exclusion inclusion criteria criterion ie i.e eg following one two three four six twelve dose doses regimen
per mg g ml l kg dl mmol umol nmol ng pg u iu mmhg ms x uln upper limit limits normal range institutional times
condition disease disorder type stage grade status score scale index other documented clinical clinically
infection infections inclusive
histologically cytologically pathologically histopathologically radiologically castrate
you your exhibit exhibits established continuing
""".split())
WORD = re.compile(r"[a-z][a-z'-]*")

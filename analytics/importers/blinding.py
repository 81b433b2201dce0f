"""What in SDTM reveals treatment, so a load keeps it in the ``restricted`` schema and out of blinded reports.

Arm-revealing content: the exposure domains (EX, EC) and the trial arms (TA), their supplemental
qualifiers, DM's arm variables and qualifiers named like them (SUPPDM ``ARMCD``, ``TRT01P`` ...).
Such content is only ever written to tables in the ``restricted`` schema, and a validation report
produced for a blinded loader hides every value found in it (see
:meth:`analytics.importers.report.ImportReport.redact`).
"""

from __future__ import annotations

import pandas as pd

from analytics.importers.sdtm_datasets import Domain

ARM_REVEALING_DOMAINS = frozenset({"EX", "EC", "TA"})
ARM_VARIABLES = frozenset({"ARM", "ARMCD", "ACTARM", "ACTARMCD", "ARMNRS", "ACTARMUD"})
# Qualifier names that carry a treatment: arm variables and ADaM-style treatment variables.
ARM_QUALIFIER_PATTERN = r"^(?:ACT)?ARM(?:CD|NRS|UD)?$|^TRT\d\d[PA]N?$|^TRTSEQ[PA]N?$"


def arm_revealing_files(domains: dict[str, Domain]) -> set[str]:
    """Files whose content reveals treatment: EX, EC, TA and their SUPP-- datasets (every split part)."""
    files: set[str] = set()
    for code, domain in domains.items():
        parents = {code}
        if domain.kind == "supp":  # SUPPEX, or a combined SUPPQUAL whose RDOMAIN includes EX
            parents = {code[4:]}
            if "RDOMAIN" in domain.frame.columns:
                parents |= set(domain.frame["RDOMAIN"].dropna().astype(str).str.strip().str.upper())
        if parents & ARM_REVEALING_DOMAINS:
            files |= set(domain.files())
    return files


def arm_revealing_qualifiers(parent_domain: pd.Series, qualifier: pd.Series) -> pd.Series:
    """True for qualifier rows that reveal treatment (their parent domain or their name)."""
    by_domain = parent_domain.astype("string").str.upper().isin(list(ARM_REVEALING_DOMAINS)).fillna(False)
    by_name = qualifier.astype("string").str.upper().str.match(ARM_QUALIFIER_PATTERN).fillna(False)
    return (by_domain | by_name).astype(bool)

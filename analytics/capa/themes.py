"""Recurring themes in the free text of a study's quality events and CAPAs, and possible recurrences.

The text of an event is its description plus the descriptions of the CAPAs opened for it, without
the words that say how an issue was found or routed rather than what it was (:data:`ROUTING_WORDS`:
"noted during IMV", "escalated to QA", "root cause"). It is turned into TF-IDF features twice, over words (unigrams and bigrams, English stop words removed) and
over character 3-5-grams within words (so "trainig" still resembles "training"), reduced with a
truncated SVD (fixed seed) and normalized, then clustered by average-linkage agglomeration on cosine
distance, cut at :data:`DISTANCE_THRESHOLD`; the number of themes follows from the text. (k-means with
the number of themes chosen by silhouette split each theme into its paraphrases: on six labelled
themes it found 17-20.) The same events always give the same themes. A theme is named by the
words with the highest mean TF-IDF weight in it.

A **possible recurrence** is an event that repeats an earlier event of the same site within
:data:`RECURRENCE_WINDOW_DAYS`: same theme and text similarity at least
:data:`THEME_REPEAT_SIMILARITY`, or, whatever the theme, a near-duplicate text (similarity at least
:data:`DUPLICATE_SIMILARITY`). It is a possible failure of the earlier event's CAPA. The thresholds
were chosen on the calibration seeds of ``python -m analytics eval capa --calibrate``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.cluster import AgglomerativeClustering
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.preprocessing import normalize

SEED = 20260101
SVD_COMPONENTS = 20
DISTANCE_THRESHOLD = 0.6  # cosine distance (average linkage) beyond which events belong to different themes
# Words of QMS free text that say where an issue was found or how it was routed, not what it was.
ROUTING_WORDS = frozenset({
    "cra", "imv", "noted", "report", "qa", "audit", "finding", "escalated", "pi", "informed", "sponsor",
    "escalation", "sdv", "observed", "remote", "review", "self", "reported", "follow", "corrective", "action",
    "requested", "impact", "safety", "assessed", "monitoring", "root", "cause", "rca", "issue", "subject", "being",
    "see", "site", "per",
})
MIN_EVENTS = 6  # fewer events than this are not clustered (one theme)
RECURRENCE_WINDOW_DAYS = 365
THEME_REPEAT_SIMILARITY = 0.2
DUPLICATE_SIMILARITY = 0.75
NAME_TERMS = 3
TOP_TERMS = 6


@dataclass(frozen=True)
class ThemeModel:
    """Themes of one set of events: a theme per event, its name and terms, and the event vectors."""

    labels: np.ndarray  # theme id per event, 0 = the largest theme
    vectors: np.ndarray  # unit-length reduced vectors per event
    names: list[str]
    terms: list[list[str]]
    similarity_to_theme: np.ndarray


STOP_WORDS = sorted(ENGLISH_STOP_WORDS | ROUTING_WORDS)


def _content(text: str) -> str:
    """``text`` without routing words (also inside character n-grams, hence removed before both vectorizers)."""
    return " ".join(w for w in text.split() if w.lower().strip(".,;:-()") not in ROUTING_WORDS)


def _word_vectorizer() -> TfidfVectorizer:
    return TfidfVectorizer(stop_words=STOP_WORDS, ngram_range=(1, 2), token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b",
                           sublinear_tf=True, min_df=1)


def _features(texts: list[str]) -> tuple[sparse.csr_matrix, TfidfVectorizer, sparse.csr_matrix]:
    texts = [_content(t) for t in texts]
    words = _word_vectorizer()
    word_matrix = words.fit_transform(texts)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=2, lowercase=True,
                            preprocessor=lambda t: "".join(c if c.isalpha() or c.isspace() else " " for c in t.lower()))
    try:
        char_matrix = chars.fit_transform(texts)
    except ValueError:  # too few texts for min_df: words only
        char_matrix = sparse.csr_matrix((len(texts), 0))
    combined = sparse.hstack([normalize(word_matrix), normalize(char_matrix)]).tocsr() if char_matrix.shape[1] \
        else normalize(word_matrix)
    return combined, words, word_matrix


def _reduce(matrix: sparse.csr_matrix) -> np.ndarray:
    components = min(SVD_COMPONENTS, matrix.shape[0] - 1, matrix.shape[1] - 1)
    if components < 2:
        return normalize(matrix.toarray())
    reduced = TruncatedSVD(n_components=components, random_state=SEED).fit_transform(matrix)
    return normalize(reduced)


def _cluster(vectors: np.ndarray) -> np.ndarray:
    """Average-linkage clusters of the reduced vectors, cut where themes are further apart than
    :data:`DISTANCE_THRESHOLD` in cosine distance (so the number of themes follows the text)."""
    return AgglomerativeClustering(n_clusters=None, distance_threshold=DISTANCE_THRESHOLD, metric="cosine",
                                   linkage="average").fit_predict(vectors)


def fit_themes(texts: list[str]) -> ThemeModel:
    """Cluster ``texts`` into themes (deterministic for the same texts in the same order)."""
    n = len(texts)
    if n == 0:
        return ThemeModel(np.zeros(0, dtype="int64"), np.zeros((0, 0)), [], [], np.zeros(0))
    matrix, words, word_matrix = _features(texts)
    vectors = _reduce(matrix)
    labels = np.zeros(n, dtype="int64") if n < MIN_EVENTS else _cluster(vectors)
    # Theme 0 is the largest; ties by first appearance, so numbering does not depend on the clustering's.
    order = sorted(set(labels), key=lambda c: (-(labels == c).sum(), int(np.argmax(labels == c))))
    renumber = {old: new for new, old in enumerate(order)}
    labels = np.array([renumber[c] for c in labels], dtype="int64")
    vocabulary = np.array(words.get_feature_names_out())
    names, terms = [], []
    centres = np.zeros((len(order), vectors.shape[1]))
    for theme in range(len(order)):
        members = labels == theme
        weights = np.asarray(word_matrix[members].mean(axis=0)).ravel()
        top = [str(t) for t in vocabulary[np.argsort(-weights)[:TOP_TERMS]]]
        terms.append(top)
        names.append(" / ".join(_distinct_terms(top)[:NAME_TERMS]))
        centres[theme] = vectors[members].mean(axis=0)
    centres = normalize(centres)
    similarity = np.einsum("ij,ij->i", vectors, centres[labels]) if len(order) else np.zeros(n)
    return ThemeModel(labels, vectors, names, terms, np.clip(similarity, 0.0, 1.0))


def _distinct_terms(terms: list[str]) -> list[str]:
    """Terms without those contained in an earlier, longer one ("consent" after "consent version")."""
    kept: list[str] = []
    for term in terms:
        if not any(term in other.split() or other in term.split() for other in kept):
            kept.append(term)
    return kept


def find_recurrences(events: pd.DataFrame, model: ThemeModel) -> pd.DataFrame:
    """For each event, the earlier event of its site it most resembles within the window, and the flag.

    ``events`` has ``quality_event_id``, ``study_site_id`` and ``reported_date`` in the order the
    model was fitted. Returns ``repeats_event_id``, ``repeat_similarity``, ``repeat_days`` and
    ``possible_recurrence`` per event (same index as ``events``).
    """
    n = len(events)
    out = pd.DataFrame({"repeats_event_id": pd.array([pd.NA] * n, dtype="Int64"),
                        "repeat_similarity": np.full(n, np.nan), "repeat_days": pd.array([pd.NA] * n, dtype="Int64"),
                        "possible_recurrence": np.zeros(n, dtype=bool)}, index=events.index)
    if n < 2:
        return out
    days = pd.to_datetime(events["reported_date"]).to_numpy().astype("datetime64[D]").astype("int64")
    ids = events["quality_event_id"].to_numpy()
    sites = events["study_site_id"].astype("object").to_numpy()
    for site in pd.unique(sites[pd.notna(sites)]):
        members = np.flatnonzero(sites == site)
        if len(members) < 2:
            continue
        order = members[np.lexsort((ids[members], days[members]))]
        sims = model.vectors[order] @ model.vectors[order].T
        for j in range(1, len(order)):
            earlier = np.arange(j)
            gap = days[order[j]] - days[order[earlier]]
            window = earlier[gap <= RECURRENCE_WINDOW_DAYS]
            if not len(window):
                continue
            same_theme = model.labels[order[window]] == model.labels[order[j]]
            score = sims[j, window]
            eligible = (same_theme & (score >= THEME_REPEAT_SIMILARITY)) | (score >= DUPLICATE_SIMILARITY)
            pool = window[eligible] if eligible.any() else window
            best = pool[np.argmax(sims[j, pool])]
            row = events.index[order[j]]
            out.at[row, "repeats_event_id"] = int(ids[order[best]])
            out.at[row, "repeat_similarity"] = float(np.clip(sims[j, best], 0.0, 1.0))
            out.at[row, "repeat_days"] = int(days[order[j]] - days[order[best]])
            out.at[row, "possible_recurrence"] = bool(eligible.any())
    return out


def event_texts(events: pd.DataFrame, capas: pd.DataFrame) -> list[str]:
    """Each event's description followed by its CAPAs' descriptions (in ``events`` order)."""
    capa_text = (capas.dropna(subset=["quality_event_id"]).groupby("quality_event_id")["description"]
                 .apply(lambda d: " ".join(str(x) for x in d if isinstance(x, str))))
    return [f"{desc if isinstance(desc, str) else ''} {capa_text.get(qe, '')}".strip()
            for qe, desc in zip(events["quality_event_id"], events["description"])]

"""Column roles inferred from names and values (input, categorical, time, label, id, ignore),
with the reason for each; the notes and summary the Data page shows; the checks made before
training; times parsed and put in order.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from aecore.errors import AecoreError
from aecore.io.labelling import column_kind, format_value
from aecore.io.roles import ROLE_NAMES, ColumnRoles
from aecore.model.preprocessing import MAX_CATEGORIES as ENCODED_CATEGORIES
from aecore.model.preprocessing import SENTINEL_SPREADS, usable_range

MIN_TRAIN_ROWS = 30
SAMPLE_ROWS = 20_000
# A text column with more distinct values than this is ignored (with the reason); up to it, it
# is a categorical input whose ENCODED_CATEGORIES most frequent values get their own column.
MAX_CATEGORIES = 500
# A numeric column named like a label is the label when it holds at most this many whole numbers.
MAX_NUMERIC_LABEL_VALUES = 50
TIMESTAMP_SHARE = 0.95
# Label inference (see _label_evidence). Names are compared after _name_tokens: lower case,
# camelCase and separators split into "_"-joined tokens ("isFraud" -> "is_fraud").
_LABEL_NAMES = {
    "label", "labels", "class", "target", "y", "y_true", "ground_truth", "truth",
    "attack", "attacks", "attack_type", "attack_cat", "attack_class", "anomaly", "anomalies",
    "is_anomaly", "anomalous", "outlier", "is_outlier", "fraud", "is_fraud", "fraudulent",
    "malicious", "is_malicious", "intrusion",
}  # fmt: skip
# The usual names of a label column: preferred when several columns look like labels.
_CANONICAL_LABEL_NAMES = {"label", "labels", "class", "target", "y", "y_true", "ground_truth"}
# A token anywhere in the name ("attack_name", "class_label"): a label when it holds text, or
# a yes/no flag; a number named so ("n_attacks") can be a count, so it needs 0/1 values.
_LABEL_TOKENS = {
    "label", "labels", "attack", "attacks", "anomaly", "anomalies", "anomalous", "outlier",
    "outliers", "fraud", "fraudulent", "malicious", "intrusion", "groundtruth",
}  # fmt: skip
# is_/has_ + one of these ("is_failure", "has_malware") names a flag that marks anomalies.
_ANOMALY_FLAG_WORDS = _LABEL_TOKENS | {
    "abnormal", "failure", "failed", "fault", "faulty", "defect", "defective", "bad", "spam",
    "malware", "threat", "compromised", "incident", "alarm", "suspicious", "bot", "attacked",
}  # fmt: skip
# Weak names: a label only if the values look like one too (0/1, normal/attack words, or one
# dominant value among a few dozen).
_WEAK_LABEL_NAMES = {"outcome", "verdict", "result", "diagnosis"}
_FLAG_PREFIXES = ("is", "has", "was")
# Cell values that mark a column as a label on their own (no name needed).
_LABEL_NORMAL_VALUES = {"normal", "benign", "legit", "legitimate", "nominal"}
_LABEL_ANOMALY_VALUES = {
    "attack", "anomaly", "anomalous", "abnormal", "malicious", "fraud", "fraudulent", "outlier",
    "intrusion", "malware",
}  # fmt: skip
_BINARY_TEXT = ({"true", "false"}, {"yes", "no"}, {"y", "n"}, {"t", "f"})
DOMINANT_SHARE = 0.5  # "one dominant value": the most frequent holds at least half the rows
DOMINANT_MAX_VALUES = 50
_TIME_NAMES = {"time", "timestamp", "date", "datetime", "ts", "date_time"}
_TIME_SUFFIXES = ("_time", "_at", "_date", "_timestamp", "_datetime", "_ts")
_ID_NAMES = {"id", "index", "idx", "uuid", "guid", "row", "rownum", "row_number", "record_id"}
_DATE_FORMATS = (
    "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y",
    "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y",
    "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y",
    "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d",
    "%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M", "%d-%m-%Y",
    "%d %b %Y %H:%M:%S", "%d %b %Y", "%b %d %Y", "%d/%b/%Y:%H:%M:%S",
)  # fmt: skip
_SUMMARY_COLUMNS = [
    "column", "role", "dtype", "missing", "missing_share", "distinct",
    "min", "max", "mean", "std", "example", "note",
]  # fmt: skip


def infer_roles(
    frame: pd.DataFrame, *, overrides: dict[str, str] | None = None
) -> ColumnRoles:
    """Guess each column's role (feature, categorical, time, label, id, ignore); overrides win.

    The label is the column with the strongest label evidence (see ``_label_evidence``): a
    label name beats a weak name, which beats label-like values alone; ties go to the first
    column. Any other column that looks like a label is ignored (it could give the answer
    away); the analyst can still make it an input, and ``label_like_inputs`` then names it.
    """
    _check_unique_columns(frame)
    overrides = _checked_overrides(frame, overrides)
    sample = _sample(frame)
    mapping: dict[str, str] = {}
    time_column = next((c for c, role in overrides.items() if role == "time"), None)
    label_column = next((c for c, role in overrides.items() if role == "label"), None)
    evidence = {
        column: _label_evidence(column, frame[column])
        for column in frame.columns
        if column not in overrides
    }
    if label_column is None:
        candidates = [(found.rank, column) for column, found in evidence.items() if found]
        if candidates:
            best = max(rank for rank, _ in candidates)
            label_column = next(column for rank, column in candidates if rank == best)
    for column in frame.columns:
        if column in overrides:
            mapping[column] = overrides[column]
            continue
        role, _ = _infer_column(
            column,
            frame[column],
            sample[column],
            time_column,
            label_column is not None and label_column != column,
            evidence=evidence[column],
        )
        if role == "time":
            time_column = column
        mapping[column] = role
    return ColumnRoles.from_mapping(mapping)


def role_notes(frame: pd.DataFrame, roles: ColumnRoles) -> dict[str, str]:
    """A short reason per column for its role, and what will happen to its missing values.

    A model input that looks like a label says so (see ``label_like_inputs``).
    """
    _check_unique_columns(frame)
    sample = _sample(frame)
    notes = {}
    for column in frame.columns:
        series = frame[column]
        role = roles.role_of(column)
        other_time = roles.time if roles.time != column else None
        label_taken = roles.label is not None and roles.label != column
        evidence = _label_evidence(column, series)
        inferred, reason = _infer_column(
            column, series, sample[column], other_time, label_taken, evidence=evidence
        )
        if inferred != role:
            reason = _chosen_reason(role, series)
        missing = int(series.isna().sum())
        if role in ("feature", "categorical") and 0 < missing < len(series):
            share = _percent(missing / len(series))
            how = " with the median" if role == "feature" else ""
            reason = f"{reason}; {share} missing: will be imputed{how}"
        if role == "feature":
            reason += _sentinel_note(series) + _out_of_range_note(series)
        if role in ("feature", "categorical") and evidence is not None:
            reason = f"{reason}. Warning: {_label_warning(evidence)}"
        notes[column] = reason
    return notes


_SENTINEL_CODES = (-999_999, -99_999, -9_999, -999, -99, 999, 9_999, 99_999, 999_999)


def _sentinel_note(series: pd.Series) -> str:
    """A note when a numeric column holds a code such as -999 or 9999 that looks like "missing":
    on at least 0.5% of rows, outside the range of every other value, and either of the other
    sign or further from them than their interquartile range."""
    if column_kind(series) != "numeric":
        return ""
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    values = values[~np.isnan(values)]
    if len(values) < 20:
        return ""
    extremes = {float(values.min()), float(values.max())}  # a code lies outside the rest
    for code in (code for code in _SENTINEL_CODES if code in extremes):
        hits = values == code
        share = float(hits.mean())
        if share < 0.005 or share > 0.5:
            continue
        rest = values[~hits]
        low, high = float(rest.min()), float(rest.max())
        if low <= code <= high:
            continue
        q1, q3 = np.percentile(rest, [25, 75])
        gap = low - code if code < low else code - high
        other_sign = (code < 0 <= low) or (code > 0 >= high)
        if other_sign or gap > max(q3 - q1, 1e-12):
            return (
                f"; {code} on {_percent(share)} of rows looks like a code for a missing value: "
                "as a number it distorts the scaling (empty those cells to have them imputed)"
            )
    return ""


def _out_of_range_note(series: pd.Series) -> str:
    """A note when a numeric input holds infinite cells or values far out of range (3.4e38
    among ordinary numbers), by the rule training applies (``preprocessing.usable_range``):
    treated as missing and imputed in the training rows, the column refused when they are most
    of it."""
    if column_kind(series) != "numeric":
        return ""
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    present = ~np.isnan(values)
    infinite = np.isinf(values)
    finite = values[present & ~infinite]
    # Every finite value lies within SENTINEL_SPREADS of the median when their span is smaller.
    if not infinite.any() and (not finite.size or np.ptp(finite) <= SENTINEL_SPREADS):
        return ""
    low, high = usable_range(values)
    far = present & ~infinite & ~((values >= low) & (values <= high))
    n_infinite, n_far = int(infinite.sum()), int(far.sum())
    if n_infinite + n_far == 0:
        return ""
    parts = [f"{n_infinite:,} infinite"] if n_infinite else []
    if n_far:
        parts.append(f"{n_far:,} far out of range")
    what = " and ".join(parts) + " value(s)" + (f" (e.g. {values[far][0]:.4g})" if n_far else "")
    if 2 * (n_infinite + n_far) > int(present.sum()):
        return f"; {what}, most of the column: training refuses it (fix them or ignore it)"
    return (
        f"; {what}: treated as missing and imputed with the median in training, flagged "
        "when scored"
    )


def label_like_inputs(frame: pd.DataFrame, roles: ColumnRoles) -> dict[str, str]:
    """``{column: why it looks like a label}`` for every model input that looks like a label.

    Such an input can give the answer away: the model learns the label instead of normal
    behaviour, and its scores and metrics look better or worse than they are. Pages show these
    as a warning; nothing is changed here.
    """
    found = {}
    for column in roles.inputs:
        if column not in frame.columns:
            continue
        evidence = _label_evidence(column, frame[column])
        if evidence is not None:
            found[column] = evidence.why
    return found


def label_like_message(found: dict[str, str]) -> str | None:
    """One warning (Markdown) naming the inputs of ``label_like_inputs``; ``None`` if none."""
    if not found:
        return None
    named = ", ".join(f"**{column}** ({why})" for column, why in found.items())
    verb = "looks like a label but is" if len(found) == 1 else "look like labels but are"
    return (
        f"{named} {verb} a model input: the model can learn the answer from it, so its scores "
        "and metrics would mislead. Make it the label, or ignore it, unless it is a real "
        "measurement."
    )


def _label_warning(evidence: _LabelEvidence) -> str:
    return (
        f"this looks like a label ({evidence.why}); as a model input it can give the answer "
        "away. Make it the label, or ignore it, unless you are sure it is a real measurement."
    )


def _chosen_reason(role: str, series: pd.Series) -> str:
    reasons = {
        "feature": "marked as a numeric feature",
        "categorical": "marked as categorical: one-hot encoded",
        "time": "marked as the time column: used to order rows",
        "label": "marked as the label: used to evaluate, never as a model input",
        "id": "marked as an identifier: carried into scored views and exports, never a model "
        "input",
        "ignore": "marked as ignore: not used",
    }
    reason = reasons[role]
    if role == "feature" and column_kind(series) == "text":
        reason += ", but holds text"
    if role == "categorical":
        distinct = _distinct(series)
        if distinct > ENCODED_CATEGORIES:
            reason = f"marked as categorical: {_many_categories(distinct)}"
    return reason


def _many_categories(distinct: int) -> str:
    """What the encoding does with a categorical column of more than ENCODED_CATEGORIES values
    (short: it has to fit beside the column on the Data page). "Top" means the most frequent in
    the training rows."""
    return f"top {ENCODED_CATEGORIES} one-hot, {distinct - ENCODED_CATEGORIES:,} more as 'other'"


def _check_unique_columns(frame: pd.DataFrame) -> None:
    duplicated = frame.columns[frame.columns.duplicated()].unique().tolist()
    if duplicated:
        listed = ", ".join(repr(name) for name in duplicated)
        raise AecoreError(f"Duplicate column names: {listed}. Every column needs its own name.")


def _checked_overrides(frame: pd.DataFrame, overrides: dict[str, str] | None) -> dict[str, str]:
    overrides = dict(overrides or {})
    unknown_columns = [column for column in overrides if column not in frame.columns]
    unknown_roles = [f"{role!r} (for {column!r})" for column, role in overrides.items()
                     if role not in ROLE_NAMES]  # fmt: skip
    problems = []
    if unknown_columns:
        problems.append(
            "these columns are not in the data: " + ", ".join(repr(c) for c in unknown_columns)
        )
    if unknown_roles:
        problems.append(
            f"unknown roles {', '.join(unknown_roles)}; choose one of {', '.join(ROLE_NAMES)}"
        )
    if problems:
        raise AecoreError("Cannot apply the chosen roles: " + "; ".join(problems) + ".")
    return overrides


def _sample(frame: pd.DataFrame) -> pd.DataFrame:
    if len(frame) <= SAMPLE_ROWS:
        return frame
    rows = np.sort(np.random.default_rng(0).choice(len(frame), SAMPLE_ROWS, replace=False))
    return frame.take(rows)


def _normalised(name: Any) -> str:
    return re.sub(r"[\s\-.]+", "_", str(name).strip().lower())


def _name_tokens(name: Any) -> list[str]:
    """Lower-case tokens of a column name: ``"isFraud"`` and ``"is-fraud"`` give is, fraud."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name).strip())
    return [token for token in re.split(r"[^a-z0-9]+", text.lower()) if token]


@dataclass(frozen=True)
class _LabelEvidence:
    """Why a column looks like a label: ``rank`` orders candidates (higher wins), ``why`` is
    the reason in words, ``values`` a short description of what it holds."""

    rank: int
    why: str
    values: str


def _label_evidence(name: Any, series: pd.Series) -> _LabelEvidence | None:
    """Does the column look like a label, and why; ``None`` when it does not.

    The rule, strongest first (``rank``):

    5. named ``label``, ``class``, ``target``, ``y``, ... exactly, holding label-like values;
    4. named like a label otherwise (``attack``, ``anomaly``, ``outlier``, ``fraud``,
       ``is_fraud``, ... exactly) and holding label-like values;
    3. a label word inside the name (``attack_name``, ``Label_text``) or a flag named
       ``is_``/``has_`` + an anomaly word (``is_attack``, ``isFraud``, ``has_malware``): as text
       with label-like values, or (numbers, yes/no) with two values, such as 0/1;
    2. a weak name (``outcome``, ``verdict``, ``result``, ``diagnosis``) whose values also look
       like a label: 0/1 or yes/no, normal/attack words, or one value on at least half the rows
       among at most 50;
    1. no name at all, but text values that only labels hold: ``normal``/``benign``/``legit``
       or ``attack``/``anomaly``/``malicious``/``fraud``/... beside other values.

    Label-like values: text or yes/no with any number of classes, as long as the values repeat
    (at most half as many distinct values as rows, or at most 20); numbers only as whole numbers
    with at most ``MAX_NUMERIC_LABEL_VALUES`` values. A plain 0/1 column without such a name
    (``is_weekend``, ``has_discount``, ``vip``) is never taken for the label: yes/no flags are
    common measurements, so values alone are not enough there.
    """
    kind = column_kind(series)
    tokens = _name_tokens(name)
    joined = "_".join(tokens)
    flag_word = len(tokens) >= 2 and tokens[0] in _FLAG_PREFIXES
    named_at_all = (
        joined in _LABEL_NAMES
        or joined in _WEAK_LABEL_NAMES
        or _LABEL_TOKENS.intersection(tokens)
        or (flag_word and _ANOMALY_FLAG_WORDS.intersection(tokens[1:]))
    )
    if not named_at_all:
        if kind not in ("text", "other"):
            return None  # numbers need a name; skip the value checks (fast on wide files)
        # Unnamed text needs label words: look for them in the usual sample first (fast).
        sample = _sample(series.to_frame()).iloc[:, 0].dropna()
        try:
            seen = set(sample.astype(str).str.strip().str.lower().unique())
        except TypeError:
            return None
        if not seen & (_LABEL_NORMAL_VALUES | _LABEL_ANOMALY_VALUES):
            return None
    present = series.dropna()
    if present.empty:
        return None
    values = _label_values(present, kind)
    if values is None:
        return None
    distinct, counts, description = values
    text = {str(value).strip().lower() for value in counts.index}
    binary = distinct == 2 and (
        kind in ("bool", "bool_text")
        or (kind == "numeric" and set(pd.to_numeric(counts.index)) == {0, 1})
        or any(text == pair for pair in _BINARY_TEXT)
    )
    words = sorted(text & (_LABEL_NORMAL_VALUES | _LABEL_ANOMALY_VALUES))
    is_text = kind in ("text", "other")
    if joined in _LABEL_NAMES:
        rank = 5 if joined in _CANONICAL_LABEL_NAMES else 4
        return _LabelEvidence(rank, "named like a label", description)
    named = _LABEL_TOKENS.intersection(tokens) or (
        flag_word and _ANOMALY_FLAG_WORDS.intersection(tokens[1:])
    )
    if named and (is_text or binary):
        return _LabelEvidence(3, "named like a label", description)
    if joined in _WEAK_LABEL_NAMES:
        dominant = distinct <= DOMINANT_MAX_VALUES and counts.iloc[0] >= DOMINANT_SHARE * len(
            present
        )
        if binary:
            return _LabelEvidence(2, "named like a label and holds two values", description)
        if words and distinct >= 2:
            return _LabelEvidence(2, f"named like a label and holds {words[0]!r}", description)
        if dominant and distinct >= 2:
            return _LabelEvidence(
                2, f"named like a label and mostly {format_value(counts.index[0])!r}",
                description,
            )  # fmt: skip
        return None
    if is_text and words and distinct >= 2:
        return _LabelEvidence(1, f"holds {words[0]!r} beside other values", description)
    return None


def _label_values(present: pd.Series, kind: str) -> tuple[int, pd.Series, str] | None:
    """(distinct, value counts most frequent first, a description) when the values could be
    labels; ``None`` when they cannot (measurements, text different on most rows)."""
    if kind == "datetime":
        return None
    if kind == "numeric":
        numbers = pd.to_numeric(present, errors="coerce")
        if numbers.isna().any() or not np.all(np.mod(numbers.to_numpy(dtype=float), 1) == 0):
            return None
        counts = numbers.value_counts()
        if len(counts) > MAX_NUMERIC_LABEL_VALUES:
            return None
    else:
        try:
            counts = present.value_counts()
        except TypeError:
            counts = present.astype(str).value_counts()
    distinct = len(counts)
    if distinct > 20 and distinct > 0.5 * len(present):
        return None
    shown = ", ".join(format_value(value) for value in counts.index[:3])
    more = ", ..." if distinct > 3 else ""
    noun = "value" if distinct == 1 else "values"
    return distinct, counts, f"{distinct:,} {noun}: {shown}{more}"


def _time_name(name: Any) -> str | None:
    """``"exact"`` for names like ``time``, ``"suffix"`` for ``created_at``, else ``None``."""
    normalised = _normalised(name)
    if normalised in _TIME_NAMES:
        return "exact"
    if normalised.endswith(_TIME_SUFFIXES):
        return "suffix"
    return None


def _is_id_name(name: Any) -> bool:
    text = str(name).strip()
    normalised = _normalised(text)
    return (
        normalised in _ID_NAMES
        or normalised.endswith("_id")
        or re.search(r"[a-z](Id|ID)$", text) is not None
        or text.startswith("Unnamed:")
    )


_UNSET = object()


def _infer_column(
    name: Any,
    series: pd.Series,
    sample: pd.Series,
    time_column: Any,
    label_taken: bool,
    *,
    evidence: Any = _UNSET,
) -> tuple[str, str]:
    """The inferred role of one column and the reason, given the time and label already chosen."""
    rows = len(series)
    present = rows - int(series.isna().sum())
    if present == 0:
        return "ignore", "entirely empty: ignored"
    kind = column_kind(series)
    sample_present = sample.dropna()

    if evidence is _UNSET:
        evidence = _label_evidence(name, series)
    if evidence is not None and label_taken:
        return "ignore", (
            f"looks like a second label column ({evidence.why}; {evidence.values}): ignored, "
            "so that no model input gives the answer away"
        )
    if evidence is not None:
        return "label", (
            f"label ({evidence.why}; {evidence.values}): used to evaluate, never as a model input"
        )

    constant = _constant_value(series, sample_present, kind)
    if constant is not _NOT_CONSTANT:
        return "ignore", f"constant (always {format_value(constant)}): ignored"

    time_hint = _time_name(name)
    looks_like_time = _looks_like_time(kind, sample_present, series, time_hint)
    if looks_like_time and time_column is None:
        return "time", looks_like_time
    if looks_like_time and kind in ("text", "datetime"):
        return "ignore", f"timestamps, but {time_column!r} already orders the rows: ignored"

    if kind in ("numeric", "bool"):
        if kind == "numeric" and _is_id_name(name) and _is_unique_integer(series):
            return "id", _ID_NOTE + " (a different whole number on every row, named like an id)"
        flag = _generic_flag(name, series, kind)
        if kind == "bool":
            return "feature", "true/false: model input as 0/1" + flag
        return "feature", "numeric: model input" + flag

    if kind in ("text", "bool_text"):
        distinct = _distinct(series, kind)
        if distinct >= 2 and distinct >= 0.95 * present:
            if sample_present.astype(str).str.strip().str.contains(" ", regex=False).mean() > 0.5:
                return "ignore", "free text, different on (nearly) every row: ignored"
            return "id", _ID_NOTE + " (different text on (nearly) every row)"
        mostly_numbers = _mostly_numbers(sample_present)
        if mostly_numbers is not None:
            return "ignore", (
                f"mostly numbers, but holds text such as {mostly_numbers!r}: ignored "
                "(fix those cells in the file to use it as a feature)"
            )
        if distinct > ENCODED_CATEGORIES and distinct > 0.5 * present:
            if sample_present.astype(str).str.contains(" ", regex=False).mean() > 0.5:
                return "ignore", f"free text ({distinct:,} distinct values): ignored"
            return "ignore", (
                f"text with {distinct:,} distinct values ({_percent(distinct / present)} of rows): "
                "too varied to be categories, ignored"
            )
        if distinct > MAX_CATEGORIES:
            return "ignore", (
                f"text with {distinct:,} distinct values: too many categories, ignored "
                f"(mark it categorical to use it anyway: {_many_categories(distinct)})"
            )
        if distinct > ENCODED_CATEGORIES:
            return "categorical", f"text with {distinct:,} categories: {_many_categories(distinct)}"
        return "categorical", f"text with {distinct} categories: one-hot encoded"

    if kind == "datetime":
        return "ignore", f"dates/times, but {time_column!r} already orders the rows: ignored"
    return "ignore", f"unsupported type ({series.dtype}): ignored"


_ID_NOTE = "identifier: carried into scored views and exports, never a model input"


def _generic_flag(name: Any, series: pd.Series, kind: str) -> str:
    """A hint for a 0/1 column named like a flag (``is_weekend``): kept as an input, since most
    such flags are measurements, but the analyst may know it marks the anomalies."""
    tokens = _name_tokens(name)
    if len(tokens) < 2 or tokens[0] not in _FLAG_PREFIXES:
        return ""
    values = pd.to_numeric(series.dropna(), errors="coerce")
    if kind != "bool" and not values.isin([0, 1]).all():
        return ""
    return " (a yes/no flag; if it marks the anomalies, make it the label)"


_NOT_CONSTANT = object()


def _constant_value(series: pd.Series, sample_present: pd.Series, kind: str) -> Any:
    """The single value of a constant column (checked on all rows), else ``_NOT_CONSTANT``."""
    try:
        if sample_present.nunique() != 1:
            return _NOT_CONSTANT
        value = sample_present.iloc[0]
        if kind == "numeric":
            values = pd.to_numeric(series, errors="coerce")
            same = values.min() == values.max()
        else:
            same = bool(((series == value) | series.isna()).all())
    except TypeError:
        return _NOT_CONSTANT
    return value if same else _NOT_CONSTANT


def _looks_like_time(kind: str, sample_present: pd.Series, series: pd.Series,
                     time_hint: str | None) -> str | None:  # fmt: skip
    """Why the column can order rows, or ``None``."""
    if kind == "datetime":
        return "dates/times: used to order rows"
    if kind == "text":
        if _timestamp_format(sample_present) is not None:
            return "parsed as timestamps: used to order rows"
        return None
    if kind == "numeric" and time_hint == "exact":
        return "named like a time column: used to order rows"
    if kind == "numeric" and time_hint == "suffix":
        # "response_time" is a measurement; only a column that only grows orders the rows.
        values = pd.to_numeric(series, errors="coerce").dropna()
        if values.is_monotonic_increasing:
            return "named like a time column and only increases: used to order rows"
    return None


def _timestamp_format(values: pd.Series) -> str | None:
    """``"ISO8601"`` or the common date format that at least 95% of the text values parse with."""
    if values.empty:
        return None
    text = values.astype(str).str.strip()
    if not text.str.contains(r"\d[-/.:T ]?\d", regex=True).all():
        return None
    head = text.iloc[:200]
    for date_format in ("ISO8601", *_DATE_FORMATS):
        if date_format != "ISO8601" and _parsed_share(head, date_format) < 0.9:
            continue
        if _parsed_share(text, date_format) >= TIMESTAMP_SHARE:
            return date_format
    return None


def _parsed_share(text: pd.Series, date_format: str) -> float:
    return float(_to_datetime(text, date_format).notna().mean())


def _to_datetime(text: pd.Series, date_format: str) -> pd.Series:
    """Parse with one format; unparseable cells become NaT, mixed UTC offsets become UTC."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pd.to_datetime(text, format=date_format, errors="coerce")
        except (ValueError, TypeError, OverflowError):
            try:
                return pd.to_datetime(text, format=date_format, errors="coerce", utc=True)
            except (ValueError, TypeError, OverflowError):
                return pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")


def parse_times(values: pd.Series) -> pd.Series:
    """A time column as values that sort in time order, for ordering and plotting rows.

    Text timestamps become datetimes, parsed with the format that made the column a time column
    (ISO 8601 or a common format such as 31/12/2024 23:59); numbers and datetimes are returned
    as they are. Cells that do not parse become NaT.
    """
    kind = column_kind(values)
    if kind in ("numeric", "datetime", "bool"):
        return values
    present = values.dropna()
    date_format = _timestamp_format(_sample(present.to_frame()).iloc[:, 0])
    if date_format is None:
        example = str(present.iloc[0]) if len(present) else "nothing"
        raise AecoreError(
            f"Column {values.name!r} does not hold timestamps (it holds e.g. {example!r}); "
            "choose another time column or none."
        )
    return _to_datetime(values.astype(str).str.strip().where(values.notna()), date_format)


def _mostly_numbers(values: pd.Series) -> str | None:
    """An example of the text in a column that is otherwise at least 90% numbers."""
    if values.empty:
        return None
    numbers = pd.to_numeric(values, errors="coerce")
    share = numbers.notna().mean()
    if 0.9 <= share < 1.0:
        return str(values[numbers.isna()].iloc[0])
    return None


def _is_unique_integer(series: pd.Series) -> bool:
    values = pd.to_numeric(series, errors="coerce").dropna()
    if len(values) < 2 or len(values) < len(series):
        return False
    array = values.to_numpy()
    if array.dtype.kind == "f" and not np.all(np.mod(array, 1) == 0):
        return False
    return bool(values.is_unique)


def _distinct(series: pd.Series, kind: str | None = None) -> int:
    """Exact number of distinct non-missing values (numbers: by sorting, which is quicker)."""
    kind = kind or column_kind(series)
    if kind == "numeric" and series.dtype != object:
        values = series.to_numpy(dtype=float, na_value=np.nan)
        values = np.sort(values[~np.isnan(values)])
        return int(np.count_nonzero(np.diff(values)) + 1) if len(values) else 0
    try:
        return int(series.nunique(dropna=True))
    except TypeError:
        return int(series.astype(str).where(series.notna()).nunique(dropna=True))


def _top_values(series: pd.Series, count: int) -> list[Any]:
    return series.value_counts(dropna=True).index[:count].tolist()


def _percent(share: float) -> str:
    if share < 0.001:
        return "<0.1%"
    if share < 0.01:
        return f"{share:.1%}"
    return f"{share:.0%}"


def summarise_columns(frame: pd.DataFrame, roles: ColumnRoles) -> pd.DataFrame:
    """One row per column: role, dtype, missing, distinct, numeric statistics, example, note."""
    notes = role_notes(frame, roles)
    records = []
    rows = len(frame)
    for column in frame.columns:
        series = frame[column]
        kind = column_kind(series)
        missing = int(series.isna().sum())
        stats = dict.fromkeys(("min", "max", "mean", "std"), np.nan)
        if kind in ("numeric", "bool") and missing < rows:
            values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            values = values[~np.isnan(values)]
            if len(values):
                stats = {
                    "min": float(values.min()),
                    "max": float(values.max()),
                    "mean": float(values.mean()),
                    "std": float(values.std(ddof=1)) if len(values) > 1 else np.nan,
                }
        first = series.first_valid_index()
        records.append(
            {
                "column": column,
                "role": roles.role_of(column),
                "dtype": str(series.dtype),
                "missing": missing,
                "missing_share": missing / rows if rows else 0.0,
                "distinct": _distinct(series, kind) if missing < rows else 0,
                **stats,
                "example": "" if first is None else format_value(series.at[first]),
                "note": notes[column],
            }
        )
    return pd.DataFrame.from_records(records, columns=_SUMMARY_COLUMNS)


def check_trainable(
    frame: pd.DataFrame, roles: ColumnRoles, *, min_rows: int = MIN_TRAIN_ROWS
) -> None:
    """Raise ``AecoreError`` with the reason when a model cannot be trained on these columns."""
    absent = [c for c in roles.named if c not in frame.columns]
    if absent:
        listed = ", ".join(repr(c) for c in absent)
        noun = "column is" if len(absent) == 1 else "columns are"
        raise AecoreError(f"The chosen roles name data that is not there: the {noun} {listed} "
                          "not in the file.")  # fmt: skip
    if len(frame) < min_rows:
        raise AecoreError(
            f"Too few rows to train: {len(frame)} rows, at least {min_rows} are needed."
        )
    if not roles.inputs:
        raise AecoreError(_no_features_message(frame, roles))
    for column in roles.inputs:
        if frame[column].isna().all():
            raise AecoreError(f"Column {column!r} is entirely empty; mark it as ignore.")
    for column in roles.features:
        series = frame[column]
        kind = column_kind(series)
        if kind == "datetime":
            raise AecoreError(
                f"Column {column!r} is marked as a numeric feature but holds dates/times; "
                "mark it as time or ignore."
            )
        if kind in ("numeric", "bool"):
            continue
        numbers = pd.to_numeric(series, errors="coerce")
        bad = series.notna() & numbers.isna()
        if bad.any():
            example = series[bad].iloc[0]
            raise AecoreError(
                f"Column {column!r} is marked as a numeric feature but holds text such as "
                f"{str(example)!r} ({int(bad.sum()):,} rows); mark it as categorical or ignore."
            )


def _no_features_message(frame: pd.DataFrame, roles: ColumnRoles) -> str:
    if frame.shape[1] == 0:
        return "No usable feature columns: the data has no columns."
    notes = role_notes(frame, roles)
    reasons = [f"{column!r}: {note}" for column, note in notes.items()]
    shown = "; ".join(reasons[:6]) + (f"; and {len(reasons) - 6} more" if len(reasons) > 6 else "")
    return (
        "No usable feature columns: no column is a numeric feature or categorical "
        f"({shown}). Mark at least one column as feature or categorical."
    )


def time_order(frame: pd.DataFrame, roles: ColumnRoles) -> np.ndarray | None:
    """One sortable number per row from the time column (``parse_times``; unparsed times sort
    last), or None without a usable time column: the order splits, windows and exports use."""
    if roles.time is None or roles.time not in frame:
        return None
    times = parse_times(frame[roles.time])
    if times.isna().all():
        return None
    if pd.api.types.is_numeric_dtype(times):
        return times.to_numpy(dtype=np.float64, na_value=np.inf)
    stamps = times.to_numpy(dtype="datetime64[ns]")
    return np.where(np.isnat(stamps), np.iinfo(np.int64).max, stamps.astype(np.int64))


def window_order(order: np.ndarray | None, n: int) -> np.ndarray:
    """Row positions in time order (stable; the frame's own order without times)."""
    return np.arange(n) if order is None else np.argsort(order, kind="stable")

"""Why a row was flagged: which features carry its reconstruction error."""

from __future__ import annotations

import numpy as np
import pandas as pd

from aecore.io import inference


def top_features(feature_errors: pd.DataFrame, k: int = 3) -> pd.DataFrame:
    """The ``k`` features with the largest error per row, and each one's share of the row's
    total feature error. Columns: ``top1_feature, top1_share, ..., topk_feature, topk_share``.
    Vectorised: one partial sort over the whole matrix, no loop per row."""
    values = feature_errors.to_numpy(dtype=np.float32, copy=False)
    names = np.asarray(feature_errors.columns, dtype=object)
    k = int(min(k, values.shape[1]))
    if k == 0 or len(values) == 0:
        return pd.DataFrame(index=feature_errors.index)
    n_columns = values.shape[1]
    if n_columns > k:  # the k largest, without a negated copy of the matrix
        part = np.argpartition(values, n_columns - k, axis=1)[:, n_columns - k :]
    else:
        part = np.broadcast_to(np.arange(k), (len(values), k))
    picked = np.take_along_axis(values, part, axis=1)
    order = np.argsort(-picked, axis=1, kind="stable")
    index = np.take_along_axis(part, order, axis=1)
    top = np.take_along_axis(values, index, axis=1)
    total = values.sum(axis=1, keepdims=True)
    share = np.divide(top, total, out=np.zeros_like(top), where=total > 0)
    columns = {}
    categories = pd.Index(names, dtype=object)
    unique = categories.is_unique
    for j in range(k):
        # Categorical: one code per row instead of one Python string object per row.
        columns[f"top{j + 1}_feature"] = (
            pd.Categorical.from_codes(index[:, j], categories=categories)
            if unique
            else names[index[:, j]]
        )
        columns[f"top{j + 1}_share"] = share[:, j]
    return pd.DataFrame(columns, index=feature_errors.index)


def mean_feature_errors(feature_errors: pd.DataFrame, rows=None) -> pd.Series:
    """Mean error per feature over ``rows`` (a boolean mask or index; all rows if None), largest
    first: where the errors of, say, all flagged rows concentrate."""
    subset = feature_errors if rows is None else feature_errors.loc[rows]
    if isinstance(rows, np.ndarray) and rows.dtype == bool:
        subset = feature_errors[rows]
    return subset.mean(axis=0).sort_values(ascending=False).rename("mean_error")


def error_shares(feature_errors: pd.DataFrame) -> pd.DataFrame:
    """Each feature's share of its row's total error (rows sum to 1)."""
    total = feature_errors.sum(axis=1).replace(0, np.nan)
    return feature_errors.div(total, axis=0).fillna(0.0)


# ---------------------------------------------------------------------------- one row in detail

MODEL_UNIT_COLUMNS = (
    "input (model units)",
    "reconstruction (model units)",
    "squared difference",
    "weight",
)


def row_detail(detector, frame: pd.DataFrame, row: int) -> pd.DataFrame:
    """One row's input against its reconstruction, feature by feature, in original units and in
    the model units its error is computed in; largest error first.

    Columns: ``input``, ``reconstruction``, ``difference`` (original units; numeric columns),
    ``input (model units)``, ``reconstruction (model units)`` (after the imputation, the log
    transform if any, minus the column's centre, divided by its scale; for a categorical
    column, its one-hot value for the input's category), ``squared difference`` (model units;
    for a categorical column summed over its one-hot columns), ``weight``, ``error`` (the
    detector's per-feature error) and ``share of row error``; plus ``log transformed`` and
    ``scale`` (one model unit, in original units or on the log1p scale).

    The numbers agree exactly: ``error = weight * squared difference``, and the errors add up
    to the row's score. With one model that is ``weight * (input - reconstruction)^2`` in
    model units, where ``weight`` is the column's weight divided by the number of encoded
    columns (the score is their mean). With a second model, the error is
    the mean of both models' weighted errors; ``weight`` is then the mean of their weights (the
    second's in the first's units) and ``squared difference`` their squared differences'
    mean weighted by those weights; each model's own reconstruction, squared difference and
    weight are in the columns ending ``, model 1`` and ``, model 2``, and ``reconstruction``
    is the two models' mean, as scoring reports it. With a memory of normal prototypes
    (``AnomalyDetector.memory``), the row's nearest prototype is one more reconstruction
    (columns ending ``, nearest prototype``); every reconstruction holds the same share of the
    score (or, when the training rows were known to be normal, the prototype holds the
    memory's own share and the network the rest), and ``weight`` and ``reconstruction`` are
    weighed by those shares.

    For a model over windows of consecutive rows, the row is reconstructed with the rows that
    precede it in time, as when the whole frame is scored.
    """
    window = int(getattr(detector.autoencoder_, "window", 1))
    if window > 1:
        order = inference.window_order(inference.time_order(frame, detector.roles_), len(frame))
        position = int(np.flatnonzero(order == row)[0])
        context = order[max(0, position - window + 1) : position + 1]
    else:
        context = np.asarray([row])
    part = frame.iloc[context]
    preprocessor = detector.preprocessor_
    scores = detector.score_rows(part, latent=False, reconstruction=True)
    columns = list(detector.feature_names_in_)
    rebuilt = scores.reconstruction.iloc[-1]
    errors = scores.feature_errors.iloc[-1]
    original = part.iloc[-1]
    x = detector.transform_inputs(part)
    members = _member_parts(detector, x, part)

    groups = preprocessor.source_index
    x_row = x[-1].astype(np.float64)
    numeric = {p["name"]: p for p in preprocessor.numeric_}
    n_members = len(members)
    n_encoded = float(preprocessor.n_encoded)
    shares = np.array([m["share"] for m in members])  # each member's part of the score
    # (members, n_inputs); a weight is what one unit of squared difference adds to the row's
    # score, the mean over the encoded columns: the column weight / the number of columns.
    shares_w = np.stack([m["weight"] * m["share"] / n_encoded for m in members])
    squared = np.stack([m["squared"] for m in members])  # (members, n_inputs)
    weight = shares_w.sum(axis=0)
    squared_mean = np.divide(
        (shares_w * squared).sum(axis=0), weight, out=squared.mean(axis=0), where=weight > 0
    )
    mean_recon = np.tensordot(shares, np.stack([m["reconstruction"] for m in members]), axes=1)

    def at_category(values: np.ndarray, j: int) -> float:
        """A categorical column's one-hot value for the input's category (else the
        reconstruction's most likely one: the input's category was never seen in training)."""
        block = np.flatnonzero(groups == j)
        hot = block[x_row[block] > 0.5]
        pick = hot[0] if len(hot) else block[int(np.argmax(mean_recon[block]))]
        return float(values[pick])

    model_input, model_recon, member_recon = [], [], [[] for _ in members]
    for j, column in enumerate(columns):
        if column in numeric:
            index = int(np.flatnonzero(groups == j)[0])
            model_input.append(float(x_row[index]))
            model_recon.append(float(mean_recon[index]))
            for k, m in enumerate(members):
                member_recon[k].append(float(m["reconstruction"][index]))
        else:
            model_input.append(at_category(x_row, j))
            model_recon.append(at_category(mean_recon, j))
            for k, m in enumerate(members):
                member_recon[k].append(at_category(m["reconstruction"], j))
    table = pd.DataFrame(
        {
            "input": [original[c] for c in columns],
            "reconstruction": [rebuilt[c] for c in columns],
            "difference": [
                _number(rebuilt[c]) - _number(original[c]) if c in numeric else np.nan
                for c in columns
            ],
            "input (model units)": model_input,
            "reconstruction (model units)": model_recon,
            "squared difference": squared_mean,
            "weight": weight,
            "error": [float(errors[c]) for c in columns],
        },
        index=pd.Index(columns, name="feature"),
    )
    total = table["error"].sum()
    table["share of row error"] = table["error"] / total if total > 0 else 0.0
    table["log transformed"] = [bool(numeric[c]["log"]) if c in numeric else False
                                for c in columns]  # fmt: skip
    table["scale"] = [float(numeric[c]["scale"]) if c in numeric else np.nan for c in columns]
    if n_members > 1:
        for k, m in enumerate(members, start=1):
            table[f"reconstruction (model units), {m['label']}"] = member_recon[k - 1]
            table[f"squared difference, {m['label']}"] = m["squared"]
            table[f"weight, {m['label']}"] = m["weight"] / n_encoded
    return table.sort_values("error", ascending=False, kind="stable")


def _member_parts(detector, x: np.ndarray, part: pd.DataFrame) -> list[dict]:
    """Per autoencoder of the detector (one, or two with a second model): its reconstruction
    of the last row of ``x`` in the first model's units (per encoded column), its squared
    differences per input column in those units, and its column weights in those units (the
    second model's errors are in its own input scaling: ``(scale * d)^2``, so its weight there
    is its own weight times ``scale^2``). From the detector's own calibrated scorers
    (``AnomalyDetector.member_reconstructions``)."""
    preprocessor = detector.preprocessor_
    groups = preprocessor.source_index
    n_inputs = len(preprocessor.input_columns)
    parts = []
    for member in detector.member_reconstructions(part):
        scale, shift = member["input_scale"], member["input_shift"]
        recon = (member["reconstruction"][-1].astype(np.float64) - shift) / scale
        difference2 = (x[-1].astype(np.float64) - recon) ** 2
        squared = np.bincount(groups, weights=difference2, minlength=n_inputs)
        settings = member["settings"]
        weights = np.asarray(settings.get("feature_weights") or np.ones(n_inputs), np.float64)
        # One scale per input column: numeric columns have one encoded column; one-hot ones 1.
        column_scale = np.ones(n_inputs)
        column_scale[groups] = scale
        parts.append(
            {
                "reconstruction": recon, "squared": squared,
                "weight": weights * column_scale**2,
                "share": float(member["share"]), "label": member["label"],
            }
        )  # fmt: skip
    return parts


def why_small_error(detail: pd.DataFrame) -> str:
    """One line on why a large difference in original units can carry a small error, about the
    row's most striking such feature in ``row_detail``'s table (a numeric one whose value is
    rebuilt far from the input, yet under half an even share of the error); general otherwise."""
    general = (
        "A large difference in original units can carry a small error: the error is computed "
        "after the log transform (if any), on the column's scale (its training spread), times "
        "its weight."
    )
    numeric = detail[detail["scale"].notna() & detail["difference"].notna()]
    if numeric.empty or len(detail) < 2:
        return general
    inputs = numeric["input"].map(_number)
    size = np.maximum(np.abs(inputs), np.abs(numeric["reconstruction"].map(_number)))
    relative = np.abs(numeric["difference"]) / size.where(size > 0, np.nan)
    quiet = numeric["share of row error"] < 0.5 / len(detail)
    candidates = relative[quiet & (relative >= 0.2)].dropna()
    if candidates.empty:
        return general
    name = candidates.idxmax()
    line = detail.loc[name]
    reasons = []
    if bool(line["log transformed"]):
        reasons.append(
            f"it is log-transformed ({_number(line['input']):.4g} and "
            f"{_number(line['reconstruction']):.4g} are "
            f"{_signed_log1p(_number(line['input'])):.3g} and "
            f"{_signed_log1p(_number(line['reconstruction'])):.3g} after log1p)"
        )
    scale_text = f"{line['scale']:.3g}" + (" on the log1p scale" if line["log transformed"] else "")
    model_difference = line["reconstruction (model units)"] - line["input (model units)"]
    reasons.append(
        f"one model unit is {scale_text} (its training spread), so the difference is "
        f"{model_difference:.3g} model units"
    )
    weights = detail["weight"]
    median = float(weights.median())
    if median > 0 and line["weight"] < 0.5 * median:
        reasons.append(
            f"its weight is low ({line['weight']:.3g} against a median of {median:.3g}: the "
            "model rebuilds it loosely on training rows, so its errors count less)"
        )
    return (
        f"Why **{name}** differs by {abs(line['difference']):.4g} yet carries "
        f"{line['share of row error']:.1%} of the error: " + "; ".join(reasons)
        + f". Its error is {line['weight']:.3g} × {line['squared difference']:.3g} = "
        f"{line['error']:.3g}."
    )


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _signed_log1p(value: float) -> float:
    return float(np.sign(value) * np.log1p(abs(value)))

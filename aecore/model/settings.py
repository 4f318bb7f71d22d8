"""Checks on a detector's settings, and the memory budget a network must fit in, applied before
anything is built or allocated (no Keras import here: the CLI checks its arguments with it).

``check_settings`` refuses a setting outside its range with one ``AecoreError`` naming it.
``check_budget`` estimates what training a network needs (see ``estimate_memory``) and refuses
settings that need more than ``max_model_bytes()``: ``$AECORE_MAX_MODEL_MB`` megabytes, by
default ``DEFAULT_MAX_MODEL_MB`` (1 GB). The estimate is made from the layer sizes alone, so a
runaway setting (hidden widths ``40000, 40000``) is refused before Keras allocates a weight.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from aecore.errors import AecoreError

DEFAULT_MAX_MODEL_MB = 1024
BUDGET_ENV = "AECORE_MAX_MODEL_MB"
BYTES_PER_VALUE = 4  # float32
# Copies of every weight while training: the weights, their gradients, Adam's two moments and
# the best epoch's weights kept for early stopping.
TRAINING_COPIES = 5
EVAL_VALUES = 262_144  # as in aecore.model.training: input values per validation batch

ARCHITECTURE_NAMES = ("linear", "dense", "sparse", "denoising", "conv", "variational")
ACTIVATIONS = (
    "relu", "tanh", "elu", "selu", "sigmoid", "gelu", "swish", "silu", "leaky_relu", "softplus",
    "linear",
)  # fmt: skip
MAX_CODE_SIZE = 4096
MAX_HIDDEN_LAYERS = 16
MAX_EPOCHS = 10_000
MAX_BATCH_SIZE = 1 << 20
MAX_PATIENCE = 10_000
MAX_WINDOW = 1024
MAX_KL_WEIGHT = 1000.0


def max_model_bytes() -> int:
    """The memory budget for training one network, from ``$AECORE_MAX_MODEL_MB`` (megabytes)."""
    text = os.environ.get(BUDGET_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_MODEL_MB * 1024 * 1024
    try:
        megabytes = float(text)
    except ValueError:
        raise AecoreError(f"{BUDGET_ENV} must be a number of megabytes, got {text!r}.") from None
    if not (math.isfinite(megabytes) and megabytes > 0):
        raise AecoreError(f"{BUDGET_ENV} must be a positive number of megabytes, got {text!r}.")
    return int(megabytes * 1024 * 1024)


def format_bytes(n: float) -> str:
    """1536 -> '1.5 KB'; binary units, as the budget's megabytes."""
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} TB"  # pragma: no cover


# ---------------------------------------------------------------------------- the estimate


@dataclass
class MemoryEstimate:
    """What training one network needs, in bytes, and its number of weights."""

    parameters: int
    weights_bytes: int  # every copy of the weights kept while training
    batch_bytes: int  # activations of the largest batch (training or validation)
    inputs_bytes: int  # windows of consecutive rows (copied for training), else 0

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.batch_bytes + self.inputs_bytes


def _dense_parameters(widths: Sequence[int]) -> int:
    return sum(a * b + b for a, b in zip(widths[:-1], widths[1:], strict=True))


def _layout(architecture: str, n_inputs: int, code_size: int, hidden: Sequence[int], window: int):
    """(weights, values per row across all layer outputs) of the network
    ``aecore.model.architectures.build_autoencoder`` builds."""
    n, c = int(n_inputs), int(code_size)
    if architecture == "linear":
        return _dense_parameters([n, c, n]), n + c + n
    if architecture == "conv":
        padded_f = n + (-n) % 4
        if window > 1:
            padded_w = window + (-window) % 4
            cells = padded_w * padded_f
            grid = (padded_w // 4) * (padded_f // 4) * 32
            conv = (9 * 16 + 16) + (9 * 16 * 32 + 32) + (9 * 32 * 32 + 32) + (9 * 32 * 16 + 16)
            conv += 9 * 16 + 1
            values = cells * (1 + 16 // 4 + 32 + 16 + 1) + 2 * grid + c + window * n
        else:
            cells = padded_f
            grid = (padded_f // 4) * 32
            conv = (3 * 16 + 16) + (3 * 16 * 32 + 32) + (3 * 32 * 32 + 32) + (3 * 32 * 16 + 16)
            conv += 3 * 16 + 1
            values = cells * (1 + 16 // 2 + 16 + 16 + 1) + 2 * grid + c + n
        return conv + (grid * c + c) + (c * grid + grid), values
    widths = [n, *hidden, c]
    parameters = _dense_parameters(widths) + _dense_parameters([c, *reversed(hidden), n])
    if architecture == "variational":
        last = hidden[-1] if hidden else n
        parameters += last * c + c  # the log-variance head
    return parameters, 2 * sum(widths) + c


def estimate_memory(
    architecture: str,
    n_inputs: int,
    code_size: int,
    hidden_sizes: Sequence[int] | None = None,
    *,
    window: int = 1,
    batch_size: int | None = None,
    n_rows: int | None = None,
    models: int = 1,
) -> MemoryEstimate:
    """The memory training needs, estimated from the layer sizes alone (nothing is built).

    Weights: 4 bytes each, times ``TRAINING_COPIES`` (the weights, gradients, Adam's two moments
    and the best epoch's copy), plus one resident copy per earlier model (``models`` > 1).
    One batch: every layer's output for ``batch_size`` rows, three times (the values, their
    gradients and a working copy), or a validation batch (forward only), whichever is larger.
    Windows (``window`` > 1): the ``n_rows`` training windows are copied, twice.
    """
    if hidden_sizes is None:
        from aecore.model.defaults import default_hidden_sizes

        hidden_sizes = default_hidden_sizes(n_inputs, code_size)
    hidden = [int(h) for h in hidden_sizes]
    parameters, values_per_row = _layout(architecture, n_inputs, code_size, hidden, window)
    weights = parameters * BYTES_PER_VALUE * (TRAINING_COPIES + max(0, int(models) - 1))
    batch = 0
    if batch_size is not None:
        rows = int(batch_size) if n_rows is None else max(1, min(int(batch_size), int(n_rows)))
        inputs_per_row = max(1, int(n_inputs) * max(1, int(window)))
        eval_rows = max(rows, EVAL_VALUES // inputs_per_row)
        if n_rows is not None:
            eval_rows = min(eval_rows, max(1, int(n_rows)))
        per_value = BYTES_PER_VALUE * values_per_row
        batch = max(3 * rows * per_value, eval_rows * per_value)
    inputs = 0
    if window > 1 and n_rows is not None:
        inputs = 2 * int(n_rows) * int(window) * int(n_inputs) * BYTES_PER_VALUE
    return MemoryEstimate(int(parameters), int(weights), int(batch), int(inputs))


def check_budget(
    architecture: str,
    n_inputs: int,
    code_size: int,
    hidden_sizes: Sequence[int] | None = None,
    **kwargs: Any,
) -> MemoryEstimate:
    """``estimate_memory``; raises ``AecoreError`` naming the estimate and the budget when it
    is over ``max_model_bytes()``."""
    estimate = estimate_memory(architecture, n_inputs, code_size, hidden_sizes, **kwargs)
    budget = max_model_bytes()
    if estimate.total_bytes <= budget:
        return estimate
    parts = [f"{format_bytes(estimate.weights_bytes)} for its weights and the optimizer's state"]
    if estimate.batch_bytes:
        parts.append(f"{format_bytes(estimate.batch_bytes)} for one batch")
    if estimate.inputs_bytes:
        parts.append(f"{format_bytes(estimate.inputs_bytes)} for the windows of rows")
    hints = ["narrower or fewer hidden layers (or 'auto')"]
    if estimate.batch_bytes > budget / 4:
        hints.append("a smaller batch size")
    if estimate.inputs_bytes:
        hints.append("a shorter window")
    raise AecoreError(
        f"This network would need about {format_bytes(estimate.total_bytes)} of memory to train "
        f"({estimate.parameters:,} weights: {', '.join(parts)}), more than the budget of "
        f"{format_bytes(budget)} per training ({BUDGET_ENV}). Use {' or '.join(hints)}."
    )


# ---------------------------------------------------------------------------- the settings


def _whole(name: str, value: Any, low: int, high: int, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, Integral) or not low <= value <= high:
        raise AecoreError(f"{name} must be a whole number from {low:,} to {high:,}, got {value!r}.")


def _number(
    name: str, value: Any, low: float, high: float, *, low_open=False, high_open=False,
    optional: bool = False, why: str = "",
) -> None:  # fmt: skip
    if value is None and optional:
        return
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high
        )
    if not ok:
        left = f"above {low:g}" if low_open else f"at least {low:g}"
        right = f"below {high:g}" if high_open else f"at most {high:g}"
        if not (low_open or high_open):
            left, right = f"between {low:g}", f"{high:g}"
        raise AecoreError(f"{name} must be {left} and {right}{why}, got {value!r}.")


def _choice(name: str, value: Any, options: Sequence) -> None:
    if not isinstance(value, str) or value not in options:
        raise AecoreError(f"Unknown {name} {value!r}; choose one of {', '.join(options)}.")


def _share_or_auto(name: str, value: Any) -> None:
    if value is None or value is False or value == "auto":
        return
    if isinstance(value, str) or isinstance(value, bool) or not isinstance(value, Real) or not (
        0 < float(value) < 1
    ):
        raise AecoreError(f"{name} must be a share between 0 and 1, 'auto' or None, got {value!r}.")


def check_settings(params: Mapping[str, Any]) -> None:
    """Refuse any setting out of its range with one ``AecoreError`` naming it; ``params`` are
    ``AnomalyDetector`` keyword arguments (missing ones are not checked). Data-dependent limits
    (the memory budget, rows left after the split) are checked by ``fit``."""
    from aecore.evaluation.thresholds import METHODS
    from aecore.model.preprocessing import SCALINGS

    p = dict(params)
    if "architecture" in p:
        _choice("architecture", p["architecture"], ARCHITECTURE_NAMES)
    if "code_size" in p:
        _whole("The code size", p["code_size"], 1, MAX_CODE_SIZE, optional=True)
    hidden = p.get("hidden_sizes")
    if hidden is not None:
        if isinstance(hidden, str | bytes) or not isinstance(hidden, Sequence) or not hidden:
            raise AecoreError(
                "Hidden layer widths must be a list of whole numbers such as [64, 16], or None "
                "for automatic."
            )
        if len(hidden) > MAX_HIDDEN_LAYERS:
            raise AecoreError(
                f"At most {MAX_HIDDEN_LAYERS} hidden layers can be used, got {len(hidden)}."
            )
        for width in hidden:
            _whole("Each hidden layer width", width, 1, 10**9)
    if "activation" in p and not callable(p["activation"]):
        _choice("activation", p["activation"], ACTIVATIONS)
    if "scaling" in p:
        _choice("scaling", p["scaling"], SCALINGS)
    if "epochs" in p:
        _whole("Epochs", p["epochs"], 1, MAX_EPOCHS, optional=True)
    if "batch_size" in p:
        _whole("The batch size", p["batch_size"], 1, MAX_BATCH_SIZE, optional=True)
    if "learning_rate" in p:
        _number("The learning rate", p["learning_rate"], 0, 1, low_open=True, optional=True)
    if "patience" in p:
        _whole("The early-stopping patience", p["patience"], 1, MAX_PATIENCE, optional=True)
    if "split" in p:
        _choice("split", p["split"], ("auto", "random", "chronological"))
    shares = {"validation_share": "The validation share", "test_share": "The test share"}
    for key, label in shares.items():
        if key in p and not (key == "test_share" and p[key] == "auto"):
            _number(label, p[key], 0, 1, high_open=True)
    given = [p.get(key) for key in shares]
    if sum(float(v) for v in given if isinstance(v, Real)) >= 1:
        raise AecoreError("The validation and test shares together must leave rows to train on.")
    if "train_on" in p:
        _choice("train_on setting", p["train_on"], ("auto", "all", "normal"))
    if "threshold_method" in p:
        _choice("threshold method", p["threshold_method"], METHODS)
    if p.get("threshold_params") is not None and not isinstance(p["threshold_params"], Mapping):
        raise AecoreError("threshold_params must be a dict such as {'percentile': 99.5}.")
    if "l1" in p:
        _number("The L1 penalty on the code", p["l1"], 0, 1)
    if "noise_std" in p:
        _number(
            "The input noise", p["noise_std"], 0, 1,
            why=" (inputs are standardised: 1 is as much noise as signal)",
        )  # fmt: skip
    if "dropout" in p:
        _number("The input dropout", p["dropout"], 0, 1, high_open=True)
    if "window" in p:
        _whole("The window", p["window"], 1, MAX_WINDOW)
        if int(p["window"]) > 1 and p.get("architecture", "conv") != "conv":
            raise AecoreError("Windows of consecutive rows need the 'conv' architecture.")
    if "kl_weight" in p:
        _number("The KL weight", p["kl_weight"], 0, MAX_KL_WEIGHT, optional=True)
    if "score_kl" in p and not isinstance(p["score_kl"], bool):
        raise AecoreError(f"score_kl must be True or False, got {p['score_kl']!r}.")
    if "normalise_errors" in p and p["normalise_errors"] not in (True, False, "auto"):
        raise AecoreError("normalise_errors must be True, False or 'auto'.")
    if "code_limit" in p:
        _share_or_auto("code_limit", p["code_limit"])
    if "second_model" in p:
        _share_or_auto("second_model", p["second_model"])
    if "memory" in p and p["memory"] not in (True, False, None, "auto"):
        raise AecoreError(f"memory must be True, False, None or 'auto', got {p['memory']!r}.")
    if "random_state" in p:
        _whole("The random seed", p["random_state"], 0, 2**32 - 1)

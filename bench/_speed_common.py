"""Helpers shared by the speed benchmarks (``bench/speed.py``, ``bench/scale_*.py``).

Synthetic data, timing with medians, the machine's description, and the textbook recipe that
every training figure is compared with. Not a benchmark itself.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script from anywhere, without installing

DATA_DIR = Path(os.environ.get("AECORE_BENCH_DIR", "/tmp/aecore_bench"))
N_FEATURES = 30


# ---------------------------------------------------------------------------------- data
def synthetic(n_rows: int, n_features: int = N_FEATURES, seed: int = 0) -> np.ndarray:
    """Rows driven by 6 latent factors (linear plus a tanh term) with 10% noise: correlated,
    mildly non-linear numeric data, as float32. Deterministic for a seed."""
    rng = np.random.default_rng(seed)
    latent = 6
    mixing = rng.normal(size=(latent, n_features)).astype(np.float32) / np.sqrt(latent)
    bending = rng.normal(size=(latent, n_features)).astype(np.float32) / np.sqrt(latent)
    out = np.empty((n_rows, n_features), dtype=np.float32)
    block = 250_000
    for start in range(0, n_rows, block):
        stop = min(start + block, n_rows)
        factors = rng.normal(size=(stop - start, latent)).astype(np.float32)
        noise = rng.normal(size=(stop - start, n_features)).astype(np.float32)
        out[start:stop] = factors @ mixing + 0.5 * np.tanh(factors @ bending) + 0.1 * noise
    return out


def frame(x: np.ndarray):
    """The matrix as a DataFrame of float64 columns f0, f1, ... (what a CSV reader gives)."""
    import pandas as pd

    return pd.DataFrame(x.astype(np.float64), columns=[f"f{i}" for i in range(x.shape[1])])


def split(x: np.ndarray, validation_share: float = 0.2, seed: int = 0):
    """Random train / validation rows, standardised with the training rows' statistics."""
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = int(round(validation_share * len(x)))
    train, val = x[order[n_val:]], x[order[:n_val]]
    mean, std = train.mean(axis=0), train.std(axis=0)
    return ((train - mean) / std).astype(np.float32), ((val - mean) / std).astype(np.float32)


def numeric_csv(n_rows: int = 1_000_000, seed: int = 2) -> Path:
    """A numeric CSV of ``n_rows`` x 30 (values with 3 decimals: about 190 MB at 1M rows),
    written once under ``DATA_DIR`` and reused."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = DATA_DIR / f"numeric_{n_rows}x{N_FEATURES}_seed{seed}.csv"
    if path.exists():
        return path
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    x = np.round(synthetic(n_rows, seed=seed).astype(np.float64), 3)
    table = pa.table({f"f{i}": x[:, i] for i in range(x.shape[1])})
    partial = path.with_suffix(".partial")
    with open(partial, "wb") as handle:
        handle.write((",".join(table.column_names) + "\n").encode())
        pacsv.write_csv(table, handle, write_options=pacsv.WriteOptions(include_header=False))
    partial.rename(path)
    return path


# ---------------------------------------------------------------------------------- recipe
def recipe_model(n_features: int, seed: int = 0):
    """The textbook recipe: Dense(64, relu) -> Dense(n, linear), Adam (defaults), MSE."""
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((n_features,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(n_features),
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    return model


def recipe_as_autoencoder(n_features: int, seed: int = 0):
    """The same architecture and initialisation as ``recipe_model``, as an aecore
    ``Autoencoder`` (encoder: the hidden layer; decoder: the linear output layer)."""
    import keras

    from aecore.model.architectures import Autoencoder

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((n_features,))
    encoder = keras.Model(
        inputs, keras.layers.Dense(64, activation="relu")(inputs), name="encoder"
    )
    code = keras.Input((64,))
    decoder = keras.Model(code, keras.layers.Dense(n_features)(code), name="decoder")
    model = keras.Model(inputs, decoder(encoder(inputs)), name="recipe_autoencoder")
    return Autoencoder(model, encoder, decoder, "dense")


def train_until(autoencoder, x_train, x_val, target: float, *, budget_s: float, **schedule):
    """Run aecore's trainer until the validation MSE is <= ``target`` (checked after every
    epoch); returns (seconds from the call to that epoch's end or None, epochs, val MSEs)."""
    from aecore.model.training import train_autoencoder

    reached: list[float] = []
    curve: list[float] = []
    start = time.perf_counter()

    def progress(report) -> None:
        curve.append(report.val_loss)
        if report.val_loss <= target and not reached:
            reached.append(time.perf_counter() - start)

    def should_stop() -> bool:
        return bool(reached) or time.perf_counter() - start > budget_s

    train_autoencoder(
        autoencoder, x_train, x_val, progress=progress, should_stop=should_stop, **schedule
    )
    return (reached[0] if reached else None), len(curve), curve


# ---------------------------------------------------------------------------------- timing
def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(function: Callable[[], object]) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds of this process, result) of one call."""
    cpu = cpu_seconds()
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, cpu_seconds() - cpu, result


def median(values) -> float:
    values = [v for v in values if v is not None]
    return float(statistics.median(values)) if values else float("nan")


def matmul_peak_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Achieved float32 GFLOP/s of a large TensorFlow matmul (best of ``repeats``): the
    machine's practical peak for the scorer's arithmetic."""
    import tensorflow as tf

    a = tf.random.stateless_normal((size, size), seed=(1, 2))
    b = tf.random.stateless_normal((size, size), seed=(3, 4))
    run = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    run().numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run().numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def dense_flops_per_row(model) -> int:
    """Multiply-adds x 2 of every Dense/Conv kernel in one forward pass of one row."""
    import keras

    total = 0
    for layer in _leaf_layers(model):
        if isinstance(layer, keras.layers.Dense):
            kernel = layer.kernel.shape
            total += 2 * int(kernel[0]) * int(kernel[1])
    return total


def _leaf_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            yield from _leaf_layers(layer)
        else:
            yield layer


# ---------------------------------------------------------------------------------- report
def machine() -> str:
    """CPU model, cores, load average, library versions: to print with every result."""
    import keras
    import pandas as pd
    import pyarrow
    import tensorflow as tf

    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"{model}, {os.cpu_count()} cores, load average {load}; Python "
        f"{platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__}, "
        f"pandas {pd.__version__}, pyarrow {pyarrow.__version__}, numpy {np.__version__}"
    )


def load_average() -> str:
    return ", ".join(f"{value:.1f}" for value in os.getloadavg())


def row(*cells, widths=(44, 14, 14, 14, 24)) -> str:
    return "".join(str(cell).ljust(width) for cell, width in zip(cells, widths, strict=False))


def seconds(value: float | None) -> str:
    if value is None or value != value:
        return "not reached"
    return f"{value:.2f} s" if value < 100 else f"{value:.0f} s"

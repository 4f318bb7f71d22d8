"""Scoring: reconstruction, row errors, per-feature errors and codes from one batched pass.

Definitions (in the model's standardised units):
- per-feature error of a source column = squared difference between input and reconstruction,
  summed over that column's encoded columns (a one-hot group adds back into its source column);
- row error = mean of the squared differences over all encoded columns, i.e. the row's MSE, so
  the per-feature errors of a row sum to ``row_error * n_encoded``; higher = more anomalous.
  A variational model may add its KL term (weighted as in training) to the row error.
- with a ``code_limit`` (``architectures.limit_code``: centre, precision, radius), the decoder
  rebuilds the code pulled back onto the radius when it lies beyond it; the code reported is
  the encoder's own.
- with ``weights`` (one per source column), each per-feature error is multiplied by its
  column's weight, and the row error is their sum over the encoded columns (the detector's
  calibrated score).
- with a ``second`` autoencoder (its own weights, and its own input scaling: ``second_inputs``
  = (scale, shift) per encoded column, errors in its own units), every per-feature error is
  the mean of the two models' (weighted) errors, so the row error is the mean of their row
  errors and a row's per-feature errors still add up to it; the reconstruction is the mean of
  the two (in the first model's units) and the code is the first model's.
- with a ``memory`` of normal prototypes (``aecore.model.memory``: prototypes in the first
  model's units, one weight per encoded column for the distance, and a scale), each row's
  nearest prototype is one more reconstruction: every per-feature error is the mean over the
  reconstructions (the autoencoder, or the two, and the prototype, whose squared difference
  is times the memory's scale), so a row's per-feature errors still add up to its row error;
  the reconstruction is the mean of all of them. A memory given a share of its own (the
  detector's, when its training rows are known to be normal) weighs the prototype's error and
  reconstruction by that share and the autoencoders' by the rest, split evenly among them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from keras import ops

from aecore.model.architectures import Autoencoder, limit_code

SCORE_BATCH = 16_384
SCORE_VALUES = 524_288  # input values per compiled call (2 MB): activations stay in cache
# The per-feature error given where the network's arithmetic overflowed (it cannot on inputs
# that ``Preprocessor.transform`` clipped, but no score may ever be NaN or infinite): far above
# any threshold, and small enough that a row's sum stays finite in float32.
OVERFLOW_ERROR = 1e30


@dataclass
class ScoreArrays:
    row_error: np.ndarray  # (n,)
    feature_errors: np.ndarray  # (n, n_inputs), per source column
    latent: np.ndarray | None  # (n, code_size)
    reconstruction: np.ndarray | None  # (n, n_encoded), standardised units


def make_windows(x: np.ndarray, window: int) -> np.ndarray:
    """Row i -> the ``window`` rows ending at i (the first rows repeat row 0): a strided view,
    no copy."""
    padded = np.concatenate([np.repeat(x[:1], window - 1, axis=0), x], axis=0)
    view = np.lib.stride_tricks.sliding_window_view(padded, (window, x.shape[1]))
    return view[:, 0]


def _code_size(autoencoder: Autoencoder) -> int:
    shape = autoencoder.encoder.output_shape
    return int((shape[0] if isinstance(shape, list) else shape)[-1])


def _limit_values(limit: dict | None, code_size: int) -> list:
    """A code limit as the compiled pass's arguments: on, centre, precision, radius (when
    there is none, the pass leaves codes as they are)."""
    if not limit:
        return [False, np.zeros(code_size, np.float32), np.eye(code_size, dtype=np.float32), 1.0]
    return [True, np.asarray(limit["center"], np.float32).reshape(code_size),
            np.asarray(limit["precision"], np.float32).reshape(code_size, code_size),
            float(limit["radius"])]  # fmt: skip


def _compile(autoencoder, specs, *, has_groups, include_kl, kl_weight, second, second_inputs,
             memory, memory_root):  # fmt: skip
    """The compiled pass: (rows, *values) -> (row error, per-feature errors, code,
    reconstruction), ``values`` as ``Scorer`` lays them out."""
    encoder, decoder = autoencoder.encoder, autoencoder.decoder
    variational = autoencoder.is_variational
    window = autoencoder.window
    n_encoded = float(autoencoder.encoder.input_shape[-1])

    def errors(x, recon, groups, weights_):
        squared = ops.square(recon - x)
        per_feature = squared if groups is None else ops.matmul(squared, groups)
        return per_feature * weights_  # column weights (ones: unchanged) or the memory's scale

    def decode(network, code, limit):
        on, center, precision, radius = limit
        return network(ops.where(on, limit_code(code, center, precision, radius), code),
                       training=False)  # fmt: skip

    def run(x, *values):
        values = list(values)
        scale, limit = values.pop(0), [values.pop(0) for _ in range(4)]
        groups = values.pop(0) if has_groups else None
        encoded = encoder(x, training=False)
        if variational:
            code, log_var = encoded
        else:
            code, log_var = encoded, None
        recon = decode(decoder, code, limit)
        if window > 1:
            x, recon = x[:, -1, :], recon[:, -1, :]
        per_feature = errors(x, recon, groups, scale)
        if second is not None:
            second_scale, second_limit = values.pop(0), [values.pop(0) for _ in range(4)]
            if second_inputs:  # (scale, shift): the second model's own input scaling
                in_scale, in_shift = values.pop(0), values.pop(0)
                x2 = x * in_scale + in_shift
            else:
                x2 = x
            other = decode(second.decoder, second.encoder(x2, training=False), second_limit)
            per_feature = 0.5 * (per_feature + errors(x2, other, groups, second_scale))
            if second_inputs:
                other = (other - in_shift) / in_scale
            recon = 0.5 * (recon + other)
        if memory:  # the nearest normal prototype, a second reconstruction
            memory_rows, memory_scaled_t, memory_norms, memory_scale, keep, rest = values[:6]
            scaled_x = x * values[6] if memory_root else x
            distance = memory_norms[None, :] - 2.0 * ops.matmul(scaled_x, memory_scaled_t)
            nearest = ops.take(memory_rows, ops.argmin(distance, axis=1), axis=0)
            remembered = errors(x, nearest, groups, memory_scale)
            # The prototype's share of the score is ``rest``, the autoencoder(s)' ``keep``.
            per_feature = keep * per_feature + rest * remembered
            recon = keep * recon + rest * nearest
        # The row's error: the (weighted) per-feature errors' sum over the encoded columns,
        # i.e. the MSE when there are no weights.
        row = ops.sum(per_feature, axis=1) / n_encoded
        if include_kl:
            log_var = ops.clip(log_var, -10.0, 10.0)
            kl = -0.5 * ops.sum(1 + log_var - ops.square(code) - ops.exp(log_var), axis=1)
            row = row + kl_weight * kl
        return row, per_feature, code, recon

    # The arithmetic is keras.ops; the one compiled pass per batch is TensorFlow's
    # tf.function (Keras has no backend-neutral way to compile a plain function).
    rows = tf.TensorSpec((None, *autoencoder.encoder.input_shape[1:]), tf.float32)
    return tf.function(run, input_signature=[rows, *specs], autograph=False)


class Scorer:
    """A compiled scoring function for one autoencoder (build once, call per data set).

    The compiled pass depends only on what is computed (the networks, and whether there are
    one-hot groups, a second model, its own input scaling, a memory, a KL term); the numbers
    (column weights, code limits, input scaling, prototypes) are its arguments. So scorers that
    differ only in those numbers share one pass, kept with the autoencoder
    (``Autoencoder.scoring_passes``): the calibration's several scorers cost one tracing.
    """

    def __init__(
        self,
        autoencoder: Autoencoder,
        group_matrix: np.ndarray | None = None,
        *,
        weights: np.ndarray | None = None,
        code_limit: dict | None = None,
        include_kl: bool = False,
        kl_weight: float = 0.0,
        second: Autoencoder | None = None,
        second_weights: np.ndarray | None = None,
        second_code_limit: dict | None = None,
        second_inputs: tuple[np.ndarray, np.ndarray] | None = None,
        memory: tuple | None = None,
    ):
        self.window = autoencoder.window
        self.include_kl = include_kl and autoencoder.is_variational
        variational = autoencoder.is_variational
        if second is not None and (second.window != 1 or second.is_variational or variational):
            raise ValueError("A second model is only scored beside a single-row, plain model.")
        if memory is not None and (self.window != 1 or variational):
            raise ValueError("A memory is only scored beside a single-row, plain model.")
        n_encoded = int(autoencoder.encoder.input_shape[-1])
        self._n_encoded = float(n_encoded)
        n_sources = n_encoded if group_matrix is None else int(np.shape(group_matrix)[1])

        def ones_or(values, size):
            return np.ones(size, np.float32) if values is None else values

        values = [ones_or(weights, n_sources), *_limit_values(code_limit, _code_size(autoencoder))]
        if group_matrix is not None:
            values.append(group_matrix)
        if second is not None:
            values += [ones_or(second_weights, n_sources),
                       *_limit_values(second_code_limit, _code_size(second))]  # fmt: skip
            if second_inputs is not None:
                values += [second_inputs[0], second_inputs[1]]
        memory_root, memory_at = False, len(values)
        if memory is not None:
            prototypes = np.asarray(memory[0], dtype=np.float64)
            root = np.sqrt(np.asarray(memory[1], dtype=np.float64))
            memory_root = not np.all(root == 1.0)
            scaled = prototypes * root
            # The memory's share of the score (an optional 4th item; None: every reconstruction
            # counts the same), and the autoencoders' share, ``keep``.
            n_autoencoders = 1.0 + (second is not None)
            share = memory[3] if len(memory) > 3 else None
            keep = n_autoencoders / (n_autoencoders + 1.0) if share is None else 1.0 - float(share)
            values += [prototypes, scaled.T, np.sum(scaled**2, axis=1), float(memory[2]), keep,
                       1.0 - keep]  # fmt: skip
            if memory_root:
                values.append(root)
        self._values = tuple(
            tf.constant(v, dtype=tf.bool if isinstance(v, bool) else tf.float32) for v in values
        )
        specs = [tf.TensorSpec(v.shape, v.dtype) for v in self._values]
        if memory is not None:  # any number of prototypes
            for position, shape in enumerate(([None, n_encoded], [n_encoded, None], [None])):
                specs[memory_at + position] = tf.TensorSpec(shape, tf.float32)
        structure = (
            id(autoencoder.encoder), id(autoencoder.decoder), group_matrix is not None,
            self.include_kl, float(kl_weight),
            None if second is None else (id(second.encoder), id(second.decoder)),
            second_inputs is not None, memory is not None, memory_root,
        )  # fmt: skip
        passes = autoencoder.scoring_passes
        if structure not in passes:
            passes[structure] = _compile(
                autoencoder, specs,
                has_groups=group_matrix is not None, include_kl=self.include_kl,
                kl_weight=float(kl_weight), second=second,
                second_inputs=second_inputs is not None, memory=memory is not None,
                memory_root=memory_root,
            )  # fmt: skip
        self._pass = passes[structure]

    def _run(self, rows):
        return self._pass(rows, *self._values)

    def trace(self) -> None:
        """Trace the compiled pass now, and run it once on one row of zeros (TensorFlow
        optimises a graph and makes its kernels at its first run): what the first call would
        otherwise pay. See ``trace_ahead``."""
        shape = (1, *self._pass.input_signature[0].shape[1:])
        self._run(tf.zeros(shape, tf.float32))

    def __call__(
        self,
        x: np.ndarray,
        *,
        batch_size: int = SCORE_BATCH,
        latent: bool = True,
        reconstruction: bool = False,
    ) -> ScoreArrays:
        """Score the rows of ``x`` (encoded, float32) in batches, one compiled pass per batch,
        several batches side by side (``scoring_threads``); results are written straight into
        preallocated arrays."""
        x = np.asarray(x, dtype=np.float32)
        n = len(x)
        if n == 0:
            return ScoreArrays(np.zeros(0, np.float32), np.zeros((0, 0), np.float32), None, None)
        inputs = make_windows(x, self.window) if self.window > 1 else x
        cache_rows = max(1_024, SCORE_VALUES // max(int(np.prod(inputs.shape[1:])), 1))
        batch_size = int(max(1, min(batch_size, cache_rows)))
        outputs: list[np.ndarray | None] = [None, None, None, None]
        wanted = (True, True, latent, reconstruction)

        def run_batch(start: int) -> None:
            stop = min(start + batch_size, n)
            results = self._run(tf.constant(np.ascontiguousarray(inputs[start:stop])))
            for position, value in enumerate(results):
                if wanted[position]:
                    outputs[position][start:stop] = value.numpy()

        # The first batch sizes the outputs; the others run side by side (disjoint rows of
        # preallocated arrays), each on one core: the same values as one after the other.
        stop = min(batch_size, n)
        first = self._run(tf.constant(np.ascontiguousarray(inputs[:stop])))
        for position, value in enumerate(first):
            if wanted[position]:
                value = value.numpy()
                outputs[position] = np.empty((n, *value.shape[1:]), dtype=np.float32)
                outputs[position][:stop] = value
        starts = range(stop, n, batch_size)
        pool = _batch_pool() if len(starts) > 1 else None
        if pool is None:
            for start in starts:
                run_batch(start)
        else:
            for future in [pool.submit(run_batch, start) for start in starts]:
                future.result()
        row, per_feature, code, recon = outputs
        _finite_errors(row, per_feature, self._n_encoded)
        return ScoreArrays(
            row_error=row, feature_errors=per_feature, latent=code, reconstruction=recon
        )


def trace_ahead(build: Callable[[], Iterable[Scorer]]) -> Future:
    """Build scorers and trace their compiled passes on a thread of their own, while this
    thread goes on (the detector trains its second network meanwhile, which leaves a core
    free): tracing is Python work of about 0.05-0.1 s a pass, which the scorers' first calls
    would otherwise pay one after the other. The passes are the ones those calls would trace,
    so scores are unchanged. Wait on the returned future before building scorers of the same
    networks (``Autoencoder.scoring_passes`` is filled by the first to build one); it never
    raises: a pass that fails to trace fails again, with its message, where it is called."""

    def run() -> None:
        try:
            for scorer in build():
                scorer.trace()
        except Exception:  # noqa: BLE001  (the first real call raises it again)
            pass

    with _POOL_LOCK:
        global _TRACER
        if _TRACER is None:
            _TRACER = ThreadPoolExecutor(1, thread_name_prefix="aecore-trace")
        return _TRACER.submit(run)


_TRACER: ThreadPoolExecutor | None = None
_POOLS: dict[int, ThreadPoolExecutor] = {}  # this process's scoring threads, by their number
_POOL_LOCK = threading.Lock()
MAX_SCORING_THREADS = 8


def scoring_threads() -> int:
    """How many batches score side by side: the cores (at most ``MAX_SCORING_THREADS``) when
    TensorFlow runs each op on one thread (``aecore`` sets ``TF_NUM_INTRAOP_THREADS=1`` unless it
    was set), else 1 (each op already uses several cores). A process that sized TensorFlow's
    pools (a Dask worker: ``distributed._limit_threads``) gets its inter-op threads."""
    intra = tf.config.threading.get_intra_op_parallelism_threads() or int(
        os.environ.get("TF_NUM_INTRAOP_THREADS", "0") or 0
    )
    if intra != 1:
        return 1
    inter = tf.config.threading.get_inter_op_parallelism_threads()
    return int(max(1, min(MAX_SCORING_THREADS, inter or os.cpu_count() or 1)))


def _batch_pool() -> ThreadPoolExecutor | None:
    threads = scoring_threads()
    if threads <= 1:
        return None
    with _POOL_LOCK:
        if threads not in _POOLS:
            _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="aecore-score")
        return _POOLS[threads]


def _finite_errors(row: np.ndarray, per_feature: np.ndarray, n_encoded: float) -> None:
    """In place: a non-finite per-feature error becomes ``OVERFLOW_ERROR``, and a row with one
    (or with a non-finite error) gets its per-feature errors' sum over the encoded columns,
    so its errors still add up to its score."""
    if np.isfinite(row).all() and np.isfinite(per_feature).all():
        return
    bad = ~np.isfinite(per_feature)
    per_feature[bad] = OVERFLOW_ERROR
    rows = bad.any(axis=1) | ~np.isfinite(row)
    row[rows] = per_feature[rows].sum(axis=1, dtype=np.float64) / n_encoded

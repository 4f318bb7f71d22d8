"""Keras Functional autoencoder builders.

Every architecture is one Keras model ``autoencoder`` (input -> reconstruction) whose nested
sub-models ``encoder`` (input -> code) and ``decoder`` (code -> reconstruction) are reachable by
name, before and after saving. Training-only behaviour (input noise, VAE sampling) sits in the
autoencoder graph outside the encoder, so encoding and scoring are deterministic.
Only built-in layers and the registered layers below are used: the ``.keras`` file loads in
Keras safe mode (no Lambda layers).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import keras
import numpy as np
from keras import layers, ops

from aecore.errors import AecoreError
from aecore.model.defaults import default_hidden_sizes
from aecore.model.settings import check_budget, check_settings

ARCHITECTURES = {
    "linear": "One linear bottleneck and a linear decoder: learns the same subspace as PCA.",
    "dense": "Stacked, symmetric encoder and decoder that compress step by step (the default).",
    "sparse": "Dense, plus an L1 penalty on the code so that few code units are active per row.",
    "denoising": "Dense, trained to rebuild clean rows from noisy copies: robust to small noise.",
    "conv": "Convolutional: 1-D over the feature vector, or 2-D over windows of consecutive rows.",
    "variational": "A variational autoencoder (VAE): a probabilistic code, regularised by KL.",
}


@keras.saving.register_keras_serializable(package="aecore")
class VAESampling(layers.Layer):
    """Draws z ~ N(mean, exp(log_var)) while training (adding the weighted KL term to the loss);
    returns the mean at inference, so scores are deterministic."""

    def __init__(self, kl_weight: float = 1.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.kl_weight = kl_weight
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        z_mean, z_log_var = inputs
        z_log_var = ops.clip(z_log_var, -10.0, 10.0)
        kl = -0.5 * ops.mean(
            ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)
        )
        self.add_loss(self.kl_weight * kl)
        if training:
            noise = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
            return z_mean + ops.exp(0.5 * z_log_var) * noise
        return z_mean

    def get_config(self):
        return {**super().get_config(), "kl_weight": self.kl_weight, "seed": self.seed}


def limit_code(code, center, precision, radius):
    """Codes beyond ``radius`` (Mahalanobis distance from ``center`` under ``precision``) pulled
    back onto that radius; codes inside unchanged. The detector's code limit, applied by the
    Scorer in its compiled pass (the settings are stored as JSON in ``score_calibration_``)."""
    diff = code - center
    distance2 = ops.sum(ops.matmul(diff, precision) * diff, axis=-1, keepdims=True)
    factor = ops.minimum(1.0, radius / ops.sqrt(ops.maximum(distance2, 1e-12)))
    return center + diff * factor


@dataclass
class Autoencoder:
    """The trainable model and its two reachable halves."""

    model: keras.Model
    encoder: keras.Model
    decoder: keras.Model
    architecture: str
    window: int = 1
    # Compiled scoring passes over these networks (``aecore.model.scoring``), by what they
    # compute: a scorer with other weights or limits reuses one instead of tracing its own.
    scoring_passes: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_variational(self) -> bool:
        return self.architecture == "variational"

    def __getstate__(self) -> dict:
        """Without the compiled passes (traced again on next use), so a copy of a detector made
        by scikit-learn's tools (a deep copy, another process) works."""
        return {**self.__dict__, "scoring_passes": {}}

    @classmethod
    def from_model(cls, model: keras.Model, architecture: str, window: int = 1) -> Autoencoder:
        """Rebuild the handle from a loaded autoencoder model."""
        return cls(
            model=model,
            encoder=model.get_layer("encoder"),
            decoder=model.get_layer("decoder"),
            architecture=architecture,
            window=window,
        )

    def inference_model(self) -> keras.Model:
        """input -> (code, reconstruction) in one deterministic pass, sharing weights."""
        inputs = keras.Input(shape=self.encoder.input_shape[1:], name="rows")
        code = self.encoder(inputs)
        if self.is_variational:
            code = code[0]
        return keras.Model(inputs, [code, self.decoder(code)], name="scorer")


class SeededLayers:
    """Layer constructors whose kernels start from their own seeds, so that a network's initial
    weights depend on its seed alone, never on process-wide random state: two analysts' models
    may be built at once in the server's worker threads, where ``keras.utils.set_random_seed``
    would race. Each kernel's seed is the next draw of a private ``random.Random(seed)``: the
    draw an unseeded Keras initializer would take from Python's ``random`` right after
    ``set_random_seed(seed)``, so the weights are those the detector had when it set the
    global seed. Biases start at zero, as Keras's default."""

    def __init__(self, seed: int):
        self.draws = random.Random(int(seed))

    def next_seed(self) -> int:
        return self.draws.randint(1, int(1e9))  # as keras.random.make_default_seed

    def __call__(self, layer_class, *args, **kwargs):
        kwargs.setdefault("kernel_initializer", keras.initializers.GlorotUniform(self.next_seed()))
        return layer_class(*args, **kwargs)


def build_autoencoder(
    architecture: str,
    n_inputs: int,
    *,
    code_size: int,
    hidden_sizes: list[int] | None = None,
    activation: str = "relu",
    l1: float = 1e-4,
    noise_std: float = 0.1,
    dropout: float = 0.0,
    window: int = 1,
    kl_weight: float | None = None,
    seed: int = 0,
) -> Autoencoder:
    """Build an untrained autoencoder for ``n_inputs`` encoded columns.

    ``window > 1`` (``conv`` only) makes inputs windows of ``window`` consecutive rows.
    Settings out of range, and networks whose weights alone exceed the memory budget
    (``aecore.model.settings``), raise ``AecoreError`` before anything is built.
    """
    if architecture not in ARCHITECTURES:
        raise AecoreError(
            f"Unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}."
        )
    if code_size < 1:
        raise AecoreError(f"The code size must be at least 1, got {code_size}.")
    if window > 1 and architecture != "conv":
        raise AecoreError("Windows of consecutive rows need the 'conv' architecture.")
    if hidden_sizes is None:
        hidden_sizes = default_hidden_sizes(n_inputs, code_size)
    check_settings(
        {
            "code_size": code_size, "hidden_sizes": list(hidden_sizes), "activation": activation,
            "l1": l1, "noise_std": noise_std, "dropout": dropout, "kl_weight": kl_weight,
        }
    )  # fmt: skip
    hidden_sizes = [int(h) for h in hidden_sizes]
    # Before any layer exists: a runaway width is refused, not allocated.
    check_budget(architecture, n_inputs, code_size, hidden_sizes, window=window)

    make = SeededLayers(seed)
    if architecture == "linear":
        encoder, decoder = _linear(n_inputs, code_size, make)
    elif architecture == "conv":
        encoder, decoder = _conv(n_inputs, code_size, window, activation, make)
    elif architecture == "variational":
        encoder, decoder = _dense(
            n_inputs, code_size, hidden_sizes, activation, make, variational=True
        )
    else:
        l1_code = l1 if architecture == "sparse" else 0.0
        encoder, decoder = _dense(
            n_inputs, code_size, hidden_sizes, activation, make, l1_code=l1_code
        )

    input_shape = (window, n_inputs) if window > 1 else (n_inputs,)
    inputs = keras.Input(shape=input_shape, name="rows")
    x = inputs
    if architecture == "denoising":
        if noise_std > 0:
            x = layers.GaussianNoise(noise_std, seed=seed, name="input_noise")(x)
        if dropout > 0:
            x = layers.Dropout(dropout, seed=seed, name="input_dropout")(x)
    code = encoder(x)
    if architecture == "variational":
        weight = kl_weight if kl_weight is not None else 1.0 / n_inputs
        code = VAESampling(kl_weight=weight, seed=seed, name="sampling")(code)
    outputs = decoder(code)
    model = keras.Model(inputs, outputs, name=f"{architecture}_autoencoder")
    return Autoencoder(model, encoder, decoder, architecture, window)


def start_from_pca(autoencoder: Autoencoder, rows: np.ndarray, max_rows: int = 50_000) -> bool:
    """Set a linear autoencoder's weights to the PCA solution of ``rows`` (the training rows):
    the encoder projects the centred rows on the leading principal directions and the decoder
    maps back, which is the minimum of the reconstruction MSE that training seeks. Training
    then starts at the optimum (and early stopping keeps it unless it improves on it), so the
    linear model matches PCA with default settings instead of only after a hand-tuned schedule.
    False (nothing changed) for any other architecture or too few rows."""
    if autoencoder.architecture != "linear" or autoencoder.window != 1:
        return False
    rows = np.asarray(rows, dtype=np.float64)
    code_size = int(autoencoder.encoder.output_shape[-1])
    if rows.ndim != 2 or len(rows) < 2 or not np.isfinite(rows).all():
        return False
    if len(rows) > max_rows:
        rows = rows[np.random.default_rng(0).choice(len(rows), max_rows, replace=False)]
    mean = rows.mean(axis=0)
    _, _, vt = np.linalg.svd(rows - mean, full_matrices=False)
    basis = np.zeros((rows.shape[1], code_size))
    k = min(code_size, vt.shape[0])
    basis[:, :k] = vt[:k].T
    encode = autoencoder.encoder.get_layer("code")
    decode = autoencoder.decoder.get_layer("output")
    encode.set_weights([basis.astype(np.float32), (-mean @ basis).astype(np.float32)])
    decode.set_weights([basis.T.astype(np.float32), mean.astype(np.float32)])
    return True


def _linear(n_inputs: int, code_size: int, make) -> tuple[keras.Model, keras.Model]:
    inputs = keras.Input(shape=(n_inputs,))
    code = make(layers.Dense, code_size, name="code")(inputs)
    encoder = keras.Model(inputs, code, name="encoder")
    code_in = keras.Input(shape=(code_size,))
    output = make(layers.Dense, n_inputs, name="output")(code_in)
    decoder = keras.Model(code_in, output, name="decoder")
    return encoder, decoder


def _dense(n_inputs, code_size, hidden_sizes, activation, make, *, l1_code=0.0, variational=False):
    inputs = keras.Input(shape=(n_inputs,))
    x = inputs
    for i, units in enumerate(hidden_sizes):
        x = make(layers.Dense, units, activation=activation, name=f"encode_{i}")(x)
    if variational:
        z_mean = make(layers.Dense, code_size, name="code")(x)
        z_log_var = make(layers.Dense, code_size, name="code_log_var")(x)
        encoder = keras.Model(inputs, [z_mean, z_log_var], name="encoder")
    else:
        regularizer = keras.regularizers.L1(l1_code) if l1_code > 0 else None
        code = make(layers.Dense, code_size, activity_regularizer=regularizer, name="code")(x)
        encoder = keras.Model(inputs, code, name="encoder")
    code_in = keras.Input(shape=(code_size,))
    y = code_in
    for i, units in enumerate(reversed(hidden_sizes)):
        y = make(layers.Dense, units, activation=activation, name=f"decode_{i}")(y)
    decoder = keras.Model(code_in, make(layers.Dense, n_inputs, name="output")(y), name="decoder")
    return encoder, decoder


def _conv(n_inputs: int, code_size: int, window: int, activation: str, make):
    """Two stride-2 convolutions each way; inputs are zero-padded to a multiple of 4 and the
    output is cropped back, so any feature count (and window length) works."""
    pad_f = (-n_inputs) % 4
    padded_f = n_inputs + pad_f
    if window > 1:
        pad_w = (-window) % 4
        padded_w = window + pad_w
        inputs = keras.Input(shape=(window, n_inputs))
        x = layers.Reshape((window, n_inputs, 1))(inputs)
        x = layers.ZeroPadding2D(((0, pad_w), (0, pad_f)))(x)
        x = make(layers.Conv2D, 16, 3, strides=2, padding="same", activation=activation)(x)
        x = make(layers.Conv2D, 32, 3, strides=2, padding="same", activation=activation)(x)
        x = layers.Flatten()(x)
        encoder = keras.Model(inputs, make(layers.Dense, code_size, name="code")(x), name="encoder")
        code_in = keras.Input(shape=(code_size,))
        grid = (padded_w // 4, padded_f // 4, 32)
        y = make(layers.Dense, grid[0] * grid[1] * grid[2], activation=activation)(code_in)
        y = layers.Reshape(grid)(y)
        y = make(layers.Conv2DTranspose, 32, 3, strides=2, padding="same", activation=activation)(y)
        y = make(layers.Conv2DTranspose, 16, 3, strides=2, padding="same", activation=activation)(y)
        y = make(layers.Conv2D, 1, 3, padding="same")(y)
        y = layers.Cropping2D(((0, pad_w), (0, pad_f)))(y)
        outputs = layers.Reshape((window, n_inputs), name="output")(y)
    else:
        inputs = keras.Input(shape=(n_inputs,))
        x = layers.Reshape((n_inputs, 1))(inputs)
        x = layers.ZeroPadding1D((0, pad_f))(x)
        x = make(layers.Conv1D, 16, 3, strides=2, padding="same", activation=activation)(x)
        x = make(layers.Conv1D, 32, 3, strides=2, padding="same", activation=activation)(x)
        x = layers.Flatten()(x)
        encoder = keras.Model(inputs, make(layers.Dense, code_size, name="code")(x), name="encoder")
        code_in = keras.Input(shape=(code_size,))
        y = make(layers.Dense, (padded_f // 4) * 32, activation=activation)(code_in)
        y = layers.Reshape((padded_f // 4, 32))(y)
        y = make(layers.Conv1DTranspose, 32, 3, strides=2, padding="same", activation=activation)(y)
        y = make(layers.Conv1DTranspose, 16, 3, strides=2, padding="same", activation=activation)(y)
        y = make(layers.Conv1D, 1, 3, padding="same")(y)
        y = layers.Cropping1D((0, pad_f))(y)
        outputs = layers.Reshape((n_inputs,), name="output")(y)
    decoder = keras.Model(code_in, outputs, name="decoder")
    return encoder, decoder

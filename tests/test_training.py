"""The training loop: what it reports, and that penalties added by layers are trained."""

import keras
import numpy as np
import pytest

from aecore.model.architectures import build_autoencoder
from aecore.model.training import SharedTraining, train_autoencoder
from tests.helpers import numeric_frame


def _rows(n_rows: int, n_features: int = 6) -> np.ndarray:
    x = numeric_frame(n_rows, n_features).to_numpy(dtype=np.float32)
    return (x - x.mean(axis=0)) / x.std(axis=0)


def test_reported_losses_cover_every_row_including_a_short_last_batch():
    x = _rows(250)  # 250 = 7 x 32 + 26: the last batch is short
    train, val = x[:203], x[203:]
    keras.utils.set_random_seed(0)
    autoencoder = build_autoencoder("dense", 6, code_size=2)
    # A learning rate too small to move the weights: the epoch's loss is the loss of the
    # untrained model on all training rows, and the validation loss on all validation rows.
    history = train_autoencoder(
        autoencoder, train, val, epochs=1, batch_size=32, learning_rate=1e-12
    )
    model = autoencoder.model
    train_mse = float(np.mean((model.predict(train, verbose=0) - train) ** 2))
    val_mse = float(np.mean((model.predict(val, verbose=0) - val) ** 2))
    assert history["loss"][0] == pytest.approx(train_mse, rel=1e-4)
    assert history["val_loss"][0] == pytest.approx(val_mse, rel=1e-4)


def test_a_penalty_added_by_a_layer_is_part_of_training():
    x = _rows(400)
    codes = {}
    for l1 in (0.0, 1.0):
        keras.utils.set_random_seed(0)
        autoencoder = build_autoencoder("sparse", 6, code_size=3, l1=l1)
        history = train_autoencoder(
            autoencoder, x[:300], x[300:], epochs=5, batch_size=32, learning_rate=3e-3
        )
        codes[l1] = float(np.abs(autoencoder.encoder.predict(x, verbose=0)).mean())
        mse = float(np.mean((autoencoder.model.predict(x[300:], verbose=0) - x[300:]) ** 2))
        if l1 > 0:  # the validation loss counts the penalty on top of the reconstruction error
            assert history["val_loss"][-1] > mse
    assert codes[1.0] < 0.5 * codes[0.0]  # the L1 penalty shrank the codes


def test_same_seed_same_model_different_seed_different_shuffles():
    x = _rows(300)
    weights = []
    for seed in (0, 0, 1):
        keras.utils.set_random_seed(0)  # same initial weights every time
        autoencoder = build_autoencoder("dense", 6, code_size=2)
        train_autoencoder(
            autoencoder, x[:240], x[240:], epochs=2, batch_size=16, learning_rate=1e-3, seed=seed
        )
        weights.append(np.concatenate([w.ravel() for w in autoencoder.model.get_weights()]))
    np.testing.assert_array_equal(weights[0], weights[1])
    assert not np.allclose(weights[0], weights[2])


@pytest.mark.parametrize("architecture", ["dense", "denoising"])
def test_a_twin_trained_in_the_first_networks_passes_is_the_same_network(architecture):
    """The detector's second model trains in the first one's compiled passes (no tracing of its
    own): it must come out exactly as if trained alone, and the first must keep its weights."""
    x = _rows(400)
    first_rows, second_rows = x[:300], x[100:]  # the twin learns other rows

    def network(seed):
        return build_autoencoder(architecture, 6, code_size=2, seed=seed)

    def weights(autoencoder):
        return [v.numpy().copy() for v in autoencoder.model.variables]  # seed states too

    settings = dict(epochs=4, batch_size=32, learning_rate=3e-3, patience=2)
    alone = network(1)
    alone_history = train_autoencoder(alone, second_rows[:240], second_rows[240:], **settings)

    shared = SharedTraining()
    first = network(0)
    train_autoencoder(first, first_rows[:240], first_rows[240:], shared=shared, **settings)
    first_weights = weights(first)
    passes = shared._kept[2]
    twin = network(1)
    twin_history = train_autoencoder(
        twin, second_rows[:240], second_rows[240:], shared=shared, **settings
    )

    assert shared._kept[2] is passes  # trained in the first network's passes
    assert passes._train.experimental_get_tracing_count() == 1  # traced once, for both
    for got, want in zip(weights(twin), weights(alone), strict=True):
        np.testing.assert_array_equal(got, want)
    assert twin_history["val_loss"] == alone_history["val_loss"]
    for got, want in zip(weights(first), first_weights, strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_network_of_another_shape_gets_passes_of_its_own():
    x = _rows(300)
    shared = SharedTraining()
    settings = dict(epochs=2, batch_size=32, learning_rate=3e-3)
    train_autoencoder(build_autoencoder("dense", 6, code_size=2), x[:240], x[240:],
                      shared=shared, **settings)  # fmt: skip
    first = shared._kept[2]
    wider = build_autoencoder("dense", 6, code_size=3)
    history = train_autoencoder(wider, x[:240], x[240:], shared=shared, **settings)
    assert shared._kept[2] is not first and shared._kept[1] is wider.model
    assert np.isfinite(history["val_loss"]).all()


def test_a_fit_with_two_models_traces_one_training_pass_and_four_scoring_passes(monkeypatch):
    """What keeps a small fit fast: the second model trains in the first's compiled passes, and
    the calibration's scorers (plain, limited, weighted, paired) share compiled passes."""
    from aecore import AnomalyDetector
    from aecore.model import training

    built = []

    class Counted(training._Steps):
        def __init__(self, *args, **kwargs):
            built.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(training, "_Steps", Counted)
    detector = AnomalyDetector(code_size=2, epochs=3, random_state=0).fit(numeric_frame(300, 6))
    assert detector.second_autoencoder_ is not None and len(built) == 1
    # The first network's passes: alone (plain, limited and weighted), with the second model,
    # and with the second model and the memory; the second network's: alone.
    assert len(detector.autoencoder_.scoring_passes) == 3
    assert len(detector.second_autoencoder_.scoring_passes) == 1

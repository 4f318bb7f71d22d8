"""The compiled scorer: the same numbers as Keras's own predict, whatever the batching."""

import keras
import numpy as np

from aecore.model.architectures import build_autoencoder
from aecore.model.scoring import Scorer


def _model_and_rows(n_rows=103, n_features=5):
    keras.utils.set_random_seed(0)
    autoencoder = build_autoencoder("dense", n_features, code_size=2)
    x = np.random.default_rng(0).normal(size=(n_rows, n_features)).astype(np.float32)
    return autoencoder, x


def test_scores_match_predict_and_do_not_depend_on_the_batch_size():
    autoencoder, x = _model_and_rows()
    reconstruction = autoencoder.model.predict(x, verbose=0)
    squared = (reconstruction - x) ** 2
    scorer = Scorer(autoencoder)
    whole = scorer(x, reconstruction=True)
    in_pieces = scorer(x, batch_size=7, reconstruction=True)  # 103 = 14 x 7 + 5
    np.testing.assert_allclose(whole.row_error, squared.mean(axis=1), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(whole.feature_errors, squared, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(whole.reconstruction, reconstruction, rtol=1e-5, atol=1e-6)
    for name in ("row_error", "feature_errors", "latent", "reconstruction"):
        np.testing.assert_allclose(
            getattr(in_pieces, name), getattr(whole, name), rtol=1e-5, atol=1e-7
        )
    assert scorer(x, latent=False).latent is None


def test_a_weighted_group_matrix_weights_feature_and_row_errors_alike():
    autoencoder, x = _model_and_rows()
    # Encoded columns 0-1 are one source column (e.g. a one-hot pair), 2, 3 and 4 are others;
    # the sources are weighted 2, 1, 0.5 and 1.
    groups = np.zeros((5, 4), dtype=np.float32)
    groups[[0, 1, 2, 3, 4], [0, 0, 1, 2, 3]] = 1.0
    weights = np.array([2.0, 1.0, 0.5, 1.0], dtype=np.float32)
    plain = Scorer(autoencoder, groups)(x)
    weighted = Scorer(autoencoder, groups * weights)(x)
    np.testing.assert_allclose(weighted.feature_errors, plain.feature_errors * weights, rtol=1e-5)
    np.testing.assert_allclose(
        weighted.row_error, weighted.feature_errors.sum(axis=1) / 5, rtol=1e-5
    )
    np.testing.assert_allclose(plain.row_error, plain.feature_errors.sum(axis=1) / 5, rtol=1e-5)


def test_batches_scored_side_by_side_give_the_same_numbers_as_one_after_the_other(
    monkeypatch,
):
    from aecore.model import scoring

    autoencoder, x = _model_and_rows(n_rows=5_000, n_features=6)
    scorer = Scorer(autoencoder)
    monkeypatch.setattr(scoring, "scoring_threads", lambda: 2)
    side_by_side = scorer(x, batch_size=512, reconstruction=True)  # 10 batches, two threads
    assert 2 in scoring._POOLS  # they did run on the pool of two threads
    monkeypatch.setattr(scoring, "scoring_threads", lambda: 1)
    in_turn = scorer(x, batch_size=512, reconstruction=True)
    for name in ("row_error", "feature_errors", "latent", "reconstruction"):
        np.testing.assert_array_equal(getattr(side_by_side, name), getattr(in_turn, name))
    assert np.all(side_by_side.row_error > 0)  # every batch's rows were written


def test_scorers_differing_only_in_weights_or_code_limit_share_one_pass_and_keep_their_numbers():
    autoencoder, x = _model_and_rows()
    weights = np.array([2.0, 1.0, 0.5, 1.0, 3.0], dtype=np.float32)
    limit = {"center": [0.0, 0.0], "precision": [[1.0, 0.0], [0.0, 1.0]], "radius": 0.5}
    plain = Scorer(autoencoder)
    before = plain(x, reconstruction=True)
    weighted = Scorer(autoencoder, weights=weights)(x)
    limited = Scorer(autoencoder, code_limit=limit)(x, reconstruction=True)

    assert len(autoencoder.scoring_passes) == 1  # one compiled pass for all three
    np.testing.assert_array_equal(plain(x).row_error, before.row_error)  # its own numbers
    np.testing.assert_allclose(weighted.feature_errors, before.feature_errors * weights, rtol=1e-6)
    # The limit: codes inside the radius are decoded as they are, those beyond it from the
    # point on the radius in their direction; the code reported is the network's own.
    np.testing.assert_array_equal(limited.latent, before.latent)
    norms = np.linalg.norm(before.latent, axis=1)
    inside, outside = norms < 0.45, norms > 0.55
    assert inside.any() and outside.any()
    np.testing.assert_array_equal(limited.reconstruction[inside], before.reconstruction[inside])
    pulled = before.latent[outside] * (0.5 / norms[outside])[:, None]
    expected = autoencoder.decoder.predict(pulled, verbose=0)
    np.testing.assert_allclose(limited.reconstruction[outside], expected, rtol=1e-4, atol=1e-5)


def test_a_pass_traced_ahead_on_another_thread_is_the_one_later_calls_use():
    from aecore.model.scoring import trace_ahead

    autoencoder, x = _model_and_rows()
    assert not autoencoder.scoring_passes
    weights = np.array([2.0, 1.0, 0.5, 1.0, 1.0], dtype=np.float32)
    assert trace_ahead(lambda: [Scorer(autoencoder, weights=weights)]).result() is None
    (traced,) = autoencoder.scoring_passes.values()
    assert traced.experimental_get_tracing_count() == 1
    # A scorer with other numbers built afterwards runs the pass traced ahead, without tracing
    # again, and scores what a pass traced on first call scores.
    scorer = Scorer(autoencoder)
    assert scorer._pass is traced
    scores = scorer(x, reconstruction=True)
    assert traced.experimental_get_tracing_count() == 1
    reconstruction = autoencoder.model.predict(x, verbose=0)
    np.testing.assert_allclose(scores.row_error, ((reconstruction - x) ** 2).mean(axis=1),
                               rtol=1e-5, atol=1e-7)  # fmt: skip


def test_tracing_ahead_never_raises():
    from aecore.model.scoring import trace_ahead

    def broken():
        raise ValueError("no such network")

    assert trace_ahead(broken).result() is None

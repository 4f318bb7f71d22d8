"""Runaway and out-of-range settings (issue 14, item 3): refused with one AecoreError before
Keras builds anything, in the API, the CLI and the Train page alike."""

import numpy as np
import pandas as pd
import pytest

from aecore import cli
from aecore.detector import AnomalyDetector
from aecore.errors import AecoreError
from aecore.model import architectures, settings

HUGE = [40000, 40000]


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.normal(size=(120, 6)), columns=[f"x{i}" for i in range(6)])


@pytest.fixture
def never_built(monkeypatch):
    """Fail the test if any Keras model gets built."""

    def refuse(*args, **kwargs):
        raise AssertionError("Keras was asked to build the network")

    monkeypatch.setattr(AnomalyDetector, "_build", refuse)
    for builder in ("_dense", "_linear", "_conv"):
        monkeypatch.setattr(architectures, builder, refuse)


@pytest.mark.parametrize(
    "architecture, n_inputs, code_size, hidden, window",
    [("dense", 7, 2, [16, 4], 1), ("linear", 9, 3, None, 1), ("variational", 10, 2, [8], 1),
     ("sparse", 5, 2, None, 1), ("conv", 7, 3, None, 1), ("conv", 6, 3, None, 5)],
)  # fmt: skip
def test_the_estimate_counts_the_weights_keras_builds(architecture, n_inputs, code_size, hidden,
                                                      window):  # fmt: skip
    built = architectures.build_autoencoder(
        architecture, n_inputs, code_size=code_size, hidden_sizes=hidden, window=window
    )
    estimate = settings.estimate_memory(architecture, n_inputs, code_size, hidden, window=window)
    assert estimate.parameters == built.model.count_params()


def test_huge_widths_are_refused_with_the_estimate_and_the_budget_before_building(
    frame, never_built
):
    with pytest.raises(AecoreError) as error:
        AnomalyDetector(hidden_sizes=HUGE, epochs=1).fit(frame)
    message = str(error.value)
    assert "GB of memory" in message and "budget of 1.0 GB" in message
    assert "AECORE_MAX_MODEL_MB" in message and "3,20" in message  # ~3.2 billion weights


def test_build_autoencoder_itself_refuses_a_network_over_budget(never_built):
    with pytest.raises(AecoreError, match="budget"):
        architectures.build_autoencoder("dense", 6, code_size=2, hidden_sizes=HUGE)


def test_the_budget_is_set_by_the_environment(frame, never_built, monkeypatch):
    monkeypatch.setenv("AECORE_MAX_MODEL_MB", "0.01")
    with pytest.raises(AecoreError, match=r"budget of 10\.2 KB"):
        AnomalyDetector(hidden_sizes=[64, 32], epochs=1).fit(frame)
    monkeypatch.setenv("AECORE_MAX_MODEL_MB", "lots")
    with pytest.raises(AecoreError, match="AECORE_MAX_MODEL_MB must be a number"):
        AnomalyDetector(epochs=1).fit(frame)


@pytest.mark.parametrize(
    "params, named",
    [({"architecture": "denoising", "noise_std": 2.0}, "input noise"),
     ({"architecture": "denoising", "dropout": 1.0}, "input dropout"),
     ({"epochs": 0}, "Epochs"), ({"batch_size": 0}, "batch size"),
     ({"learning_rate": 0.0}, "learning rate"), ({"learning_rate": float("nan")}, "learning rate"),
     ({"patience": 0}, "patience"), ({"code_size": 0}, "code size"),
     ({"hidden_sizes": []}, "Hidden layer widths"), ({"hidden_sizes": [8, 0]}, "hidden layer"),
     ({"activation": "bogus"}, "activation"), ({"architecture": "sparse", "l1": -1.0}, "L1"),
     ({"architecture": "conv", "window": 0}, "window"), ({"window": 3}, "'conv'"),
     ({"architecture": "variational", "kl_weight": -1.0}, "KL weight"),
     ({"random_state": -1}, "random seed"), ({"threshold_method": "median"}, "threshold method"),
     ({"validation_share": 1.0}, "validation share")],
)  # fmt: skip
def test_every_setting_out_of_range_is_named_before_anything_is_built(
    frame, never_built, params, named
):
    with pytest.raises(AecoreError, match=named):
        AnomalyDetector(**params).fit(frame)


def test_noise_above_one_in_the_builder_is_our_error_not_keras():
    with pytest.raises(AecoreError, match="between 0 and 1"):
        architectures.build_autoencoder("denoising", 6, code_size=2, noise_std=2.0)


def test_settings_in_range_still_train(frame):
    detector = AnomalyDetector(
        architecture="denoising", noise_std=1.0, dropout=0.5, hidden_sizes=[8], code_size=2,
        epochs=2,
    ).fit(frame)  # fmt: skip
    assert np.isfinite(detector.reconstruction_error(frame)).all()


@pytest.mark.parametrize(
    "extra, message",
    [(["--hidden-sizes", "40000,40000"], "budget of 1.0 GB"),
     (["--architecture", "denoising", "--noise-std", "2"], "input noise"),
     (["--learning-rate", "0"], "learning rate"), (["--hidden-sizes", "big"], "whole numbers")],
)  # fmt: skip
def test_the_cli_refuses_bad_settings_in_one_line(tmp_path, frame, capsys, extra, message):
    frame.to_csv(tmp_path / "rows.csv", index=False)
    args = ["train", str(tmp_path / "rows.csv"), "--name", "x", "--epochs", "1", "--quiet",
            "--models-dir", str(tmp_path / "models"), *extra]  # fmt: skip
    try:
        code = cli.main(args)
    except SystemExit as stop:  # argparse's own errors
        code = stop.code
    assert code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not (tmp_path / "models").exists()


def test_the_train_page_shows_the_budget_message_and_starts_nothing(models_dir, monkeypatch):
    from tests.pages_support import no_exception, open_app, widget
    from ui import state

    monkeypatch.setattr(AnomalyDetector, "_build", lambda *a, **k: pytest.fail("built"))
    at = open_app("train")
    widget(at.text_input, "Hidden layer widths").set_value("40000, 40000").run()
    no_exception(at)
    assert any("budget of 1.0 GB" in w.value for w in at.warning)
    at.button(key="train_submit").click().run()
    no_exception(at)
    assert any("budget of 1.0 GB" in e.value for e in at.error)
    assert at.session_state[state.JOB] is None
    assert len(at.session_state[state.DATA_FRAME]) == 4000  # nothing loaded is lost


def test_the_train_page_offers_noise_from_0_to_1(models_dir):
    from tests.pages_support import open_app, widget

    at = open_app("train")
    at.radio(key="train_architecture").set_value("denoising").run()
    noise = widget(at.number_input, "Input noise (std)")
    assert (noise.min, noise.max) == (0.0, 1.0)

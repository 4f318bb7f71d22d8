"""Issue 13, items 5 and 6: session state never shown as current for other data, and the Train
page trains the model the CLI and Python train, with the schedule it shows.

Small seeded frames and the detector's automatic schedule (no epoch cap set by hand), so the
parity test runs the real defaults; the batch-size boundary is lowered so that it falls between
80% of all rows and the normal training rows, where the page used to pick another batch size.
"""

import numpy as np
import pandas as pd
import pytest

import aecore
from aecore.cli import main
from aecore.detector import AnomalyDetector
from aecore.io import reader
from aecore.model import defaults
from aecore.model.training import EpochProgress
from tests.pages_support import no_exception, open_app, wait_for, widget
from ui import jobs, state


def labelled_frame(n: int = 500, seed: int = 0) -> pd.DataFrame:
    """Three correlated numeric columns and a 0/1 label, 30% anomalies (shifted rows)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=n)
    frame = pd.DataFrame(
        {
            "a": base + 0.1 * rng.normal(size=n),
            "b": 2 * base + 0.1 * rng.normal(size=n),
            "c": rng.normal(size=n),
        }
    )
    label = (rng.random(n) < 0.3).astype(int)
    frame.loc[label == 1, "c"] += 4.0
    frame["label"] = label
    return frame


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def upload(at, name: str, payload: bytes) -> None:
    at.switch_page("app_pages/data.py").run()
    at.file_uploader(key="data_upload").set_value((name, payload, "text/csv")).run()
    no_exception(at)
    assert at.session_state[state.DATA_NAME] == name


def schedule_caption(at) -> str:
    return next(c.value for c in at.caption if c.value.startswith("Will train on"))


# ---------------------------------------------------------------- 6. the schedule


def test_the_planned_schedule_is_the_one_fit_uses_for_the_rows_that_train():
    frame = labelled_frame()
    plan = AnomalyDetector().planned_schedule(frame)
    normal_train = AnomalyDetector(epochs=1).fit(frame).n_train_rows_
    assert plan["n_train_rows"] == normal_train < int(0.8 * len(frame))  # normal rows only
    assert plan["trained_on"] == "normal" and plan["models"] == 1
    expected = defaults.default_training(normal_train, plan["n_inputs"])
    assert {k: plan[k] for k in expected} == expected
    assert plan["automatic"] == ["epochs", "batch_size", "learning_rate", "patience"]

    unlabelled = frame.drop(columns="label")
    both = AnomalyDetector().planned_schedule(unlabelled)
    assert both["trained_on"] == "all" and both["models"] == 2  # a second model shares it
    assert both["epochs"] == defaults.default_training(both["n_train_rows"], 3, models=2)["epochs"]

    mine = AnomalyDetector(batch_size=32, patience=9).planned_schedule(frame)
    assert (mine["batch_size"], mine["patience"]) == (32, 9)
    assert mine["automatic"] == ["epochs", "learning_rate"]
    assert "batches of 32 (set by you)" in jobs.schedule_text(mine)


def test_dashboard_cli_and_python_train_the_same_model(models_dir, tmp_path, monkeypatch):
    """The same data, roles, settings and seed: the same epochs and the same scores."""
    frame = labelled_frame()
    source = tmp_path / "parity.csv"
    source.write_bytes(csv_bytes(frame))
    # 80% of all rows (400) is above the boundary, the normal training rows (about 280) below:
    # a schedule computed for all rows would train with batches of 256, the detector's with 128.
    monkeypatch.setattr(defaults, "SMALL_ROWS", 300)

    at = open_app()
    upload(at, "parity.csv", source.read_bytes())
    at.switch_page("app_pages/train.py").run()
    no_exception(at)
    shown = schedule_caption(at)
    for field in ("Epochs (at most)", "Batch size", "Learning rate", "Early-stopping patience"):
        assert widget(at.number_input, field).value is None  # automatic until set
    at.button(key="train_submit").click().run()
    page_model = wait_for(at, state.JOB).detector

    assert main(["train", str(source), "--name", "parity", "--models-dir", str(tmp_path),
                 "--quiet"]) == 0  # fmt: skip
    cli_model = aecore.load("parity", models_dir=tmp_path)
    python_model = AnomalyDetector().fit(reader.read_csv(source))

    rows = python_model.n_train_rows_
    assert rows < 300 and python_model.training_["batch_size"] == 128
    assert f"Will train on {rows:,} rows" in shown and "batches of 128," in shown
    assert f"at most {python_model.training_['epochs']} epochs" in shown
    epochs = python_model.history_["epochs_run"]
    assert python_model.history_["stopped_early"]
    scores = python_model.reconstruction_error(frame)
    for other in (page_model, cli_model):
        assert other.training_ == python_model.training_
        assert other.n_train_rows_ == rows
        assert other.history_["epochs_run"] == epochs
        assert np.allclose(other.reconstruction_error(frame), scores, rtol=1e-4, atol=1e-7)
        assert other.threshold_ == pytest.approx(python_model.threshold_, rel=1e-4)


def test_progress_counts_the_model_training_now():
    """A first model of 49 epochs then a second one: 'epoch 3 of at most 49', not 52 of 49."""

    def report(epoch, stage):
        return EpochProgress(epoch, 49, 1.0, 1.0, 0.0, epoch, stage=stage)

    progress = [report(e, "first") for e in range(1, 50)]
    assert jobs.epoch_status(progress).text() == "epoch 49 of at most 49"
    progress += [report(e, "second") for e in range(1, 4)]
    assert jobs.epoch_status(progress).text() == "second model: epoch 3 of at most 49"
    assert jobs.epoch_status([]) is None


def test_the_few_labels_progress_never_exceeds_its_cap(models_dir):
    at = open_app("few_labels")
    task = jobs.Task(kind="compare", title="Comparing label budgets")
    task.messages.append("Pre-training the autoencoder on every row (labels ignored)")
    task.progress.extend(
        EpochProgress(e, 49, 1.0, 1.0, 0.0, e, stage=stage)
        for stage, last in (("first", 49), ("second", 49))
        for e in range(1, last + 1)
    )
    at.session_state[state.FEW_LABELS_TASK] = task
    try:
        at.run()
        texts = [p.proto.text for p in at.get("progress")]
        assert any("second model: epoch 49 of at most 49" in t for t in texts), texts
        assert not any("98" in t for t in texts)
    finally:
        task.status = "cancelled"


# ---------------------------------------------------------------- 5. stale state


def test_after_new_data_the_train_page_never_calls_the_old_model_current(models_dir):
    at = open_app()
    upload(at, "first_data.csv", csv_bytes(labelled_frame(200, seed=1)))
    at.switch_page("app_pages/train.py").run()
    widget(at.number_input, "Epochs (at most)").set_value(2)
    widget(at.text_input, "Hidden layer widths").set_value("8")
    at.button(key="train_submit").click().run()
    wait_for(at, state.JOB)
    assert any("It is now the current model" in s.value for s in at.success)
    assert widget(at.text_input, "Name").value == "first_data-dense"

    upload(at, "second_data.csv", csv_bytes(labelled_frame(200, seed=2)))
    at.switch_page("app_pages/train.py").run()
    no_exception(at)
    assert not any("It is now the current model" in s.value for s in at.success)
    assert any(
        "trained on **first_data.csv**, not on the data loaded now (**second_data.csv**)"
        in i.value
        for i in at.info
    )
    name = widget(at.text_input, "Name").value
    assert name == "first_data-dense", "the save name names the data the model learnt"
    assert "second_data" not in name


def test_the_models_page_warns_when_the_picked_model_cannot_score_the_data(models_dir):
    at = open_app("models")
    no_exception(at)
    assert not any("cannot score" in w.value for w in at.warning)  # the sample fits the demo
    upload(at, "other.csv", b"x,y\n" + b"".join(f"{i},{i % 5}\n".encode() for i in range(40)))
    at.switch_page("app_pages/models.py").run()
    no_exception(at)
    warning = next(w.value for w in at.warning if "cannot score" in w.value)
    assert "**other.csv**" in warning and "srv1_cpu_temp_c" in warning

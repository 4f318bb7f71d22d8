"""Issue 13, part 3, on the pages: the Drift page tells a batch full of anomalies from a changed
normal, and the Drift and Models pages describe a retrained model with the same sentence."""

import numpy as np
import pandas as pd

from aecore import datasets, store
from aecore.workflows import retraining
from tests.pages_support import DEMO, ROOT, no_exception, open_app, wait_for
from ui import state


def _attack_heavy_csv() -> bytes:
    """Fresh normal minutes of the rack (the training data's behaviour), 45% of them attacked:
    eight srv3/srv4 sensors pushed six standard deviations up."""
    training = pd.read_csv(ROOT / "sample_data" / "server_metrics.csv")
    fresh = datasets.server_metrics(seed=2, n_rows=1000, start=datasets.day_after(training))
    batch = fresh[fresh["label"] == 0].reset_index(drop=True)
    columns = [c for c in batch.columns if c.startswith(("srv3_", "srv4_"))][:8]
    batch = batch.astype({c: float for c in columns})
    attacked = np.random.default_rng(0).choice(len(batch), int(0.45 * len(batch)), replace=False)
    for column in columns:
        batch.loc[attacked, column] += 6 * batch[column].std()
    batch.loc[attacked, "label"] = 1
    return batch.to_csv(index=False).encode()


def test_drift_page_says_an_attack_heavy_batch_holds_anomalies_not_drift(models_dir):
    at = open_app("drift")
    at.radio(key="drift_source").set_value("upload").run()
    at.file_uploader(key="drift_upload").set_value(
        ("attacks.csv", _attack_heavy_csv(), "text/csv")
    ).run()
    no_exception(at)
    report = at.session_state[state.DRIFT_REPORT][1]
    assert report.verdict == "stable" and report.many_anomalies, report.evidence
    headers = " ".join(h.value for h in at.header)
    assert "many anomalies" in headers and "drifted" not in headers
    assert any("no retraining is needed" in w.value for w in at.warning)


def test_drift_and_models_pages_describe_a_retrained_model_the_same_way(models_dir):
    at = open_app("drift")  # the drift sample, checked with the demo model
    at.radio(key="drift_mode").set_value("fine_tune")
    at.number_input(key="drift_epochs").set_value(2)
    at.button(key="drift_retrain_submit").click().run()
    no_exception(at)
    wait_for(at, state.DRIFT_TASK)
    no_exception(at)

    meta = store.read_meta(DEMO, models_dir=models_dir)
    sentence = retraining.describe_training(meta)
    record = meta["retraining"]
    assert record["batch"] == "server_metrics_drift.csv" and record["from_model"] == DEMO
    batch = pd.read_csv(ROOT / "sample_data" / "server_metrics_drift.csv")
    assert record["rows"] == int((batch["label"] == 0).sum()), "only rows labelled normal"
    assert f"{record['left_out']:,} rows left out" in sentence
    assert any(sentence in s.value for s in at.success), [s.value for s in at.success]

    at.switch_page("app_pages/models.py").run()
    no_exception(at)
    assert at.selectbox(key="models_name").value == DEMO
    shown = [m.value for m in at.markdown if "How it was trained" in m.value]
    assert shown and sentence in shown[0], shown
    assert not any("rows (normal)" in m.value for m in at.markdown)

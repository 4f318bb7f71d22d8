"""Every scored page names rows the way the export does (``source_row``: the row's number in the
file, header = row 1) and carries the id columns; Explain's detail table shows model units.

AppTest on the embedded default data with the tiny demo model of ``tests/conftest.py``.
"""

import dataclasses

import numpy as np
import pandas as pd

import aecore
from aecore import store
from aecore.evaluation.explain import row_detail
from aecore.io import reader
from aecore.workflows import export
from tests.pages_support import DEMO, no_exception, open_app
from ui import state


def scored(at):
    return at.session_state[state.SCORED][1]


def frames(at) -> list[pd.DataFrame]:
    return [d.value for d in at.dataframe]


def exported(result, threshold: float, ids=()) -> pd.DataFrame:
    scores = dataclasses.replace(
        result.scores, flags=result.flags(threshold).astype(np.int8), threshold=float(threshold)
    )
    return export.export_frame(result.frame, scores, model_name="m", id_columns=list(ids))


def test_explain_names_the_row_as_the_export_does_and_shows_model_units(models_dir):
    at = open_app("explain")
    no_exception(at)
    result, threshold = scored(at), at.session_state[state.THRESHOLD]
    chosen = at.selectbox(key="explain_row")
    position = int(chosen.value)
    first = exported(result, threshold).iloc[0]
    assert int(first["source_row"]) == position + 2  # the header is row 1
    assert chosen.options[0].startswith(f"row {int(first['source_row'])} ")
    # The export's source_row finds the same values in the input as Explain shows.
    row = result.frame.iloc[int(first["source_row"]) - 2]
    assert (row == first[result.frame.columns]).all()
    assert any(f"of row {position + 2}," in m.value for m in at.markdown)
    shown = next(f for f in frames(at) if "in model units" in f.columns)
    for column in ("in original units", "squared difference", "weight", "error"):
        assert column in shown.columns
    assert np.allclose(shown["weight"] * shown["squared difference"], shown["error"],
                       rtol=1e-5, atol=1e-9)  # fmt: skip
    detector = aecore.load(DEMO, models_dir=models_dir)  # the model the page uses
    detail = row_detail(detector, result.frame, position)
    first_feature = detail.index[0]
    assert shown.loc[first_feature, "in model units"] == (
        f"{detail.loc[first_feature, 'input (model units)']:.3g} → "
        f"{detail.loc[first_feature, 'reconstruction (model units)']:.3g}"
    )
    assert any("small error" in m.value or "carries" in m.value for m in at.markdown)
    # The row's error and its feature errors agree: they add up to it.
    n_columns = detector.preprocessor_.n_encoded
    row_error = float(result.errors[position])
    assert np.isclose(shown["error"].sum(), row_error, rtol=1e-4)  # they add up to the error
    assert any(f"mean over the model's {n_columns} input columns" in c.value
               for c in at.caption)  # fmt: skip


def test_threshold_and_export_pages_carry_source_row_and_the_id_columns(models_dir):
    at = open_app("threshold")
    roles = at.session_state[state.ROLES]
    at.session_state[state.ROLES] = dataclasses.replace(roles, ids=["timestamp"])
    at.run()
    no_exception(at)
    result, threshold = scored(at), at.session_state[state.THRESHOLD]
    table = next(f for f in frames(at) if "source_row" in f.columns)
    assert list(table.columns[:2]) == ["source_row", "timestamp"]
    top = exported(result, threshold, ids=["timestamp"]).head(len(table))
    assert table["source_row"].tolist() == top["source_row"].tolist()
    assert table["timestamp"].tolist() == top["timestamp"].tolist()

    at.switch_page("app_pages/export.py").run()
    no_exception(at)
    preview = next(f for f in frames(at) if "source_row" in f.columns)
    assert list(preview.columns[:2]) == ["source_row", "timestamp"]
    found = result.frame.iloc[preview["source_row"].to_numpy() - 2]
    assert found["timestamp"].tolist() == preview["timestamp"].tolist()

    at.switch_page("app_pages/explain.py").run()
    no_exception(at)
    assert at.selectbox(key="explain_row").options[0].startswith(
        f"row {int(top['source_row'].iloc[0])} (timestamp={top['timestamp'].iloc[0]})"
    )


def test_explain_shows_both_autoencoders_of_a_model_trained_without_labels(tmp_path, monkeypatch):
    from aecore.detector import AnomalyDetector
    from tests.pages_support import ROOT

    frame = reader.read_csv(ROOT / "sample_data" / "server_metrics.csv").iloc[:1500]
    detector = AnomalyDetector(
        epochs=2, batch_size=256, code_size=3, hidden_sizes=[16], roles={"timestamp": "time",
        "label": "ignore"},
    ).fit(frame)  # fmt: skip
    assert detector.second_autoencoder_ is not None
    store.save(detector, DEMO, models_dir=tmp_path)
    monkeypatch.setenv("AECORE_MODELS_DIR", str(tmp_path))
    at = open_app("explain")
    no_exception(at)
    pair = next(f for f in frames(at) if "weight, model 2" in f.columns)
    parts = sum(  # two autoencoders and the nearest prototype, a third each
        share * pair[f"weight, {m}"] * pair[f"squared difference, {m}"]
        for m, share in (("model 1", 1 / 3), ("model 2", 1 / 3), ("nearest prototype", 1 / 3))
    )
    assert np.allclose(parts, pair["error"], rtol=1e-5, atol=1e-9)
    assert any("The reconstructions, column by column" in e.label for e in at.expander)
    assert any("nearest normal prototype" in c.value for c in at.caption)


def test_explain_gives_the_prototypes_share_of_a_model_trained_on_known_normal_rows(
    tmp_path, monkeypatch
):
    from aecore.detector import AnomalyDetector
    from tests.pages_support import ROOT

    frame = reader.read_csv(ROOT / "sample_data" / "server_metrics.csv").iloc[:1500]
    detector = AnomalyDetector(
        epochs=2, batch_size=256, code_size=3, hidden_sizes=[16], roles={"timestamp": "time"},
    ).fit(frame)  # fmt: skip
    assert detector.trained_on_ == "normal"
    assert detector.score_calibration_["memory"]["share"] == 0.75
    store.save(detector, DEMO, models_dir=tmp_path)
    monkeypatch.setenv("AECORE_MODELS_DIR", str(tmp_path))
    at = open_app("explain")
    no_exception(at)
    table = next(f for f in frames(at) if "weight, nearest prototype" in f.columns)
    parts = sum(  # a quarter the autoencoder's, three quarters the nearest prototype's
        share * table[f"weight, {m}"] * table[f"squared difference, {m}"]
        for m, share in (("model 1", 0.25), ("nearest prototype", 0.75))
    )
    assert np.allclose(parts, table["error"], rtol=1e-5, atol=1e-9)
    caption = next(c.value for c in at.caption if "nearest **normal prototype**" in c.value)
    assert "25% the autoencoder's error and 75% the error" in caption
    assert "error = 25% × weight 1 × squared diff. 1 + 75% × weight p" in caption
    assert "/ 2" not in caption

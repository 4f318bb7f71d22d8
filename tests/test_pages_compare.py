"""The Threshold page's "Beside classical detectors" panel, driven with Streamlit's AppTest on
the embedded default data and the tiny demo model of ``tests/conftest.py``: fitted only when
asked for, then shown at every threshold without fitting again; a few rows get a message."""

from tests.pages_support import no_exception, open_app
from ui import state


def frames(at) -> list:
    return [d.value for d in at.dataframe]


def metric_labels(at) -> list[str]:
    return [m.label for m in at.metric]


def test_the_comparison_runs_on_demand_and_lists_the_disagreeing_rows(models_dir):
    at = open_app("threshold")
    no_exception(at)
    assert not any(label.startswith("Rank correlation") for label in metric_labels(at))
    assert at.session_state[state.CLASSICAL] is None  # nothing fitted before the button
    threshold = at.session_state[state.THRESHOLD]

    at.button(key="compare_classical").click().run()
    no_exception(at)
    labels = metric_labels(at)
    assert labels.count("Rank correlation") == 2 and labels.count("Shared flags") == 2
    assert {"**IsolationForest**", "**k-NN distance**"} <= {m.value for m in at.markdown}
    assert any(m.value.startswith("Over all 4,000 rows") for m in at.markdown)
    assert any("fitted on 4,000 rows (every row of this data" in c.value for c in at.caption)
    assert at.session_state[state.THRESHOLD] == threshold  # the comparison moves nothing
    tables = [f for f in frames(at) if "IsolationForest rank" in f.columns]
    assert len(tables) == 2 and all(t.columns[0] == "source_row" for t in tables)
    flagged = set(at.session_state[state.SCORED][1].ranked_flagged(threshold) + 2)
    only_forest, only_autoencoder = tables
    assert not set(only_forest["source_row"]) & flagged  # ranked high, not flagged
    assert set(only_autoencoder["source_row"]) <= flagged
    assert any(chart.proto.id and "classical_chart" in chart.proto.id
               for chart in at.get("plotly_chart"))  # fmt: skip

    fitted = at.session_state[state.CLASSICAL]
    at.radio(key="classical_detector").set_value("knn").run()
    at.button(key="set_percentile").click().run()  # a new threshold: compared, not fitted again
    no_exception(at)
    assert at.session_state[state.CLASSICAL] is fitted
    assert [f for f in frames(at) if "k-NN distance rank" in f.columns]


def test_a_few_rows_get_a_message_not_a_crash(models_dir):
    at = open_app("threshold")
    frame = at.session_state[state.DATA_FRAME]
    at.session_state[state.DATA_FRAME] = frame.head(6)
    at.session_state[state.DATA_KEY] = "six-rows"
    at.run()
    no_exception(at)
    at.button(key="compare_classical").click().run()
    no_exception(at)
    assert any("at least 10 rows" in w.value for w in at.warning)
    assert at.session_state[state.CLASSICAL] is None

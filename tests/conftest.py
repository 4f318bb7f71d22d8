import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """A models folder (``AECORE_MODELS_DIR``) holding a tiny demo model trained here in two
    epochs, and a spare one to delete, so the page tests neither need nor touch ``models/``."""
    from aecore import store
    from aecore.detector import AnomalyDetector
    from aecore.io import reader
    from tests.pages_support import DEMO, ROOT

    folder = tmp_path_factory.mktemp("models")
    frame = reader.read_csv(ROOT / "sample_data" / "server_metrics.csv")
    detector = AnomalyDetector(
        epochs=2, batch_size=256, code_size=3, hidden_sizes=[16], split="chronological",
        test_share=0.25, roles={"timestamp": "time", "label": "label"},
    ).fit(frame)  # fmt: skip
    store.save(detector, DEMO, models_dir=folder)
    store.save(detector, "spare-model", models_dir=folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AECORE_MODELS_DIR", str(folder))
        yield folder

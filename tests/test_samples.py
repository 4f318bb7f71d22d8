"""The sample datasets: deterministic, shaped as documented, anomalies planted where promised."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier

from aecore import AecoreError, datasets

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "sample_data"
SMALL = {
    "gaussian": lambda seed: datasets.gaussian(seed=seed),
    "network_flows": lambda seed: datasets.network_flows(seed=seed, n_rows=1200),
    "categorical_sequences": lambda seed: datasets.categorical_sequences(seed=seed, n_rows=3000),
    "server_metrics": lambda seed: datasets.server_metrics(seed=seed, n_rows=600),
    "server_metrics_drift": lambda seed: datasets.server_metrics(seed=seed, n_rows=600, drift=True),
    "intrusion_train": lambda seed: datasets.intrusion_log(seed=seed, n_rows=600),
    "intrusion_test": lambda seed: datasets.intrusion_log(
        seed=seed, n_rows=600, attack_share=0.7, new_attacks=True
    ),
}


@pytest.fixture(scope="module")
def flows() -> pd.DataFrame:
    return datasets.network_flows(seed=0)


@pytest.fixture(scope="module")
def metrics() -> pd.DataFrame:
    return datasets.server_metrics(seed=0)


def _runs(labels: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of every run of consecutive 1s."""
    padded = np.r_[0, labels.astype(int), 0]
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2], edges[1::2], strict=True))


@pytest.mark.parametrize("name", list(SMALL))
def test_same_seed_same_frame_other_seed_other_frame(name):
    make = SMALL[name]
    pd.testing.assert_frame_equal(make(3), make(3))
    assert not make(3).equals(make(4))


def test_committed_csvs_are_what_write_all_writes(tmp_path):
    written = datasets.write_all(tmp_path)
    assert sorted(path.name for path in written) == sorted(
        sample.filename for sample in datasets.SAMPLES.values()
    )
    for path in written:
        committed = SAMPLE_DIR / path.name
        assert committed.exists(), f"{path.name} is missing: run python sample_data/generate.py"
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert hashlib.sha256(committed.read_bytes()).hexdigest() == digest, (
            f"sample_data/{path.name} is stale: run python sample_data/generate.py"
        )
    assert (SAMPLE_DIR / "server_metrics.csv").stat().st_size < 4_000_000


def test_generate_script_writes_into_the_folder_given(tmp_path):
    out = tmp_path / "fresh"
    subprocess.run(
        [sys.executable, str(SAMPLE_DIR / "generate.py"), "--out", str(out)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    assert sorted(path.name for path in out.glob("*.csv")) == sorted(
        sample.filename for sample in datasets.SAMPLES.values()
    )


def test_every_sample_declares_roles_for_exactly_its_columns():
    frames = {
        "gaussian": datasets.gaussian(),
        "network_flows": datasets.network_flows(n_rows=600),
        "categorical_sequences": datasets.categorical_sequences(n_rows=100, n_anomalies=1),
        "server_metrics": datasets.server_metrics(n_rows=300),
        "server_metrics_drift": datasets.server_metrics(n_rows=300, drift=True),
        "intrusion_train": datasets.intrusion_log(n_rows=300),
        "intrusion_test": datasets.intrusion_log(n_rows=300, attack_share=0.7, new_attacks=True),
    }
    for name, frame in frames.items():
        roles = datasets.SAMPLES[name].roles()
        assert sorted(roles.named) == sorted(frame.columns), name


# --- gaussian ---------------------------------------------------------------------------------


def test_gaussian_has_50_shuffled_far_off_anomalies():
    frame = datasets.gaussian()
    assert frame.shape == (1050, 21)
    assert list(frame.columns) == [f"x{i:02d}" for i in range(1, 21)] + ["label"]
    assert frame["label"].sum() == 50
    anomalies = frame[frame["label"] == 1].drop(columns="label")
    normal = frame[frame["label"] == 0].drop(columns="label")
    assert abs(normal.to_numpy().mean()) < 0.05 and abs(anomalies.to_numpy().mean() - 5) < 0.1
    assert frame["label"].iloc[:1000].sum() > 30  # shuffled, not appended at the end


# --- network flows ----------------------------------------------------------------------------


def test_network_flows_columns_order_and_label_share(flows):
    assert len(flows) == 6000
    assert list(flows.columns) == [
        "timestamp",
        "flow_id",
        *datasets.FLOW_NUMERIC,
        *datasets.FLOW_CATEGORICAL,
        "label",
    ]
    assert flows["timestamp"].is_monotonic_increasing and flows["timestamp"].is_unique
    assert flows["flow_id"].is_unique
    assert set(flows["label"]) == {"benign", *datasets.FLOW_ATTACKS}
    attack_share = (flows["label"] != "benign").mean()
    assert 0.03 <= attack_share <= 0.05
    gaps = flows["timestamp"].diff().dt.total_seconds().dropna()
    assert gaps.nunique() > 5  # irregular


def test_network_attacks_come_in_short_bursts(flows):
    runs = _runs((flows["label"] != "benign").to_numpy())
    assert 6 <= len(runs) <= 12
    assert all(stop - start <= 60 for start, stop in runs)
    for start, stop in runs:
        assert flows["label"].iloc[start:stop].nunique() == 1


def test_network_attack_signatures(flows):
    by = {label: group for label, group in flows.groupby("label")}
    assert (by["dos"]["tcp_flag"] == "S0").all() and (by["dos"]["service"] == "http").all()
    assert (by["portscan"]["tcp_flag"] == "REJ").mean() > 0.6
    assert by["portscan"]["dst_port"].nunique() > 0.8 * len(by["portscan"])
    assert set(by["bruteforce"]["service"]) <= {"ssh", "ftp"}
    assert by["bruteforce"]["src_bytes"].std() < 0.1 * by["bruteforce"]["src_bytes"].mean()
    exfil = by["exfiltration"]
    assert (exfil["service"] == "https").all() and (exfil["src_bytes"] > exfil["dst_bytes"]).all()
    benign_https = by["benign"][by["benign"]["service"] == "https"]
    assert exfil["duration_s"].min() > benign_https["duration_s"].quantile(0.99)


def test_benign_flow_sizes_move_together(flows):
    benign = flows[(flows["label"] == "benign") & (flows["tcp_flag"] == "SF")]
    logs = np.log1p(benign[["duration_s", "src_bytes", "dst_bytes", "packets"]])
    correlation = logs.corr()
    assert correlation.loc["packets", "src_bytes"] > 0.6
    assert correlation.loc["packets", "dst_bytes"] > 0.6
    assert correlation.loc["packets", "duration_s"] > 0.5


def test_network_attacks_hide_in_benign_ranges_but_50_labels_teach_them(flows):
    benign = flows[flows["label"] == "benign"][datasets.FLOW_NUMERIC]
    for attack in ("dos", "bruteforce"):
        rows = flows[flows["label"] == attack][datasets.FLOW_NUMERIC]
        inside = ((rows >= benign.min()) & (rows <= benign.max())).all(axis=1)
        assert inside.mean() > 0.5, attack

    features = pd.get_dummies(
        flows[datasets.FLOW_NUMERIC + datasets.FLOW_CATEGORICAL], columns=datasets.FLOW_CATEGORICAL
    ).astype(float)
    skewed = ["duration_s", "src_bytes", "dst_bytes", "packets", "mean_iat_ms"]
    features[skewed] = np.log1p(features[skewed])
    rng = np.random.default_rng(0)
    labelled = np.concatenate(
        [
            rng.choice(np.flatnonzero(flows["label"] == label), 10, replace=False)
            for label in ["benign", *datasets.FLOW_ATTACKS]
        ]
    )
    classifier = RandomForestClassifier(n_estimators=100, random_state=0)
    classifier.fit(features.iloc[labelled], flows["label"].iloc[labelled])
    rest = np.setdiff1d(np.arange(len(flows)), labelled)
    predicted = pd.Series(classifier.predict(features.iloc[rest]), index=flows.index[rest])
    truth = flows["label"].iloc[rest]
    for attack in datasets.FLOW_ATTACKS:
        assert (predicted[truth == attack] == attack).mean() > 0.9, attack
    assert (predicted == truth).mean() > 0.85


def test_network_flows_rejects_too_few_rows():
    with pytest.raises(AecoreError, match="at least 300 rows"):
        datasets.network_flows(n_rows=50)


# --- categorical sequences --------------------------------------------------------------------


def test_sequences_follow_a_sparse_chain_except_exactly_10_rows():
    frame = datasets.categorical_sequences()
    assert frame.shape == (50_000, 9)
    assert list(frame.columns) == [f"s{i}" for i in range(1, 9)] + ["label"]
    assert set(np.unique(frame[datasets.SEQUENCE_COLUMNS].to_numpy(dtype=str))) == set("ABCDEFGH")
    assert frame["label"].sum() == 10
    broken = datasets.impossible_transitions(frame)
    assert (broken[frame["label"] == 0] == 0).all()
    assert (broken[frame["label"] == 1] >= 1).all()
    for successors in datasets.SEQUENCE_TRANSITIONS.values():
        assert 2 <= len(successors) <= 3


def test_sequences_anomaly_count_is_a_parameter():
    frame = datasets.categorical_sequences(seed=1, n_rows=500, n_anomalies=3)
    assert frame["label"].sum() == 3
    assert (datasets.impossible_transitions(frame) > 0).sum() == 3
    with pytest.raises(AecoreError):
        datasets.categorical_sequences(n_rows=5, n_anomalies=6)


# --- server metrics ---------------------------------------------------------------------------


def test_server_metrics_shape_time_and_labels(metrics):
    assert len(metrics) == 4000
    assert metrics.columns[0] == "timestamp" and metrics.columns[-1] == "label"
    sensors = list(metrics.columns[1:-1])
    assert sensors == datasets.SENSOR_COLUMNS and len(sensors) >= 105
    assert "srv3_power_w" in sensors and "rack_power_kw" in sensors
    steps = metrics["timestamp"].diff().dropna().unique()
    assert list(steps) == [pd.Timedelta(minutes=1)]
    assert metrics["timestamp"].iloc[0] == pd.Timestamp("2026-03-02 00:00")
    assert 0.03 <= metrics["label"].mean() <= 0.06
    periods = _runs(metrics["label"].to_numpy())
    assert 6 <= len(periods) <= 8
    assert all(10 <= stop - start <= 40 for start, stop in periods)


def test_server_metrics_follow_physics(metrics):
    normal = metrics[metrics["label"] == 0]
    for server in datasets.SERVERS:
        corr = normal[[f"{server}_{s}" for s in ("cpu_util_pct", "power_w", "ips_million")]].corr()
        assert corr.iloc[0, 1] > 0.8 and corr.iloc[0, 2] > 0.9, server
        assert normal[f"{server}_fan_rpm"].corr(normal[f"{server}_power_w"]) > 0.8, server
        assert normal[f"{server}_exhaust_temp_c"].corr(normal[f"{server}_inlet_temp_c"]) > 0.5
    hour = normal["timestamp"].dt.hour
    util = normal["srv1_cpu_util_pct"]
    assert util[hour.between(13, 17)].mean() > util[hour.between(1, 5)].mean() + 20


def _deviation_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """|reading - its 2-hour rolling median| in units of that column's normal residual spread."""
    sensors = frame[datasets.SENSOR_COLUMNS].astype(float)
    residual = sensors - sensors.rolling(121, center=True, min_periods=30).median()
    spread = residual[frame["label"] == 0].abs().median() * 1.4826
    return residual.abs() / spread


@pytest.mark.parametrize("seed", [0, 1])
def test_each_incident_moves_several_related_sensors(seed, metrics):
    frame = metrics if seed == 0 else datasets.server_metrics(seed=seed, n_rows=2000, drift=True)
    scores = _deviation_scores(frame)
    for start, stop in _runs(frame["label"].to_numpy()):
        typical = scores.iloc[start:stop].median().sort_values(ascending=False)
        assert (typical > 3).sum() >= 3, (start, typical.head())
        assert typical.median() < 1.5  # the rest of the rack carries on as normal
        top = [column for column in typical.index[:3] if column.startswith("srv")]
        servers = {column.split("_")[0] for column in top}
        thermal = all(column.endswith(("temp_c", "fan_rpm")) for column in typical.index[:3])
        assert len(servers) <= 1 or thermal, (start, typical.head())


@pytest.mark.parametrize("drift", [False, True])
def test_no_single_reading_of_an_incident_is_extreme(drift, metrics):
    frame = metrics if not drift else datasets.server_metrics(seed=1, n_rows=2000, drift=True)
    sensors = frame[datasets.SENSOR_COLUMNS].astype(float)
    normal = sensors[frame["label"] == 0]
    z = (sensors - normal.mean()) / normal.std()
    assert z[frame["label"] == 1].abs().max().max() <= 4.0


def test_drift_changes_the_upper_servers_only():
    start = "2026-03-05 00:00"
    fresh = datasets.server_metrics(seed=2, n_rows=1440, start=start)
    drifted = datasets.server_metrics(seed=1, n_rows=1440, start=start, drift=True)
    fresh, drifted = fresh[fresh["label"] == 0], drifted[drifted["label"] == 0]
    for server in datasets.SERVERS:
        for sensor in ("cpu_util_pct", "power_w", "ips_million", "cpu_temp_c"):
            column = f"{server}_{sensor}"
            shift = (drifted[column].mean() - fresh[column].mean()) / fresh[column].std()
            if server in datasets.DRIFTED_SERVERS:
                assert shift > 0.5, column
            else:
                assert abs(shift) < 0.3, column
    hour = drifted["timestamp"].dt.hour
    night = drifted["srv6_cpu_util_pct"][hour.isin([22, 23, 0])].mean()
    afternoon = drifted["srv6_cpu_util_pct"][hour.isin([14, 15, 16])].mean()
    assert night > afternoon  # the new workload peaks at night


def test_drift_file_starts_the_day_after_the_first_ends(metrics):
    assert datasets.day_after(metrics) == "2026-03-05 00:00"
    drift_head = pd.read_csv(SAMPLE_DIR / "server_metrics_drift.csv", nrows=1)
    assert drift_head["timestamp"].iloc[0] == "2026-03-05T00:00:00"


def test_server_metrics_rejects_bad_arguments():
    with pytest.raises(AecoreError, match="at least 200 rows"):
        datasets.server_metrics(n_rows=10)
    with pytest.raises(AecoreError, match="start time"):
        datasets.server_metrics(start="not a date")


# --- intrusion log ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def intrusion() -> dict[str, pd.DataFrame]:
    """The committed intrusion files, read the way the dashboard reads an upload."""
    from aecore.io.reader import read_csv

    return {
        name: read_csv(SAMPLE_DIR / datasets.SAMPLES[name].filename)
        for name in ("intrusion_train", "intrusion_test")
    }


def test_intrusion_files_are_shaped_like_nsl_kdd(intrusion):
    train, test = intrusion["intrusion_train"], intrusion["intrusion_test"]
    for frame in (train, test):
        assert list(frame.columns) == [
            "duration", *datasets.INTRUSION_CATEGORICAL, *datasets.INTRUSION_NUMERIC[1:], "attack"
        ]  # fmt: skip
        assert frame["protocol_type"].nunique() == 3
        assert frame["service"].nunique() >= 60
        assert frame["flag"].nunique() >= 10
        assert (SAMPLE_DIR / "intrusion_train.csv").stat().st_size < 2_000_000
    assert len(train) == 5000 and len(test) == 4000
    assert set(train["attack"]) == {"normal", *datasets.INTRUSION_ATTACKS}  # 22 values
    assert set(test["attack"]) == {
        "normal", *datasets.INTRUSION_ATTACKS, *datasets.INTRUSION_NEW_ATTACKS
    }  # fmt: skip
    assert 0.02 <= (train["attack"] != "normal").mean() <= 0.05
    assert (test["attack"] != "normal").mean() >= 0.6


def test_inference_alone_finds_the_attack_label_and_keeps_service_as_an_input(intrusion):
    from aecore.io.inference import infer_roles, label_like_inputs, role_notes

    for name, frame in intrusion.items():
        roles = infer_roles(frame)  # no role set by hand
        assert roles.label == "attack", name
        assert "service" in roles.categorical and "attack" not in roles.inputs
        assert roles.to_dict() == datasets.SAMPLES[name].roles().to_dict(), name
        assert label_like_inputs(frame, roles) == {}
        assert "named like a label" in role_notes(frame, roles)["attack"]


def test_intrusion_test_normal_rows_look_like_the_training_normal_rows(intrusion):
    """The later file holds mostly attacks, but its normal part is the same traffic."""
    train, test = intrusion["intrusion_train"], intrusion["intrusion_test"]
    normal_train = train[train["attack"] == "normal"]
    normal_test = test[test["attack"] == "normal"]
    for column in datasets.INTRUSION_NUMERIC:
        a, b = normal_train[column], normal_test[column]
        spread = max(a.std(), 1e-9)
        assert abs(a.mean() - b.mean()) / spread < 0.15, column
    for column in datasets.INTRUSION_CATEGORICAL:
        shares = pd.concat(
            [normal_train[column].value_counts(normalize=True),
             normal_test[column].value_counts(normalize=True)], axis=1
        ).fillna(0.0)  # fmt: skip
        assert (shares.iloc[:, 0] - shares.iloc[:, 1]).abs().max() < 0.03, column


def test_a_detector_trained_on_intrusion_train_finds_the_attacks_of_intrusion_test(intrusion):
    from sklearn.metrics import roc_auc_score

    from aecore import AnomalyDetector

    train, test = intrusion["intrusion_train"], intrusion["intrusion_test"]
    detector = AnomalyDetector(epochs=8, random_state=0).fit(train)  # roles inferred
    assert detector.roles_.label == "attack" and "attack" not in detector.roles_.inputs
    errors = detector.reconstruction_error(test)
    assert roc_auc_score(test["attack"] != "normal", errors) > 0.9

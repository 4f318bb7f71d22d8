"""Tests for aecore.data: reading CSVs the way analysts produce them, and inferring roles."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from aecore.errors import AecoreError
from aecore.io.inference import (
    MIN_TRAIN_ROWS,
    check_trainable,
    infer_roles,
    label_like_inputs,
    parse_times,
    role_notes,
    summarise_columns,
)
from aecore.io.labelling import binary_labels, class_labels
from aecore.io.reader import read_csv
from aecore.io.roles import ColumnRoles


def _mixed_frame(rows: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "event_id": np.arange(rows),
            "when": pd.date_range("2024-01-01", periods=rows, freq="h").strftime(
                "%Y-%m-%dT%H:%M:%S"
            ),
            "user": [f"u{index:05d}" for index in range(rows)],
            "bytes": rng.normal(1000, 100, rows).round(2),
            "packets": rng.integers(1, 50, rows),
            "protocol": rng.choice(["tcp", "udp", "icmp"], rows),
            "site": "A",
            "empty": np.nan,
            "label": rng.choice(["benign", "dos"], rows, p=[0.8, 0.2]),
        }
    )


def _roundtrip(frame: pd.DataFrame) -> pd.DataFrame:
    return read_csv(frame.to_csv(index=False).encode("utf-8"))


# ---------------------------------------------------------------------------------------------
# read_csv: encodings, delimiters, quoting, sources
# ---------------------------------------------------------------------------------------------


def test_utf8_and_utf8_with_bom_read_the_same_without_bom_in_the_first_name():
    text = "name,city,amount\nMüller,Zürich,1.5\nDvořák,Praha,2.5\n"
    plain = read_csv(text.encode("utf-8"))
    with_bom = read_csv(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert list(with_bom.columns) == ["name", "city", "amount"]
    pd.testing.assert_frame_equal(plain, with_bom)
    assert plain["name"].tolist() == ["Müller", "Dvořák"]


def test_windows_1252_text_is_decoded():
    text = "name;price\nMüller;€ 5\nGarçon;10 €\n"
    frame = read_csv(text.encode("cp1252"))
    assert frame["name"].tolist() == ["Müller", "Garçon"]
    assert frame["price"].tolist() == ["€ 5", "10 €"]


def test_utf16_with_bom_is_decoded():
    frame = read_csv("name\tvalue\nMüller\t1\n".encode("utf-16"))
    assert frame["name"].tolist() == ["Müller"]
    assert frame["value"].tolist() == [1]


def test_windows_1252_character_far_beyond_the_sniffed_start_is_decoded():
    lines = ["city,value"] + [f"Paris,{index}" for index in range(20_000)] + ["Köln,1"]
    frame = read_csv("\n".join(lines).encode("cp1252"))
    assert frame["city"].iloc[-1] == "Köln"
    assert len(frame) == 20_001


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_each_delimiter_is_detected(delimiter):
    rows = [["id", "kind", "value"], ["1", "a b", "0.5"], ["2", "c", "1.25"], ["3", "d", "-2"]]
    data = "\n".join(delimiter.join(row) for row in rows).encode()
    frame = read_csv(data)
    assert list(frame.columns) == ["id", "kind", "value"]
    assert frame["value"].tolist() == [0.5, 1.25, -2.0]
    assert frame["kind"].tolist() == ["a b", "c", "d"]


def test_quoted_fields_keep_embedded_delimiters_quotes_and_newlines():
    data = b'name,comment,score\n"Smith, J.","said ""hi""\nthen left",1\nLee,plain,2\n'
    frame = read_csv(data)
    assert frame.shape == (2, 3)
    assert frame["name"].tolist() == ["Smith, J.", "Lee"]
    assert frame["comment"].iloc[0] == 'said "hi"\nthen left'
    assert frame["score"].tolist() == [1, 2]


def test_header_whitespace_is_stripped_and_trailing_empty_lines_ignored():
    frame = read_csv(b" a , b\n1,2\n3,4\n\n\n  \n")
    assert list(frame.columns) == ["a", "b"]
    assert frame["a"].tolist() == [1, 3]


def test_trailing_rows_of_only_delimiters_are_dropped_and_integers_stay_integers():
    frame = read_csv(b"a,b,c\n1,2,3\n4,5,\n,,\n,,\n")
    assert len(frame) == 2
    assert frame["a"].dtype == np.int64
    assert np.isnan(frame["c"].iloc[1])


def test_a_file_whose_only_column_is_unnamed_is_read():
    frame = read_csv(b'""\n1\n2\n3\n')
    assert frame.shape == (3, 1)
    assert frame.iloc[:, 0].tolist() == [1, 2, 3]
    assert frame.columns[0].strip() != ""


def test_bytes_path_and_file_object_give_equal_frames(tmp_path):
    data = _mixed_frame(50).to_csv(index=False).encode("utf-8")
    path = tmp_path / "events.csv"
    path.write_bytes(data)
    from_bytes = read_csv(data)
    pd.testing.assert_frame_equal(from_bytes, read_csv(path))
    pd.testing.assert_frame_equal(from_bytes, read_csv(str(path)))
    handle = io.BytesIO(data)
    handle.read(10)  # an upload widget may have been read already
    pd.testing.assert_frame_equal(from_bytes, read_csv(handle))


def test_values_are_faithful_floats_round_trip_and_timestamps_stay_as_written():
    rng = np.random.default_rng(1)
    original = pd.DataFrame(
        {
            "x": rng.normal(size=200) * 1e3,
            "tiny": rng.normal(size=200) * 1e-9,
            "when": ["2024-03-01T10:00:00+01:00"] * 200,
        }
    )
    frame = _roundtrip(original)
    assert frame["x"].dtype == np.float64
    np.testing.assert_array_equal(frame["x"].to_numpy(), original["x"].to_numpy())
    np.testing.assert_array_equal(frame["tiny"].to_numpy(), original["tiny"].to_numpy())
    assert frame["when"].iloc[0] == "2024-03-01T10:00:00+01:00"


def test_pandas_fallback_reads_the_same_frame_and_still_rejects_short_rows(monkeypatch):
    import pyarrow as pa

    import aecore.io.reader as data_module

    good = _mixed_frame(40).to_csv(index=False).encode("utf-8")
    expected = read_csv(good)

    def refuse(*args, **kwargs):
        raise pa.ArrowInvalid("straddling object straddles two block boundaries")

    monkeypatch.setattr(data_module, "_parse_with_arrow", refuse)
    pd.testing.assert_frame_equal(read_csv(good), expected)
    with pytest.raises(AecoreError, match="Line 4 has 2 fields but the header has 3"):
        read_csv(b"a,b,c\n1,2,3\n4,5,6\n7,8\n9,9,9\n")


def test_semicolon_files_with_decimal_commas_read_numbers():
    frame = read_csv("Gerät;Wert\nPumpe;1,5\nVentil;-2,25\n".encode("cp1252"))
    assert frame["Wert"].tolist() == [1.5, -2.25]
    assert frame["Gerät"].tolist() == ["Pumpe", "Ventil"]


def test_missing_markers_become_missing_but_none_stays_a_value():
    frame = read_csv(b"a,label\n1,None\nNA,dos\n,\n4,None\n")
    assert frame["a"].isna().tolist() == [False, True, True, False]
    assert frame["label"].tolist()[:2] == ["None", "dos"]


# ---------------------------------------------------------------------------------------------
# read_csv: one clear message per bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"\n\n  \r\n", b"\xef\xbb\xbf"])
def test_empty_file(data):
    with pytest.raises(AecoreError, match="The file is empty"):
        read_csv(data)


@pytest.mark.parametrize("data", [b"a,b,c", b"a,b,c\n", b"a,b,c\n\n\n"])
def test_header_only(data):
    with pytest.raises(AecoreError, match="header but no data rows"):
        read_csv(data)


@pytest.mark.parametrize(
    "data",
    [
        b"a,b\n1,\x00\x00\x00\n",
        bytes(range(1, 256)) * 40,
        b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 100,
    ],
)
def test_binary_input_is_not_a_text_csv(data):
    with pytest.raises(AecoreError, match="does not look like a text CSV file"):
        read_csv(data)


def test_excel_workbook_is_named():
    with pytest.raises(AecoreError, match="Excel"):
        read_csv(b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 100)


def test_row_with_too_many_fields_names_the_physical_line():
    lines = ["a,b,c,d,e"] + ["1,2,3,4,5"] * 5 + ["1,2,3,4,5,6"] + ["1,2,3,4,5"] * 3
    with pytest.raises(AecoreError, match="Line 7 has 6 fields but the header has 5"):
        read_csv("\n".join(lines).encode())


def test_row_with_too_few_fields_counts_lines_of_multiline_quoted_values():
    data = b'a,b,c\n1,"two\nlines",3\n4,5,6\n7,8\n'
    with pytest.raises(AecoreError, match="Line 5 has 2 fields but the header has 3"):
        read_csv(data)


def test_unbalanced_quote_is_pointed_at():
    with pytest.raises(AecoreError, match=r"Line 3 .*unbalanced quote"):
        read_csv(b'a,b\n1,2\n"x,3\n4,5\n')


def test_duplicate_column_names_are_named():
    with pytest.raises(AecoreError, match=r"Duplicate column names: 'speed'"):
        read_csv(b"speed,temp, speed\n1,2,3\n")


def test_file_over_the_size_limit_states_the_limit_in_mb(tmp_path):
    data = b"a,b\n" + b"1,2\n" * 300_000
    path = tmp_path / "big.csv"
    path.write_bytes(data)
    limit = 2**20
    for source in (data, path, io.BytesIO(data)):
        with pytest.raises(AecoreError, match="1 MB limit"):
            read_csv(source, max_bytes=limit)
    assert len(read_csv(data, max_bytes=2 * limit)) == 300_000


def test_missing_path_is_reported():
    with pytest.raises(AecoreError, match="File not found"):
        read_csv("/no/such/file.csv")


# ---------------------------------------------------------------------------------------------
# Roles
# ---------------------------------------------------------------------------------------------


def test_roles_on_a_mixed_frame():
    frame = _roundtrip(_mixed_frame())
    roles = infer_roles(frame)
    assert roles.features == ["bytes", "packets"]
    assert roles.categorical == ["protocol"]
    assert roles.time == "when"
    assert roles.label == "label"
    assert set(roles.ignore) == {"site", "empty"}
    assert roles.ids == ["event_id", "user"]


def test_role_notes_explain_what_is_dropped_or_imputed():
    frame = _roundtrip(_mixed_frame())
    frame.loc[: len(frame) // 4 - 1, "bytes"] = np.nan
    notes = role_notes(frame, infer_roles(frame))
    assert "identifier" in notes["user"]
    assert "constant (always A)" in notes["site"]
    assert "entirely empty" in notes["empty"]
    assert "timestamps" in notes["when"]
    assert "25% missing" in notes["bytes"] and "median" in notes["bytes"]
    assert "id" in notes["event_id"]


def test_overrides_win_and_bad_overrides_are_named():
    frame = _roundtrip(_mixed_frame())
    roles = infer_roles(frame, overrides={"site": "categorical", "packets": "ignore"})
    assert "site" in roles.categorical
    assert "packets" in roles.ignore and "packets" not in roles.features
    with pytest.raises(AecoreError, match=r"'nope'.*'weird'|'weird'.*'nope'"):
        infer_roles(frame, overrides={"nope": "feature", "bytes": "weird"})


def test_override_time_moves_the_time_role():
    frame = _roundtrip(_mixed_frame())
    frame["later"] = frame["when"]
    roles = infer_roles(frame, overrides={"later": "time"})
    assert roles.time == "later"
    assert roles.role_of("when") == "ignore"


def test_sampling_never_hides_a_rare_value_or_a_repeated_identifier():
    rows, rare = 200_000, 123_457
    site = np.full(rows, "A", dtype=object)
    site[rare] = "B"
    level = np.full(rows, 3.0)
    level[rare] = 4.0
    order_id = np.arange(rows)
    order_id[rare] = 0
    code = np.array([f"c{index}" for index in range(rows)], dtype=object)
    code[rare + 1 :] = code[: rows - rare - 1]  # about 40% of the codes repeat
    frame = pd.DataFrame(
        {"site": site, "level": level, "order_id": order_id, "code": code, "value": level}
    )
    frame["value"] = np.random.default_rng(0).normal(size=rows)
    roles = infer_roles(frame)
    assert roles.role_of("site") == "categorical"
    assert roles.role_of("level") == "feature"
    assert roles.role_of("order_id") == "feature"  # one repeat: not an identifier
    assert "identifier" not in role_notes(frame, roles)["code"]


def test_numeric_measurement_named_like_time_stays_a_feature():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"response_time": rng.normal(1, 0.1, 60), "elapsed_time": np.arange(60.0)}
    )
    roles = infer_roles(frame)
    assert roles.time == "elapsed_time"
    assert roles.features == ["response_time"]


def test_timestamps_in_a_common_format_make_the_time_column_and_parse_in_order():
    stamps = pd.date_range("2024-12-30 22:00", periods=40, freq="37min")
    frame = pd.DataFrame(
        {"x": np.arange(40.0), "seen": stamps.strftime("%d/%m/%Y %H:%M"), "y": np.ones(40)}
    )
    frame.loc[5, "seen"] = None
    roles = infer_roles(frame)
    assert roles.time == "seen"
    parsed = parse_times(frame["seen"])
    assert parsed.isna().tolist() == [index == 5 for index in range(40)]
    assert parsed.dropna().is_monotonic_increasing
    assert parsed.iloc[0] == pd.Timestamp("2024-12-30 22:00")
    with pytest.raises(AecoreError, match="does not hold timestamps"):
        parse_times(pd.Series(["mon", "tue"], name="day"))


def test_free_text_and_too_many_categories_are_ignored_with_the_reason():
    rng = np.random.default_rng(0)
    rows = 3000
    frame = pd.DataFrame(
        {
            "comment": [f"customer wrote message {index}" for index in range(rows)],
            "product": [f"p{value}" for value in rng.integers(0, 800, rows)],
            "x": rng.normal(size=rows),
        }
    )
    roles = infer_roles(frame)
    assert roles.ignore == ["comment", "product"]
    notes = role_notes(frame, roles)
    assert "free text" in notes["comment"]
    assert "too many categories" in notes["product"] and "mark it categorical" in notes["product"]


# ---------------------------------------------------------------------------------------------
# Summary and trainability
# ---------------------------------------------------------------------------------------------


def test_summarise_columns_on_a_small_frame():
    frame = pd.DataFrame(
        {"x": [1.0, 2.0, np.nan, 5.0], "kind": ["a", "b", "a", None], "flat": [7, 7, 7, 7]}
    )
    roles = ColumnRoles(features=["x"], categorical=["kind"], ignore=["flat"])
    summary = summarise_columns(frame, roles).set_index("column")
    assert list(summary.reset_index().columns) == [
        "column", "role", "dtype", "missing", "missing_share", "distinct",
        "min", "max", "mean", "std", "example", "note",
    ]  # fmt: skip
    x = summary.loc["x"]
    assert (x["role"], x["missing"], x["distinct"]) == ("feature", 1, 3)
    assert x["missing_share"] == pytest.approx(0.25)
    assert (x["min"], x["max"], x["mean"]) == (1.0, 5.0, pytest.approx(8 / 3))
    assert x["std"] == pytest.approx(np.std([1.0, 2.0, 5.0], ddof=1))
    assert x["example"] == "1"
    kind = summary.loc["kind"]
    assert (kind["role"], kind["missing"], kind["distinct"]) == ("categorical", 1, 2)
    assert np.isnan(kind["mean"]) and kind["example"] == "a"
    assert "constant (always 7)" in summary.loc["flat", "note"]


def test_check_trainable_accepts_good_data():
    frame = _roundtrip(_mixed_frame())
    check_trainable(frame, infer_roles(frame))


def test_check_trainable_too_few_rows():
    frame = _roundtrip(_mixed_frame(12))
    with pytest.raises(AecoreError, match=f"12 rows, at least {MIN_TRAIN_ROWS} are needed"):
        check_trainable(frame, infer_roles(frame))


def test_check_trainable_no_usable_features_says_why():
    frame = pd.DataFrame({"user": [f"u{i}" for i in range(40)], "empty": [np.nan] * 40})
    with pytest.raises(AecoreError, match=r"No usable feature columns.*identifier.*empty"):
        check_trainable(frame, infer_roles(frame))


def test_check_trainable_names_empty_text_and_absent_columns():
    frame = pd.DataFrame(
        {"x": np.arange(40.0), "blank": [np.nan] * 40, "word": ["a", "b", "?", "c"] * 10}
    )
    with pytest.raises(AecoreError, match="Column 'blank' is entirely empty; mark it as ignore"):
        check_trainable(frame, ColumnRoles(features=["x", "blank"]))
    with pytest.raises(AecoreError, match=r"'word'.*text such as 'a'"):
        check_trainable(frame, ColumnRoles(features=["x", "word"]))
    with pytest.raises(AecoreError, match=r"'ghost'.*'phantom'"):
        check_trainable(frame, ColumnRoles(features=["x", "ghost"], label="phantom"))


# ---------------------------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------------------------


def test_binary_labels_numeric_bool_text_and_partial():
    assert binary_labels([0, 1, 2, 0]).tolist() == [0, 1, 1, 0]
    assert binary_labels(pd.Series([0.0, np.nan, 3.5])).tolist() == [0, -1, 1]
    assert binary_labels(np.array([True, False])).tolist() == [1, 0]
    assert binary_labels(["Benign", "dos", " NORMAL ", "probe"]).tolist() == [0, 1, 0, 1]
    assert binary_labels(pd.Series(["ok", None, "", "attack"])).tolist() == [0, -1, -1, 1]
    assert binary_labels(pd.Series([True, None, False], dtype=object)).tolist() == [1, -1, 0]
    assert binary_labels(["0", "1", "1"]).tolist() == [0, 1, 1]
    assert binary_labels(["x", "y", "x", "z"]).tolist() == [0, 1, 0, 1]  # most frequent = normal
    assert binary_labels(["a", "b"]).dtype == np.int8


def test_class_labels_put_the_normal_class_first():
    codes, names = class_labels(["dos", "benign", "probe", None, "dos", "benign", "benign"])
    assert names == ["benign", "dos", "probe"]
    assert codes.tolist() == [1, 0, 2, -1, 1, 0, 0]
    codes, names = class_labels([2, 0, 1, 0])
    assert names[0] == "0" and sorted(names) == ["0", "1", "2"]
    assert codes.tolist()[1] == 0 and codes.tolist()[3] == 0


# ---------------------------------------------------------------------------------------------
# Labels, identifiers and many categories (issue 13)
# ---------------------------------------------------------------------------------------------

_ATTACKS = ["neptune", "smurf", "satan", "ipsweep", "portsweep", "nmap", "back", "teardrop",
            "warezclient", "pod", "guess_passwd", "buffer_overflow", "warezmaster", "land",
            "imap", "rootkit", "loadmodule", "ftp_write", "multihop", "phf", "perl"]  # fmt: skip


def _intrusion_frame(rows: int = 3000, seed: int = 0) -> pd.DataFrame:
    """NSL-KDD-like: an `attack` label with 22 values, `service` with 66, a 0/1 flag input."""
    rng = np.random.default_rng(seed)
    attack = np.where(rng.random(rows) < 0.7, "normal", rng.choice(_ATTACKS, rows))
    attack[: len(_ATTACKS)] = _ATTACKS  # every attack name occurs
    return pd.DataFrame(
        {
            "duration": rng.exponential(2.0, rows).round(2),
            "protocol_type": rng.choice(["tcp", "udp", "icmp"], rows, p=[0.8, 0.15, 0.05]),
            "service": [f"s{v:02d}" for v in np.r_[np.arange(66), rng.integers(0, 66, rows - 66)]],
            "flag": rng.choice(["SF", "S0", "REJ", "RSTO"], rows, p=[0.7, 0.15, 0.1, 0.05]),
            "src_bytes": rng.lognormal(6, 2, rows).round(),
            "logged_in": rng.integers(0, 2, rows),
            "attack": attack,
        }
    )


def test_a_text_label_with_22_values_is_the_label_and_66_services_stay_an_input():
    frame = _roundtrip(_intrusion_frame())
    roles = infer_roles(frame)
    assert roles.label == "attack"
    assert "attack" not in roles.inputs
    assert roles.categorical == ["protocol_type", "service", "flag"]
    assert roles.features == ["duration", "src_bytes", "logged_in"]
    notes = role_notes(frame, roles)
    assert notes["attack"].startswith("label (named like a label; 22 values: normal")
    assert "never as a model input" in notes["attack"]
    assert notes["service"] == (
        "text with 66 categories: top 50 one-hot, 16 more as 'other'"
    )
    assert label_like_inputs(frame, roles) == {}


@pytest.mark.parametrize(
    ("name", "values", "why"),
    [
        ("Label", ["BENIGN"] * 8 + ["DDoS", "PortScan"], "named like a label"),
        ("class", [0] * 9 + [1], "named like a label"),
        ("isFraud", [0] * 9 + [1], "named like a label"),
        ("is_attack", [False] * 9 + [True], "named like a label"),
        ("attack_name", ["none"] * 8 + ["dos", "probe"], "named like a label"),
        ("outcome", ["ok"] * 8 + ["failed", "timeout"], "mostly 'ok'"),
        ("verdict", ["no"] * 9 + ["yes"], "two values"),
        ("traffic", ["normal"] * 7 + ["neptune", "smurf", "back"], "holds 'normal'"),
        ("kind", ["ok"] * 8 + ["anomaly", "anomaly"], "holds 'anomaly'"),
    ],
)
def test_label_like_columns_are_recognised_by_name_or_by_values(name, values, why):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(size=200), name: values * 20})
    roles = infer_roles(frame)
    assert roles.label == name
    note = role_notes(frame, roles)[name]
    assert note.startswith("label (") and why in note


def test_ordinary_flags_counts_and_codes_are_not_taken_for_a_label():
    """0/1 measurements without a label name stay inputs: values alone are not enough."""
    rng = np.random.default_rng(2)
    rows = 500
    frame = pd.DataFrame(
        {
            "is_weekend": (rng.random(rows) < 2 / 7).astype(int),
            "has_discount": rng.random(rows) < 0.1,
            "vip": (rng.random(rows) < 0.03).astype(int),
            "n_attacks": rng.integers(0, 5, rows),
            "target_port": rng.integers(1, 65535, rows),
            "y": rng.normal(size=rows),
            "status": rng.choice([200, 301, 404, 500], rows, p=[0.9, 0.04, 0.04, 0.02]),
            "smoker": rng.choice(["yes", "no"], rows),
            "flag": rng.choice(["SF", "S0", "REJ"], rows, p=[0.9, 0.05, 0.05]),
            "result_ms": rng.exponential(30, rows),
        }
    )
    roles = infer_roles(frame)
    assert roles.label is None
    assert roles.features == [
        "is_weekend", "has_discount", "vip", "n_attacks", "target_port", "y", "status",
        "result_ms",
    ]  # fmt: skip
    assert roles.categorical == ["smoker", "flag"]
    assert label_like_inputs(frame, roles) == {}
    notes = role_notes(frame, roles)
    assert "if it marks the anomalies, make it the label" in notes["is_weekend"]
    assert "make it the label" not in notes["vip"]


def test_with_two_label_like_columns_the_usual_name_wins_and_the_other_is_no_input():
    """UNSW-NB15 has `attack_cat` (text) and `label` (0/1): either gives the answer away."""
    rng = np.random.default_rng(3)
    rows = 400
    cat = rng.choice(["Normal", "Exploits", "Fuzzers", "DoS"], rows, p=[0.85, 0.05, 0.05, 0.05])
    frame = pd.DataFrame(
        {"sbytes": rng.lognormal(5, 1, rows), "attack_cat": cat, "label": (cat != "Normal") * 1}
    )
    roles = infer_roles(frame)
    assert roles.label == "label"
    assert roles.ignore == ["attack_cat"] and not roles.categorical
    assert "second label" in role_notes(frame, roles)["attack_cat"]
    # The analyst may still make it an input: the column is then named as a risk.
    kept = infer_roles(frame, overrides={"attack_cat": "categorical"})
    assert label_like_inputs(frame, kept) == {"attack_cat": "named like a label"}
    assert "Warning: this looks like a label" in role_notes(frame, kept)["attack_cat"]


def test_an_analyst_who_keeps_the_label_as_an_input_is_warned():
    frame = _roundtrip(_intrusion_frame(600))
    roles = infer_roles(frame, overrides={"attack": "categorical"})
    assert roles.label is None and "attack" in roles.categorical
    assert label_like_inputs(frame, roles) == {"attack": "named like a label"}
    assert "give the answer away" in role_notes(frame, roles)["attack"]


def test_identifiers_get_the_id_role_with_a_note_and_are_never_inputs():
    frame = _roundtrip(_mixed_frame())
    frame["Unnamed: 0"] = np.arange(len(frame))
    roles = infer_roles(frame)
    assert roles.ids == ["event_id", "user", "Unnamed: 0"]
    assert not set(roles.ids) & set(roles.inputs)
    notes = role_notes(frame, roles)
    for column in roles.ids:
        assert notes[column].startswith(
            "identifier: carried into scored views and exports, never a model input"
        )
    chosen = infer_roles(frame, overrides={"packets": "id"})
    assert "packets" in chosen.ids
    assert role_notes(frame, chosen)["packets"].startswith("marked as an identifier")


def test_every_ignored_column_says_why():
    rng = np.random.default_rng(4)
    rows = 3000
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=rows),
            "empty": np.nan,
            "site": "A",
            "comment": [f"note number {index} here" for index in range(rows)],
            "code": [f"c{value}" for value in rng.integers(0, 2000, rows)],
            "product": [f"p{value}" for value in rng.integers(0, 800, rows)],
            "amount": np.r_[["n/a?"] * 20, rng.normal(size=rows - 20).round(3).astype(str)],
            "label": rng.integers(0, 2, rows),
            "target": rng.integers(0, 2, rows),
        }
    )
    roles = infer_roles(frame)
    assert sorted(roles.ignore) == sorted(
        ["empty", "site", "comment", "code", "product", "amount", "target"]
    )
    notes = role_notes(frame, roles)
    for column in roles.ignore:
        reason, _, _ = notes[column].partition("ignored")
        assert len(reason) > 10 and "ignored" in notes[column], (column, notes[column])


def test_a_missing_value_code_such_as_minus_999_is_pointed_out_beside_its_column():
    rng = np.random.default_rng(5)
    rows = 400
    area = rng.normal(700, 200, rows).clip(150).round(1)
    area[rng.random(rows) < 0.05] = -999
    frame = pd.DataFrame(
        {
            "worst_area": area,
            "bytes": rng.integers(0, 5000, rows),  # 999 and 9999 would be ordinary values here
            "humidity_pct": np.r_[np.full(10, 9999.0), rng.uniform(20, 80, rows - 10)],
        }
    )
    notes = role_notes(frame, infer_roles(frame))
    assert "-999 on 8% of rows looks like a code for a missing value" in notes["worst_area"]
    assert "code for a missing value" not in notes["bytes"]
    assert "9999 on 2% of rows" in notes["humidity_pct"]

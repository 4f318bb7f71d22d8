import numpy as np
import pytest

from aecore import AecoreError
from aecore.model.splits import split_rows


def test_random_split_partitions_every_row_once():
    split = split_rows(100, validation_share=0.2, test_share=0.1, seed=1)
    together = np.concatenate([split.train, split.validation, split.test])
    assert sorted(together.tolist()) == list(range(100))
    assert split.sizes() == {"train": 70, "validation": 20, "test": 10}


def test_chronological_split_respects_order():
    order = np.arange(50)[::-1]  # row 49 is the earliest
    split = split_rows(
        50, method="chronological", validation_share=0.2, test_share=0.2, order=order
    )
    assert set(split.train) == set(range(20, 50))
    assert set(split.test) == set(range(0, 10))


def test_normal_only_moves_anomalies_to_test():
    normal = np.ones(100, dtype=bool)
    normal[::10] = False
    split = split_rows(100, validation_share=0.2, test_share=0.2, normal_mask=normal)
    assert normal[split.train].all() and normal[split.validation].all()
    assert (~normal[split.test]).sum() == 10


def test_bad_shares_are_refused():
    with pytest.raises(AecoreError):
        split_rows(10, validation_share=1.5)
    with pytest.raises(AecoreError):
        split_rows(10, method="sideways")


def test_auto_split_is_chronological_with_a_time_order_and_random_without():
    order = np.arange(100)
    auto = split_rows(100, validation_share=0.2, order=order)
    assert set(auto.train) == set(range(80))
    assert split_rows(100, validation_share=0.2).sizes() == {
        "train": 80, "validation": 20, "test": 0,
    }
    assert set(split_rows(100, validation_share=0.2).train) != set(range(80))


def test_a_random_split_with_strata_holds_out_each_class_in_its_share():
    labels = np.zeros(200, dtype=int)
    labels[:10] = 1  # a rare class: 5 % of the rows
    for seed in range(5):
        split = split_rows(200, test_share=0.2, strata=labels, seed=seed)
        assert labels[split.held_out].sum() == 2 and len(split.held_out) == 40
        assert sorted(np.concatenate([split.train, split.validation, split.test])) == list(
            range(200)
        )


def test_held_out_is_the_test_block_without_the_moved_anomalies():
    normal = np.ones(100, dtype=bool)
    normal[::10] = False
    split = split_rows(
        100, method="chronological", validation_share=0.2, test_share=0.2, normal_mask=normal
    )
    assert list(split.held_out) == list(range(80, 100))
    assert set(split.held_out) < set(split.test) and (~normal[split.test]).sum() == 10

import numpy as np
import pytest

from asl import ASLError
from asl.data.split import group_names, split_by_class, split_by_group

CLASSES = ["A", "B", "C"]
LABELS = np.repeat([0, 1, 2], 20)


def test_counts_are_exact_per_class():
    s = split_by_class(LABELS, CLASSES, counts=[10, 5, 4], seed=1)
    for c in range(3):
        got = s[LABELS == c]
        assert (got == "train").sum() == 10 and (got == "val").sum() == 5 and (got == "test").sum() == 4
        assert (got == "unused").sum() == 1


def test_fractions_cover_every_image_and_are_deterministic():
    a = split_by_class(LABELS, CLASSES, fractions=[0.5, 0.25, 0.25], seed=3)
    b = split_by_class(LABELS, CLASSES, fractions=[0.5, 0.25, 0.25], seed=3)
    c = split_by_class(LABELS, CLASSES, fractions=[0.5, 0.25, 0.25], seed=4)
    assert list(a) == list(b)
    assert list(a) != list(c)
    assert set(a) == {"train", "val", "test"}
    assert [(a[LABELS == k] == "train").sum() for k in range(3)] == [10, 10, 10]


def test_too_few_images_for_counts_names_the_class():
    with pytest.raises(ASLError, match=r"class A: 20 images, too few .*1250, 625, 625"):
        split_by_class(LABELS, CLASSES, counts=[1250, 625, 625])


@pytest.mark.parametrize("counts,fractions", [(None, None), ([1, 1, 1], [0.5, 0.25, 0.25]), (None, [0.5, 0.5, 0.5])])
def test_bad_split_spec(counts, fractions):
    with pytest.raises(ASLError, match="data.split"):
        split_by_class(LABELS, CLASSES, counts=counts, fractions=fractions)


def test_groups_never_straddle_splits():
    names = [f"A/hand{g}_x{i}.jpg" for g in range(1, 6) for i in range(10)]
    groups = group_names(names, r"(hand\d+)_")
    s = split_by_group(groups, [0.6, 0.2, 0.2], seed=0)
    for g in set(groups):
        assert len({s[i] for i in range(len(s)) if groups[i] == g}) == 1
    assert set(s) == {"train", "val", "test"}


def test_group_assign_pins_groups():
    groups = [f"hand{g}" for g in range(1, 6) for _ in range(4)]
    s = split_by_group(groups, seed=0, assign={"val": ["hand4"], "test": ["hand5"]})
    assert {s[i] for i in range(len(s)) if groups[i] == "hand5"} == {"test"}
    assert {s[i] for i in range(len(s)) if groups[i] == "hand4"} == {"val"}
    assert {s[i] for i in range(len(s)) if groups[i] in ("hand1", "hand2", "hand3")} == {"train"}


def test_group_regex_must_match_every_file():
    with pytest.raises(ASLError, match="does not match 'A/x.jpg'"):
        group_names(["A/hand1_a.jpg", "A/x.jpg"], r"(hand\d+)_")

"""core.joint_mapping: joints are picked by name in any order; gaps, repeats and NaN are refused."""

from __future__ import annotations

import math

import numpy as np
import pytest

from wallx_ros.core.errors import JointMappingError
from wallx_ros.core.joint_mapping import JointSelector


def test_selects_by_name_in_configured_order_ignoring_extras() -> None:
    sel = JointSelector(["a", "b", "c"])
    out = sel.select(["extra", "c", "a", "b"], [9.0, 3.0, 1.0, 2.0])
    np.testing.assert_array_equal(out, [1.0, 2.0, 3.0])
    # order changes between messages are followed
    np.testing.assert_array_equal(sel.select(["b", "c", "a"], [2.0, 3.0, 1.0]), [1.0, 2.0, 3.0])


def test_missing_joint_blocks_instead_of_zero_fill() -> None:
    with pytest.raises(JointMappingError, match=r"missing required joints \['c'\]"):
        JointSelector(["a", "b", "c"]).select(["a", "b"], [1.0, 2.0])


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_refused(bad: float) -> None:
    with pytest.raises(JointMappingError, match="non-finite position for joints \\['b'\\]"):
        JointSelector(["a", "b"]).select(["a", "b"], [0.0, bad])


def test_repeats_and_size_mismatch_are_refused() -> None:
    with pytest.raises(JointMappingError, match="repeat in the message"):
        JointSelector(["a"]).select(["a", "a"], [1.0, 2.0])
    with pytest.raises(JointMappingError, match="2 joint names but 1 positions"):
        JointSelector(["a"]).select(["a", "b"], [1.0])
    with pytest.raises(JointMappingError, match="configured joint names repeat"):
        JointSelector(["a", "a"])
    with pytest.raises(JointMappingError, match="no joint names"):
        JointSelector([])

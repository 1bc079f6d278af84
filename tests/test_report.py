"""Output formatting: torch's way of printing a float tensor, checked against live torch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxcal.report import format_values


def test_seed_prints():
    assert format_values([-0.22520804405212402, 1.2747939825057983]) == "[-0.2252,  1.2748]"
    assert format_values(np.float32([-9.7513e-05, 6.1291e-04]).tolist()) == "[-9.7513e-05,  6.1291e-04]"
    assert format_values([4517.296875, 82.5999984741211]) == "[4517.2969,   82.6000]"


floats32 = st.floats(width=32, allow_nan=True, allow_infinity=True)


@settings(max_examples=300, deadline=None)
@given(st.lists(floats32, min_size=1, max_size=3))
def test_format_values_is_torchs_tensor_print(values):
    torch = pytest.importorskip("torch")
    text = str(torch.tensor(values, dtype=torch.float32))
    assert format_values(np.float32(values).tolist()) == text[len("tensor(") : -1]

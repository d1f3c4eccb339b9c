"""``com.microsoft`` contrib ops import as themselves and their reference kernels match onnxruntime."""

from __future__ import annotations

import pytest
from contrib_cases import CASES, MS, check_case

from compiler.ops import get_op


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_reference_matches_onnxruntime(case):
    check_case(case)


def test_contrib_ops_are_declared_in_their_family():
    for name in ("QLinearAdd", "QLinearConcat", "FusedConv", "DynamicQuantizeLSTM", "SkipLayerNormalization"):
        op = get_op(f"{MS}.{name}")
        assert op is not None and op.family == "contrib" and op.domain == MS
    assert get_op(f"{MS}.QLinearConcat").attrs["axis"].required
    assert get_op(f"{MS}.QuickGelu").attr_default("alpha") == pytest.approx(1.702)

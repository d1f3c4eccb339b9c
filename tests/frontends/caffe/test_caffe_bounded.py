"""The Caffe importer's work grows with the layer count, never with the tensor size."""

from __future__ import annotations

import itertools
import time

import pytest
from caffe_harness import save

from compiler import EmberError
from frontends.caffe import import_model
from frontends.caffe.layers.conv import has_empty_window
from frontends.caffe.writer import NetSpec


def _windows_reference(size, kernel, stride, pad, pooled):
    return any(min(i * stride - pad + kernel, size) <= max(i * stride - pad, 0) for i in range(pooled))


def test_empty_window_closed_form_matches_the_window_walk():
    for size, kernel, stride, pad, pooled in itertools.product(
        range(1, 9), range(1, 6), range(1, 5), range(5), range(8)
    ):
        if pad < kernel:
            expected = _windows_reference(size, kernel, stride, pad, pooled)
            assert has_empty_window(size, kernel, stride, pad, pooled) == expected, (size, kernel, stride, pad)


def test_pooling_over_a_huge_input_imports_at_once():
    side = 1 << 30  # a billion output positions per axis: a per-position loop would run for minutes
    net = NetSpec("big", inputs={"data": (1, 1, side, side)})
    for i in range(3):
        net.layer(
            f"pool{i}",
            "Pooling",
            ["data" if i == 0 else f"pool{i - 1}"],
            [f"pool{i}"],
            pooling_param={"pool": "MAX", "kernel_size": 3, "stride": 2, "pad": 1},
        )
    proto, _ = save(net)
    start = time.perf_counter()
    graph = import_model(proto, max_tensor_bytes=1 << 63)  # shapes only: nothing of that size is allocated
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0, elapsed
    out = graph.outputs[0].type.shape
    assert out[:2] == (1, 1) and all(isinstance(d, int) and d < side // 4 for d in out[2:]), out


def test_a_tensor_over_the_limit_is_refused_naming_the_layer():
    net = NetSpec("wide", inputs={"data": (1, 1, 1 << 16, 1 << 16)})  # 16 GiB of float32: at the limit
    net.layer("up", "Concat", ["data", "data"], ["cat"], concat_param={"axis": 1})
    proto, _ = save(net)
    import_model(proto, max_tensor_bytes=1 << 40)
    with pytest.raises(EmberError) as info:
        import_model(proto)
    err = info.value
    assert err.node == "up" and err.op == "Concat" and "32.0 GiB" in err.message and "over the limit" in err.message
    with pytest.raises(EmberError) as info:
        import_model(proto, max_tensor_bytes=1 << 20)
    assert "input 'data'" in info.value.message and "over the limit of 1.0 MiB" in info.value.message


def test_zero_stride_and_group_are_refused():
    net = NetSpec("z", inputs={"data": (1, 2, 8, 8)})
    net.layer("pool", "Pooling", ["data"], ["p"], pooling_param={"pool": "MAX", "kernel_size": 2, "stride": 0})
    proto, _ = save(net)
    with pytest.raises(EmberError) as info:
        import_model(proto)
    assert info.value.node == "pool" and "stride [0, 0] must be positive" in info.value.message

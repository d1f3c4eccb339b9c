"""User-facing errors of the Caffe frontend, and the import-level behaviours
that need no oracle: SSA values for in-place layers, phase filtering,
input shape overrides, unknown fields, and the CLI."""

from __future__ import annotations

import pytest
from caffe_harness import randn, save, single_layer

from compiler import EmberError, interpret, print_ir, verify
from frontends.caffe import import_model
from frontends.caffe.writer import NetSpec


def conv_net() -> NetSpec:
    net = NetSpec("c", inputs={"data": (1, 3, 8, 8)})
    net.layer(
        "conv1",
        "Convolution",
        ["data"],
        ["conv1"],
        blobs=[randn(4, 3, 3, 3), randn(4)],
        convolution_param={"num_output": 4, "kernel_size": [3]},
    )
    net.layer("relu1", "ReLU", ["conv1"], ["conv1"])
    return net


def test_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "bad.prototxt"
    path.write_text('name: "x"\ninput: "data"\nlayer {\n  name: "a"\n  type: "ReLU"\n  bottom: "data" top: \n}\n')
    with pytest.raises(EmberError) as info:
        import_model(path)
    message = str(info.value)
    assert "bad.prototxt" in message and "line 7" in message, message


def test_every_unsupported_layer_is_listed_by_name(tmp_path):
    net = NetSpec("u", inputs={"data": (1, 3, 4, 4)})
    net.layer("spp", "SPP", ["data"], ["a"])
    net.layer("relu", "ReLU", ["a"], ["b"])
    net.layer("my_python", "Python", ["b"], ["c"])
    proto, _ = save(net)
    with pytest.raises(EmberError) as info:
        import_model(proto)
    message = str(info.value)
    assert "2 unsupported Caffe layer(s)" in message
    assert "'spp' (SPP)" in message and "'my_python' (Python)" in message and "'relu'" not in message


def test_blob_shape_mismatch_names_the_layer():
    net = conv_net()
    proto, _ = save(net)
    net.layers[0].blobs[0] = randn(4, 3, 5, 5)  # a caffemodel from another net
    _, model = save(net)
    with pytest.raises(EmberError) as info:
        import_model(proto, model)
    message = str(info.value)
    assert "conv1" in message and "[4, 3, 5, 5]" in message and "[4, 3, 3, 3]" in message, message


def test_missing_weights_names_the_layer():
    proto, _ = save(conv_net())
    with pytest.raises(EmberError) as info:
        import_model(proto)
    assert "conv1" in str(info.value) and "missing weights" in str(info.value)


def test_garbage_caffemodel(tmp_path):
    proto, _ = save(conv_net())
    bad = tmp_path / "bad.caffemodel"
    bad.write_bytes(b"\xff\xff\xff\xff not a protobuf")
    with pytest.raises(EmberError, match="not a binary Caffe model"):
        import_model(proto, bad)


def test_undefined_bottom_blob():
    net = NetSpec("u", inputs={"data": (1, 3, 4, 4)})
    net.layer("relu", "ReLU", ["nope"], ["b"])
    proto, _ = save(net)
    with pytest.raises(EmberError, match="reads blob 'nope'"):
        import_model(proto)


def test_in_place_layers_become_distinct_ssa_values():
    proto, model = save(conv_net())
    graph = import_model(proto, model)
    verify(graph)
    conv = [n for n in graph.nodes if n.op == "Conv"][0]
    relu = [n for n in graph.nodes if n.op == "Relu"][0]
    assert relu.operands[0] is conv.results[0] and relu.results[0] is not conv.results[0]
    assert graph.outputs == (relu.results[0],) and graph.outputs[0].name == "conv1"
    assert conv.results[0].name == "conv1.1"
    assert "return %conv1\n" in print_ir(graph)


def test_train_phase_layers_are_skipped_and_unknown_fields_ignored(tmp_path):
    net = conv_net()
    net.layer("train_only", "SoftmaxWithLoss", ["conv1", "label"], ["loss"], phase="TRAIN")
    proto, model = save(net)
    text = open(proto).read().replace('name: "conv1"', 'name: "conv1"\n  transform_param { mirror: true }')
    with open(proto, "w") as f:
        f.write(text)
    graph = import_model(proto, model)
    assert [v.name for v in graph.outputs] == ["conv1"]


def test_input_shapes_override_the_batch():
    proto, model = save(conv_net())
    graph = import_model(proto, model, input_shapes={"data": [3, 3, 8, 8]})
    out = interpret(graph, {"data": randn(3, 3, 8, 8)})["conv1"]
    assert out.shape == (3, 4, 6, 6)
    with pytest.raises(EmberError, match="unknown inputs"):
        import_model(proto, model, input_shapes={"image": [1, 3, 8, 8]})


def test_input_count_must_match_shapes(tmp_path):
    path = tmp_path / "n.prototxt"
    path.write_text('input: "a"\ninput: "b"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 4\ninput_dim: 4\n')
    with pytest.raises(EmberError, match="2 inputs but 1 input shapes"):
        import_model(path)


def test_cli_show_prints_the_graph(capsys):
    from compiler.cli import main

    proto, model = save(conv_net())
    assert main(["show", proto, "--weights", model]) == 0
    out = capsys.readouterr().out
    assert "Conv(" in out and "Relu(" in out


def test_cli_show_reports_errors_without_traceback(capsys):
    from compiler.cli import main

    proto, _ = save(conv_net())
    assert main(["show", proto]) == 1
    assert "missing weights" in capsys.readouterr().err


def test_printed_ir_round_trips():
    from compiler import parse_ir

    net = single_layer("Pooling", (1, 2, 7, 7), pooling_param={"pool": "AVE", "kernel_size": 3, "stride": 2, "pad": 1})
    net.layer("norm", "LRN", ["out"], ["norm"], lrn_param={"local_size": 3, "norm_region": "WITHIN_CHANNEL"})
    net.layer("prob", "Softmax", ["norm"], ["prob"])
    proto, model = save(net)
    graph = import_model(proto, model)
    text = print_ir(graph)
    assert print_ir(parse_ir(text)) == text


def test_silence_hides_a_blob_from_the_outputs():
    net = conv_net()
    net.layer("side", "Sigmoid", ["data"], ["side"])
    net.layer("mute", "Silence", ["side"], [])
    proto, model = save(net)
    assert [v.name for v in import_model(proto, model).outputs] == ["conv1"]


def test_mixed_layer_forms_are_refused(tmp_path):
    path = tmp_path / "mixed.prototxt"
    path.write_text(
        'input: "data" input_dim: 1 input_dim: 1 input_dim: 2 input_dim: 2\n'
        'layer { name: "a" type: "ReLU" bottom: "data" top: "a" }\n'
        'layers { name: "b" type: RELU bottom: "a" top: "b" }\n'
    )
    with pytest.raises(EmberError, match="mixes 'layer' and legacy 'layers'"):
        import_model(path)


def test_fp16_raw_data_blobs():
    """NVIDIA Caffe stores fp16 weights as raw_data with raw_data_type FLOAT16."""
    import numpy as np

    net = conv_net()
    proto, _ = save(net)
    model_proto = net.to_proto(with_blobs=True)
    weights = net.layers[0].blobs[0].astype(np.float16)
    blob = model_proto.layer[0].blobs[0]
    del blob.data[:]
    blob.raw_data_type = 2
    blob.raw_data = weights.tobytes()
    model = proto.replace(".prototxt", "_fp16.caffemodel")
    with open(model, "wb") as f:
        f.write(model_proto.SerializeToString())
    graph = import_model(proto, model)
    conv = [n for n in graph.nodes if n.op == "Conv"][0]
    np.testing.assert_array_equal(conv.operands[1].const_value, weights.astype(np.float32))


@pytest.mark.parametrize(
    "layer_type,params,message",
    [
        ("Concat", {"concat_param": {"axis": 1}}, "cannot convert the layer"),
        ("Eltwise", {}, "bottoms must have one shape"),
    ],
    ids=["concat", "eltwise"],
)
def test_shape_errors_name_the_layer(layer_type, params, message):
    net = single_layer(layer_type, {"data": (1, 2, 4, 4), "data2": (1, 3, 5, 4)}, bottoms=2, **params)
    proto, _ = save(net)
    with pytest.raises(EmberError) as info:
        import_model(proto)
    assert "node 'layer'" in str(info.value) and message in str(info.value), str(info.value)

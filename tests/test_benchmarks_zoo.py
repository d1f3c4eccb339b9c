"""The benchmark zoo's pure parts (benchmarks/zoo_models.py's list, benchmarks/zoo_report.py's maths,
table and profile parsing), checked without torch: CI does not install the ``bench`` extra."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import core_latency  # noqa: E402
import zoo_models  # noqa: E402
import zoo_report as report  # noqa: E402
from zoo_report import Row, format_row, geomean, median_ratio  # noqa: E402


def test_zoo_lists_the_issue_architectures():
    names = [m.name for m in zoo_models.ZOO]
    assert len(names) >= 14 and len(set(names)) == len(names)
    vision = {
        "resnet50",
        "mobilenet_v2",
        "mobilenet_v3_large",
        "efficientnet_b0",
        "shufflenet_v2_x1_0",
        "regnet_y_800mf",
        "convnext_tiny",
        "densenet121",
        "squeezenet1_1",
        "vit_b_16",
    }
    assert vision <= set(names) and {"bert_base", "crnn", "dbnet", "yolov8"} <= set(names)
    shapes = {m.name: m.input_shape for m in zoo_models.ZOO}
    assert shapes["crnn"] == (1, 3, 48, 320) and shapes["dbnet"] == shapes["yolov8"] == (1, 3, 640, 640)
    assert shapes["bert_base"] == (1, 128, 768) and all(s[0] == 1 for s in shapes.values())


def test_select_keeps_order_and_refuses_unknown_names():
    assert [m.name for m in zoo_models.select("yolov8, resnet50")] == ["yolov8", "resnet50"]
    assert zoo_models.select("") == list(zoo_models.ZOO)
    with pytest.raises(ValueError, match="resnet5"):
        zoo_models.select("resnet5")


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("EMBER_ZOO_CACHE", str(tmp_path))
    assert zoo_models.cache_dir() == str(tmp_path)
    monkeypatch.delenv("EMBER_ZOO_CACHE")
    assert zoo_models.cache_dir().endswith(os.path.join(".cache", "ember", "zoo"))


def test_an_exported_file_is_reused_without_torch(tmp_path):
    cached = tmp_path / "resnet50.onnx"
    cached.write_bytes(b"cached")
    assert zoo_models.export(zoo_models.MODELS["resnet50"], str(tmp_path)) == str(cached)
    assert cached.read_bytes() == b"cached"


def test_median_ratio_is_taken_round_by_round():
    # a loaded third round slows both runtimes: its ratio, not its raw times, is what counts
    assert median_ratio([2.0, 4.0, 30.0], [1.0, 2.0, 10.0]) == 2.0
    # the ratio of medians would be 3/2; the per-round ratios are 3, 0.5, 1
    assert median_ratio([3.0, 1.0, 5.0], [1.0, 2.0, 5.0]) == 1.0
    with pytest.raises(ValueError):
        median_ratio([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        median_ratio([], [])


def test_geomean_and_peak_share():
    assert geomean([1.0, 4.0]) == pytest.approx(2.0)
    assert geomean([0.5, 2.0, 1.0]) == pytest.approx(1.0)
    assert geomean(iter([8.0])) == pytest.approx(8.0)
    for bad in ([], [1.0, 0.0], [-1.0]):
        with pytest.raises(ValueError):
            geomean(bad)
    assert report.peak_share(117e9, 1.0, 1, 117.0) == pytest.approx((117.0, 1.0))
    assert report.peak_share(117e9, 2.0, 2, 117.0) == pytest.approx((58.5, 0.25))
    assert report.peak_share(240e9, 1.0, 2, 240.0) == pytest.approx((240.0, 0.5))


def _row(model, threads, ember, ort, openvino=None, **kw):
    times = {"ember": ember, "ort": ort}
    if openvino:
        times["openvino"] = openvino
    return Row(model, threads, times, **kw)


def test_table_row_shows_each_measure():
    row = _row(
        "resnet50",
        2,
        [0.020, 0.022, 0.021],
        [0.010, 0.011, 0.0105],
        [0.009, 0.0099, 0.00945],
        flops=int(2.34e9),
        compile_s=75.0,
        max_abs_err=2e-6,
        ref_max=3.0,
        peak_per_core=117.0,
    )
    cells = [c.strip() for c in format_row(row).strip("|").split("|")]
    assert cells[:5] == ["resnet50", "2", "21.00", "10.50", "9.45"]
    assert cells[5:7] == ["2.00x", "0.90x"]
    assert cells[7:9] == [f"{2.34 / 0.021:.1f}", f"{100 * 2.34 / 0.021 / 234:.0f}"]
    assert cells[9] == "-"  # no core round trips measured
    assert cells[10] == "75.0 (>60)" and cells[11] == "2.0e-06 (of 3)" and cells[12] == ""


def test_table_reports_failures_in_the_error_column():
    failed = Row("crnn", 1, {"ort": [0.01]}, compile_s=3.0, errors=["Ember compile: CodegenError: a|b"])
    cells = [c.strip() for c in format_row(failed).strip("|").split("|")]
    assert cells[2] == "-" and cells[5] == "-" and cells[7] == "-"
    assert cells[-1] == "Ember compile: CodegenError: a/b"
    table = report.format_table([failed, _row("bert_base", 1, [1.0], [1.0])]).splitlines()
    assert len(table) == 4 and table[1].count("---") == table[0].count(" | ") + 1
    assert table[2].startswith("| bert_base") and table[3].startswith("| crnn")


def test_summary_gives_geomean_and_worst_per_thread_count():
    rows = [
        _row("a", 1, [2.0], [1.0], [1.0]),
        _row("b", 1, [0.5], [1.0], [0.5]),
        _row("c", 1, [4.0], [1.0], [1.0]),
        _row("a", 2, [1.0], [1.0]),
        Row("d", 2, {"ort": [1.0]}, errors=["Ember compile: boom"]),
    ]
    one, two = report.summary(rows)
    assert report.summary(rows[4:]) == ["threads=2: Ember/ORT no models; OpenVINO/ORT no models; with errors: d"]
    expected = math.exp((math.log(2) + math.log(0.5) + math.log(4)) / 3)
    assert f"Ember/ORT geomean {expected:.2f}x over 3 models, worst 4.00x (c)" in one
    assert f"OpenVINO/ORT geomean {geomean([1, 0.5, 1]):.2f}x over 3 models, worst 1.00x" in one
    assert two.startswith("threads=2:") and "over 1 models" in two and "OpenVINO/ORT no models" in two
    assert two.endswith("with errors: d")


def test_near_and_far_rounds_are_reported_apart():
    # rounds 0 and 2 ran with the cores near, 1 and 3 far; a model with no far round counts in near only
    a = _row("a", 2, [1.0, 3.0, 1.2, 2.0], [1.0, 2.0, 1.0, 1.0])
    a.core_ns = [60.0, 400.0, 120.0, 900.0]
    b = _row("b", 2, [0.9, 0.8], [1.0, 1.0])
    b.core_ns = [70.0, 80.0]
    assert a.ratio("ember") == pytest.approx(1.35)  # all four rounds: 1.0, 1.5, 1.2, 2.0
    assert a.ratio("ember", near=True) == pytest.approx(1.1) and a.ratio("ember", near=False) == pytest.approx(1.75)
    assert b.ratio("ember", near=False) is None
    total, near, far = report.summary([a, b])
    assert near == (
        f"  threads=2, 4 rounds with the cores near (round trip < 250 ns): Ember/ORT geomean "
        f"{geomean([1.1, 0.85]):.2f}x over 2 models, worst 1.10x (a)"
    )
    assert far == "  threads=2, 2 rounds with the cores far: Ember/ORT geomean 1.75x over 1 models, worst 1.75x (a)"
    cells = [c.strip() for c in format_row(a).strip("|").split("|")]
    assert cells[9] == "260"  # the median round trip
    # rounds whose distance was not measured (1 thread, or no C compiler) are not split
    assert report.summary([_row("c", 1, [1.0], [1.0])]) == [
        "threads=1: Ember/ORT geomean 1.00x over 1 models, worst 1.00x (c); OpenVINO/ORT no models"
    ]


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="needs a C compiler")
def test_core_round_trip_probe_measures_or_says_one_cpu():
    found = core_latency.round_trip_ns(2000)
    assert core_latency.available() == (len(os.sched_getaffinity(0)) >= 2)
    if len(os.sched_getaffinity(0)) < 2:
        assert found is None
    else:
        assert found is not None and 1.0 < found < 1e6


PROFILE = (
    "ember profile: 3 runs, 100.000 ms per run in kernels\n"
    "     0     5.000 ms   5.0%  conv_relu (/stem/Conv)\n"
    "     1    60.000 ms  60.0%  convtranspose ()\n"
    "     2    20.000 ms  20.0%  conv_relu (/b1/Conv)\n"
    "     3    15.000 ms  15.0%  convtranspose (/head/ConvTranspose)\n"
)


def test_profile_parsing_finds_the_hotspots():
    assert report.top_kernels(PROFILE, 2) == [(60.0, 60.0, "convtranspose ()"), (20.0, 20.0, "conv_relu (/b1/Conv)")]
    assert report.kernel_kinds(PROFILE) == [(75.0, 75.0, "convtranspose"), (25.0, 25.0, "conv_relu")]
    assert report.top_kernels("no profile here") == []


def test_the_pure_modules_do_not_import_torch():
    code = "import sys, zoo_models, zoo_report, zoo; assert 'torch' not in sys.modules, 'torch imported'"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "benchmarks"), ROOT]))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_row_without_a_measured_peak_shows_gflops_but_no_share():
    row = _row("crnn", 1, [0.010, 0.010], [0.008, 0.008], flops=int(1e9))
    cells = [c.strip() for c in format_row(row).strip("|").split("|")]
    assert cells[7:9] == ["100.0", "-"]

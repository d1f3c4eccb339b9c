"""Caffe tests write their nets under pytest's ``tmp_path`` (pytest prunes old runs), never loose in /tmp."""

import caffe_harness
import pytest


@pytest.fixture(autouse=True)
def _caffe_nets_in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.setattr(caffe_harness, "TEMP_ROOT", str(tmp_path))

import sys

import pytest

from gantool.errors import GantoolError
from gantool.runtime.ort import import_onnxruntime


def test_onnxruntime_is_importable_in_the_dev_install():
    assert hasattr(import_onnxruntime(), "InferenceSession")


def test_missing_onnxruntime_names_both_extras(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(GantoolError, match=r'gantool\[cpu\].*gantool\[gpu\]'):
        import_onnxruntime()

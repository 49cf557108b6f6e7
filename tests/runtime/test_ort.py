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


def test_cpu_backend_calls_the_native_session_with_the_public_runs_results():
    import numpy as np

    from gantool.paths import shipped_onnx
    from gantool.runtime.backends.ort import OrtBackend

    backend = OrtBackend(shipped_onnx("cdcgan"), threads=1)
    backend.activate()
    feeds = {"z": np.random.default_rng(0).standard_normal((3, 128), dtype=np.float32),
             "labels": np.array([0, 4, 9], np.int64)}
    assert backend._run.__self__ is backend.session._sess  # the native session: no Python re-checks
    assert np.array_equal(backend.infer(feeds), backend.session.run(["images"], feeds)[0])
    with pytest.raises(Exception, match="labels"):  # a missing input still fails cleanly, in ORT
        backend.infer({"z": feeds["z"]})
    backend.deactivate()
    with pytest.raises(GantoolError, match="not active"):
        backend.infer(feeds)

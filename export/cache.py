"""Zoo names for the commands above the runtime: the runtime reads shipped and cached ONNX files only;
filling the cache with a 64x64 model's export is this module's job (it needs torch and onnx)."""

from __future__ import annotations

import logging
from pathlib import Path

from gantool.errors import GantoolError
from gantool.extras import installed
from gantool.paths import cached_onnx
from gantool.runtime.generator import ModelNotCached
from gantool.runtime.generator import resolve_model as resolve_file

log = logging.getLogger(__name__)


def fill_cache(name: str, mix: bool = False) -> Path:
    """Export a zoo model's shipped weights once into the cache (validated like any export); mix: its
    class-weight graph too (beside it, as the runtime looks for it). Returns the label graph's path."""
    missing = [m for m in ("torch", "onnx") if not installed(m)]
    if missing:
        raise GantoolError(f"{name} does not ship as ONNX, and exporting it into the cache needs "
                           f"{' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not installed.",
                           note='pip install "gantool[train,export]", or pass an exported .onnx file.')
    from gantool.contract import CLASS_WEIGHTS
    from gantool.export.run import run_export
    from gantool.runtime.variants import MIX_TAG, variant_name

    path = cached_onnx(name)
    if not path.is_file():
        log.info("exporting %s once into %s ...", name, path)
        run_export(name, str(path))
    mix_path = path.with_name(variant_name(path.stem, MIX_TAG))
    if mix and not mix_path.is_file():
        log.info("exporting %s's class-weight graph once into %s ...", name, mix_path)
        run_export(name, str(mix_path), condition=CLASS_WEIGHTS)
    return path


def resolve_model(model: str | Path, mix: bool = False) -> Path:
    """The runtime's resolve_model, filling the cache on a miss: what `sample`, `bench` and `serve` call.
    mix: a cached zoo model also gets its class-weight graph (shipped models ship theirs)."""
    try:
        path = resolve_file(model)
    except ModelNotCached as miss:
        return fill_cache(miss.name, mix)
    if mix and path == cached_onnx(str(model)):
        return fill_cache(str(model), mix)
    return path

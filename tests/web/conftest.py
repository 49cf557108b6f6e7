"""Web folders exported once per session (gantool export --format web): cdcgan (uniform noise) and cgan
(Gaussian noise), both conditional, so labels, class weights and both noise transforms are covered."""

from __future__ import annotations

from pathlib import Path

import pytest

WEB_MODELS = ("cdcgan", "cgan")  # uniform z, Gaussian z


@pytest.fixture(scope="session")
def web_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gantool.export.browser import run_web_export

    root = tmp_path_factory.mktemp("web")
    for name in WEB_MODELS:
        run_web_export(name, str(root / name))
    return root

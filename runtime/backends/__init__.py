"""Engines behind one small interface (Polygraphy-style runners): activate / infer / deactivate."""

from gantool.runtime.backends.base import Backend

__all__ = ["Backend"]

"""Old module paths of the flat layout (``simam_paddle.zoo``, ...) as aliases of their new modules.

A meta path finder maps ``simam_paddle.<old>`` to the module's new place, with a
``DeprecationWarning`` that names it, so code written against the flat layout keeps working.
"""
import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from typing import Dict

__all__ = ["install_legacy_module_finder"]


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        module = importlib.import_module(self.target)
        self._spec = module.__spec__
        return module

    def exec_module(self, module) -> None:
        # The target is already executed; only undo the import system's stamping of the alias spec.
        module.__spec__ = self._spec


class _LegacyModuleFinder(importlib.abc.MetaPathFinder):
    def __init__(self, package: str, moves: Dict[str, str]):
        self.package, self.moves = package, dict(moves)

    def find_spec(self, fullname, path=None, target=None):
        prefix, _, old = fullname.rpartition(".")
        if prefix != self.package or old not in self.moves:
            return None
        new = f"{self.package}.{self.moves[old]}"
        warnings.warn(f"module {fullname} moved to {new}; import it from there.", DeprecationWarning, stacklevel=2)
        return importlib.util.spec_from_loader(fullname, _AliasLoader(new))


def install_legacy_module_finder(package: str, moves: Dict[str, str]) -> None:
    """Let ``import <package>.<old>`` import the module now at ``<package>.<moves[old]>``."""
    if not any(isinstance(f, _LegacyModuleFinder) and f.package == package for f in sys.meta_path):
        sys.meta_path.append(_LegacyModuleFinder(package, moves))

"""Import a role's program (a script under roles/<role>/files, without a .py suffix) as a module."""

from __future__ import annotations

import sys
from importlib.machinery import SourceFileLoader
from importlib.util import module_from_spec, spec_from_loader
from pathlib import Path
from types import ModuleType

ROLES = Path(__file__).resolve().parents[3] / "roles"


def load_program(role: str, name: str) -> ModuleType:
    """roles/ROLE/files/NAME as a module, registered in sys.modules (dataclasses look their module up)."""
    path = ROLES / role / "files" / name
    module_name = name.replace("-", "_")
    loader = SourceFileLoader(module_name, str(path))
    spec = spec_from_loader(module_name, loader)
    assert spec is not None
    module = module_from_spec(spec)
    sys.modules[module_name] = module
    loader.exec_module(module)
    return module

"""`nndct_shared` is framework-neutral: importing every one of its modules must not import torch
or tensorflow (so a torch-only or a TF-only install works, and neither pays the other's import)."""
from __future__ import annotations

import pkgutil
import subprocess
import sys

import nndct_shared


def test_no_module_of_nndct_shared_imports_a_framework():
    modules = sorted(m.name for m in pkgutil.walk_packages(nndct_shared.__path__, "nndct_shared.")
                     if not m.name.endswith("__main__"))
    assert "nndct_shared.lstm.session" in modules and "nndct_shared.xmodel.xmodel_io" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules)\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"frameworks imported: {result.stdout.strip()}"


def test_pytorch_front_end_does_not_import_tensorflow():
    code = "import sys, pytorch_nndct.apis; print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"

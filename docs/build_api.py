"""Build the API reference (``make docs``): pdoc over the three packages, offline, into docs/api.

pdoc documents a package from its ``__all__``; names a package loads lazily on first
use (PEP 562, to keep ``import training`` light) are not in its namespace yet, so they
are loaded here first. Everything else is pdoc's own work.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

import pdoc
import pdoc.render

PACKAGES = ("recsys", "evaluation", "training")


def public_modules() -> list[str]:
    """The packages and their public subpackages (no ``_private`` module: those are re-exported)."""
    names = []
    for top in PACKAGES:
        names.append(top)
        package = importlib.import_module(top)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{top}."):
            if info.ispkg and not any(part.startswith("_") for part in info.name.split(".")):
                names.append(info.name)
    return names


def main(out: str = "docs/api") -> int:
    names = public_modules()
    for name in names:
        package = importlib.import_module(name)
        for attribute in getattr(package, "_LAZY", {}):
            setattr(package, attribute, getattr(package, attribute))
    pdoc.render.configure(docformat="numpy", search=True, show_source=False)
    pdoc.pdoc(*names, output_directory=Path(out))
    print(f"API reference written to {out}/index.html")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))

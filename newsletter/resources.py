"""Where the files that ship beside the code live, in a checkout and in an installed wheel."""
from __future__ import annotations

import importlib.util
from pathlib import Path


def _package_dir(name: str) -> Path:
    # templates/ and seeds/ are top-level folders mapped to packages in pyproject.toml;
    # they have no __init__.py, so they are namespace packages with one location.
    spec = importlib.util.find_spec(name)
    for location in spec.submodule_search_locations:
        path = Path(location)
        if path.is_dir():
            return path
    raise LookupError(f"{name} is not installed")


def templates_dir() -> Path:
    """The top-level templates/ folder (pages and mails)."""
    return _package_dir("newsletter_templates")


def seeds_dir() -> Path:
    """The top-level seeds/ folder of sample articles."""
    return _package_dir("newsletter_seeds")

"""Suite-wide: under pytest-xdist (`scripts/test.sh` runs `-n 2 --dist loadgroup`) each test module stays on one
worker, and so does each package whose conftest shares package-scoped fixtures (the Serve app): their expensive
fixtures are then built once, not once per worker or again whenever a worker comes back to the package."""

from __future__ import annotations

import pytest

SHARED_PACKAGES = ("tests/tts/serve/",)  # conftest.py with package-scoped fixtures


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(next((p for p in SHARED_PACKAGES if path.startswith(p)), path)))

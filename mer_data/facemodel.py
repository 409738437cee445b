"""Locating and fetching the MediaPipe BlazeFace short-range face detector model, with its sha256.

Lookup order: an explicit path (`--face-model`), then the `MER_DATA_FACE_MODEL` environment variable, then the user cache
directory. `fetch_model` fills the cache from the official URL or, where that cannot be reached (air-gapped clusters with a
package mirror, CI), from the `mediapipe==0.10.21` wheel that `pip download --no-deps` fetches through the package index.
"""

from __future__ import annotations

import json
import hashlib
import os
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from mer_data import MerDataError, sha256_file

OFFICIAL_URL = ("https://storage.googleapis.com/mediapipe-models/face_detector/blaze_face_short_range/"
                "float16/latest/blaze_face_short_range.tflite")
WHEEL_SPEC = "mediapipe==0.10.21"  # the last wheel that ships the short-range model as a plain file
WHEEL_MEMBER = "mediapipe/modules/face_detection/face_detection_short_range.tflite"
MODEL_FILE = "blaze_face_short_range.tflite"  # name of the cached model whatever its source
ENV_VAR = "MER_DATA_FACE_MODEL"
URL_TIMEOUT_S = 5.0  # fail fast where the URL is unreachable; the wheel fallback is the normal path offline


@dataclass(frozen=True)
class FetchResult:
    """Where the model was stored, its sha256 (hex) and where it came from ("cache", "url" or "wheel")."""

    path: Path
    sha256: str
    source: str


def cache_dir() -> Path:
    """The per-user cache directory of mer-data (e.g. ~/.cache/mer-data on Linux)."""
    return Path(platformdirs.user_cache_dir("mer-data"))


def resolve_model(path: Path | str | None = None) -> Path:
    """The model file to load: `path`, else $MER_DATA_FACE_MODEL, else the cached copy; MerDataError if none exists."""
    if path:
        if not Path(path).is_file():
            raise MerDataError(f"--face-model {path}: no such file")
        return Path(path)
    env = os.environ.get(ENV_VAR)
    if env:
        if not Path(env).is_file():
            raise MerDataError(f"{ENV_VAR}={env}: no such file")
        return Path(env)
    cached = cache_dir() / MODEL_FILE
    if cached.is_file():
        return cached
    raise MerDataError(f"no face model at {cached}: run `mer-data models fetch` (or pass --face-model PATH)")


def model_path() -> Path:
    """The model to use when none was named: the one `resolve_model` finds, else a freshly fetched copy."""
    try:
        return resolve_model()
    except MerDataError:
        return fetch_model().path


def fetch_model(dest_dir: Path | None = None, *, url: str = OFFICIAL_URL, force: bool = False) -> FetchResult:
    """Store the BlazeFace short-range model in `dest_dir` (default: the cache dir) and return where and its sha256.

    An existing copy is reused unless `force`. The official URL is tried first with a short timeout; on any network
    error the model is extracted from the mediapipe 0.10.21 wheel. Raises MerDataError when both ways fail.
    """
    dest_dir = Path(dest_dir) if dest_dir else cache_dir()
    target = dest_dir / MODEL_FILE
    if target.is_file() and not force:
        return FetchResult(target, sha256_file(target), "cache")
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    errors = []
    for source, getter in (("url", lambda: _download(url)), ("wheel", _from_wheel)):
        try:
            data = getter()
        except (OSError, MerDataError, zipfile.BadZipFile, KeyError) as exc:
            errors.append(f"{source}: {exc}")
            continue
        tmp.write_bytes(data)
        os.replace(tmp, target)  # a model file that exists is complete
        result = FetchResult(target, hashlib.sha256(data).hexdigest(), source)
        note = {"file": MODEL_FILE, "sha256": result.sha256, "source": source,
                "from": url if source == "url" else f"{WHEEL_SPEC}:{WHEEL_MEMBER}"}
        (dest_dir / (MODEL_FILE + ".json")).write_text(json.dumps(note, indent=2) + "\n")
        return result
    raise MerDataError("could not fetch the face model (" + "; ".join(errors) + ")")


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=URL_TIMEOUT_S) as resp:  # noqa: S310 (fixed https URL)
        data = resp.read()
    if len(data) < 1024:  # an error page, not a model
        raise OSError(f"{url} returned {len(data)} bytes")
    return data


def _from_wheel() -> bytes:
    """Download the mediapipe wheel for this interpreter with pip and read the model file out of it."""
    with tempfile.TemporaryDirectory(prefix="mer-data-wheel-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", tmp, WHEEL_SPEC]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wheels = sorted(Path(tmp).glob("mediapipe-*.whl"))
        if proc.returncode != 0 or not wheels:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no wheel"]
            raise MerDataError(f"pip download {WHEEL_SPEC} failed: {tail[0]}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            return wheel.read(WHEEL_MEMBER)

"""Offline, SYNTHETIC stand-in for the UCI Abalone dataset.

The data produced here is **synthetic**: it is NOT the UCI Abalone data
(Nash et al., 1994), only a simulation with the same format and similar
statistics, so that the tutorial pipeline runs without network access.
To use the real file instead, download ``abalone.data`` and pass it to the
pipeline, e.g. ``--param input_data=/path/to/abalone.data``.

Format (identical to ``abalone.data``): headerless CSV, 9 columns in the order
of :data:`ABALONE_COLUMNS`; ``sex`` is M/F/I, lengths are in units of 200 mm
on a 0.005 grid, weights in units of 200 g on a 0.0005 grid, ``rings`` is an
integer in 1..29.

How it is generated: ``sex`` is drawn with the real proportions (M 36.6 %,
F 31.3 %, I 32.1 %); ``length`` follows a sex-specific, left-skewed beta law on
[0.075, 0.815] (infants are smaller); diameter ~ 0.81 * length, height ~
0.34 * diameter (plus a few rare outliers), whole weight ~ 5 * length**3 with
log-normal noise, and shucked / viscera / shell weights ~ 0.43 / 0.22 / 0.29
of the whole weight.  Rings are ``(3.6 + 14 * sqrt(shell_weight) - 0.5 *
infant)`` times a mean-one log-normal factor (sigma = 0.205), so the noise grows
with age; infants are younger.

Calibration: for the default size (4177 rows) the ring mean / sd are about
9.9 / 3.2 (real data: 9.93 / 3.22), and a
``GradientBoostingRegressor(n_estimators=100, max_depth=3, random_state=0)``
trained on a random 70 % split (one-hot ``sex`` + standard scaling) reaches a
test MSE (15 % test split) of about 4.7, between 4.0 and 5.4 over data seeds
0-7 x 3 random splits (real data: ~4.5-5.5); so an ``mse_threshold`` of 6.0
passes and 3.0 fails.
"""
from __future__ import annotations

import operator
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["ABALONE_COLUMNS", "make_abalone", "write_abalone", "abalone_path"]

ABALONE_COLUMNS: list[str] = [
    "sex", "length", "diameter", "height", "whole_weight",
    "shucked_weight", "viscera_weight", "shell_weight", "rings",
]
DEFAULT_ROWS = 4177
CACHE_NAME = "abalone-synthetic.csv"
MIN_ROWS = 20

_SEXES = np.array(["M", "F", "I"])
_SEX_P = [0.366, 0.313, 0.321]
_BETA = {"M": (7.0, 3.7), "F": (10.3, 4.8), "I": (5.0, 5.5)}  # length shape
_RING_SIGMA = 0.205


def _as_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if number < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {number}")
    return number


def _grid(values: np.ndarray, step: float, low: float, high: float) -> np.ndarray:
    """Clip to [low, high] and round to the measurement grid of the real file."""
    return np.round(np.round(np.clip(values, low, high) / step) * step, 4)


def make_abalone(n_rows: int = DEFAULT_ROWS, *, seed: int = 0) -> pd.DataFrame:
    """Return ``n_rows`` synthetic abalone records (deterministic for ``seed``)."""
    n = _as_int(n_rows, "n_rows", MIN_ROWS)
    rng = np.random.default_rng(_as_int(seed, "seed", 0))
    sex = rng.choice(_SEXES, size=n, p=_SEX_P)
    a = np.select([sex == s for s in _BETA], [_BETA[s][0] for s in _BETA])
    b = np.select([sex == s for s in _BETA], [_BETA[s][1] for s in _BETA])
    length = _grid(0.075 + 0.74 * rng.beta(a, b), 0.005, 0.075, 0.815)
    diameter = _grid(0.81 * length - 0.016 + rng.normal(0, 0.012, n), 0.005, 0.055, 0.65)
    height = np.clip(0.34 * diameter + rng.normal(0, 0.012, n), 0.01, 0.25)
    outlier = rng.random(n) < 0.0005  # the real file has a couple of tall outliers
    height = _grid(np.where(outlier, height * rng.uniform(2.0, 4.0, n), height), 0.005, 0.0, 1.13)
    whole = _grid(5.0 * length**3 * np.exp(rng.normal(0, 0.12, n)), 0.0005, 0.002, 2.8255)
    shucked = _grid(whole * 0.43 * np.exp(rng.normal(0, 0.10, n)), 0.0005, 0.001, 1.488)
    viscera = _grid(whole * 0.22 * np.exp(rng.normal(0, 0.12, n)), 0.0005, 0.0005, 0.76)
    shell = _grid(whole * 0.29 * np.exp(rng.normal(0, 0.10, n)), 0.0005, 0.0015, 1.005)
    mean_rings = 3.6 + 14.0 * np.sqrt(shell) - 0.5 * (sex == "I")
    noise = np.exp(rng.normal(0, _RING_SIGMA, n) - _RING_SIGMA**2 / 2)
    rings = np.clip(np.rint(mean_rings * noise), 1, 29).astype(np.int64)
    columns = [sex, length, diameter, height, whole, shucked, viscera, shell, rings]
    return pd.DataFrame(dict(zip(ABALONE_COLUMNS, columns, strict=True)))


def write_abalone(
    path: str | os.PathLike[str], n_rows: int = DEFAULT_ROWS, *, seed: int = 0
) -> Path:
    """Write a synthetic abalone file (headerless CSV) atomically; return its path."""
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"path must be a file path, not a directory: {target}")
    frame = make_abalone(n_rows, seed=seed)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", newline="") as handle:
            frame.to_csv(handle, header=False, index=False, lineterminator="\n")
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def default_data_dir() -> Path:
    """``$JUPYTER_PIPELINES_HOME/data`` if set, else ``./.jupyter_pipelines/data``."""
    from .registry_db import default_home

    base = default_home()
    return base / "data"


def abalone_path(directory: str | os.PathLike[str] | None = None) -> Path:
    """Path of the cached synthetic file in ``directory``, generated if missing."""
    folder = default_data_dir() if directory is None else Path(directory).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"directory is not a directory: {folder}")
    target = folder / CACHE_NAME
    if not target.is_file():
        write_abalone(target)
    return target


def read_abalone(source: str | os.PathLike[str]) -> pd.DataFrame:
    """Read an abalone-format CSV (a path or URL, headerless, 9 columns).

    ``abalone-synthetic.csv`` (the tutorial's default) names the synthetic data, generated on
    first use so the tutorial works offline on a fresh machine: the bare name reads a file of
    that name in the working directory if there is one, else the state folder's copy
    (:func:`abalone_path`, made if missing), so running the tutorial adds nothing beside the
    notebook. A missing file of that name at an explicit path is generated there.
    """
    text = os.fspath(source)
    if Path(text).name == CACHE_NAME and "://" not in text and not Path(text).exists():
        if text == CACHE_NAME:
            text = os.fspath(abalone_path())
        else:
            write_abalone(text)
    return pd.read_csv(text, names=ABALONE_COLUMNS)

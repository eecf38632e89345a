"""Tests for the synthetic Abalone dataset (jupyter_pipelines.datasets)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jupyter_pipelines.datasets import (
    ABALONE_COLUMNS,
    abalone_path,
    make_abalone,
    read_abalone,
    write_abalone,
)

NUMERIC = ABALONE_COLUMNS[1:8]


@pytest.fixture(scope="module")
def default_frame() -> pd.DataFrame:
    return make_abalone()


def test_columns_shape_and_dtypes(default_frame: pd.DataFrame) -> None:
    assert ABALONE_COLUMNS == [
        "sex", "length", "diameter", "height", "whole_weight",
        "shucked_weight", "viscera_weight", "shell_weight", "rings",
    ]
    assert default_frame.shape == (4177, 9)
    assert list(default_frame.columns) == ABALONE_COLUMNS
    assert pd.api.types.is_integer_dtype(default_frame["rings"])
    for column in NUMERIC:
        assert pd.api.types.is_float_dtype(default_frame[column]), column
    assert set(default_frame["sex"]) == {"M", "F", "I"}
    assert not default_frame.isna().any().any()
    assert make_abalone(20, seed=3).shape == (20, 9)


def test_deterministic_per_seed() -> None:
    pd.testing.assert_frame_equal(make_abalone(500, seed=7), make_abalone(500, seed=7))
    assert not make_abalone(500, seed=7).equals(make_abalone(500, seed=8))


def test_ranges_and_relations(default_frame: pd.DataFrame) -> None:
    df = default_frame
    assert df["length"].between(0.075, 0.815).all()
    assert (df["diameter"] <= df["length"]).all()
    assert 0.75 < (df["diameter"] / df["length"]).median() < 0.85
    assert df["height"].between(0.0, 1.2).all()
    assert (df["height"] <= 0.25).mean() > 0.99
    assert df["whole_weight"].between(0.002, 2.83).all()
    for column, ratio in [("shucked_weight", 0.43), ("viscera_weight", 0.22), ("shell_weight", 0.29)]:
        assert abs((df[column] / df["whole_weight"]).median() - ratio) < 0.03, column
    assert df["rings"].between(1, 29).all()
    assert 9.4 < df["rings"].mean() < 10.4
    assert 2.8 < df["rings"].std() < 3.6
    by_sex = df.groupby("sex")[["length", "rings"]].mean()
    assert by_sex.loc["I", "length"] < by_sex.loc[["M", "F"], "length"].min()
    assert by_sex.loc["I", "rings"] < by_sex.loc[["M", "F"], "rings"].min()
    assert df["rings"].corr(df["shell_weight"]) > 0.5
    old, young = df[df["rings"] >= 12], df[df["rings"] <= 8]
    assert old["rings"].std() > young["rings"].std()  # heteroscedastic: noise grows with age


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_rows": 19}, "n_rows must be >= 20"),
        ({"n_rows": 0}, "n_rows must be >= 20"),
        ({"n_rows": 100.0}, "n_rows must be an integer"),
        ({"n_rows": "100"}, "n_rows must be an integer"),
        ({"n_rows": True}, "n_rows must be an integer"),
        ({"seed": -1}, "seed must be >= 0"),
        ({"seed": 1.5}, "seed must be an integer"),
    ],
)
def test_invalid_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_abalone(**kwargs)


def test_csv_round_trip_headerless(tmp_path: Path) -> None:
    path = write_abalone(tmp_path / "nested" / "dir" / "abalone.data", 200, seed=5)
    assert path == tmp_path / "nested" / "dir" / "abalone.data"
    first = path.read_text().splitlines()[0].split(",")
    assert len(first) == 9 and first[0] in {"M", "F", "I"} and first[-1].isdigit()
    assert all(len(value.split(".")[1]) <= 4 for value in first[1:8])
    loaded = pd.read_csv(path, names=ABALONE_COLUMNS)
    pd.testing.assert_frame_equal(loaded, make_abalone(200, seed=5))


def test_atomic_write_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "abalone.data"
    target.write_text("old content\n")
    write_abalone(target, 50)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["abalone.data"]
    assert len(target.read_text().splitlines()) == 50
    with pytest.raises(ValueError, match="n_rows"):
        write_abalone(tmp_path / "bad.data", 5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["abalone.data"]
    with pytest.raises(ValueError, match="directory"):
        write_abalone(tmp_path, 50)


def test_abalone_path_env_var_and_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("JUPYTER_PIPELINES_HOME", str(home))
    path = abalone_path()
    assert path == home / "data" / "abalone-synthetic.csv"
    assert len(pd.read_csv(path, names=ABALONE_COLUMNS)) == 4177
    path.write_text("M,0.5,0.4,0.1,0.8,0.3,0.2,0.2,9\n" * 20)  # cached: not regenerated
    assert abalone_path() == path and len(path.read_text().splitlines()) == 20

    monkeypatch.delenv("JUPYTER_PIPELINES_HOME")
    monkeypatch.chdir(tmp_path / "home")
    assert abalone_path() == Path.cwd() / ".jupyter_pipelines" / "data" / "abalone-synthetic.csv"
    assert abalone_path().is_file()

    explicit = abalone_path(tmp_path / "explicit")
    assert explicit == tmp_path / "explicit" / "abalone-synthetic.csv" and explicit.is_file()
    with pytest.raises(ValueError, match="not a directory"):
        abalone_path(explicit)



def test_read_abalone_default_name_reads_the_state_folders_copy(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The tutorial's ``input_data = "abalone-synthetic.csv"`` adds nothing beside the notebook."""
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("JUPYTER_PIPELINES_HOME", str(home))
    monkeypatch.chdir(work)
    assert len(read_abalone("abalone-synthetic.csv")) == 4177
    assert (home / "data" / "abalone-synthetic.csv").is_file()
    assert list(work.iterdir()) == []

    write_abalone(work / "abalone-synthetic.csv", 20)  # a file of that name here is the one read
    assert len(read_abalone("abalone-synthetic.csv")) == 20

    explicit = tmp_path / "elsewhere" / "abalone-synthetic.csv"  # an explicit path: made there
    assert len(read_abalone(explicit)) == 4177 and explicit.is_file()


def test_mse_calibration_with_gradient_boosting(default_frame: pd.DataFrame) -> None:
    pytest.importorskip("sklearn")
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    df = default_frame.iloc[np.random.default_rng(0).permutation(len(default_frame))]
    n_train, n_val = int(0.7 * len(df)), int(0.15 * len(df))
    train, test = df.iloc[:n_train], df.iloc[n_train + n_val:]
    features = ColumnTransformer(
        [("num", StandardScaler(), NUMERIC), ("sex", OneHotEncoder(handle_unknown="ignore"), ["sex"])]
    )
    model = make_pipeline(features, GradientBoostingRegressor(n_estimators=100, max_depth=3, random_state=0))
    model.fit(train.drop(columns="rings"), train["rings"])
    mse = float(np.mean((model.predict(test.drop(columns="rings")) - test["rings"]) ** 2))
    assert 3.6 < mse < 5.6, mse
    assert mse <= 6.0 and not mse <= 3.0  # threshold 6.0 passes, 3.0 fails

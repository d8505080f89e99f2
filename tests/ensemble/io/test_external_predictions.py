"""Predictions made elsewhere: every accepted format read back to the same numbers, the
restricted unpickler (data only, never code), and the matching of rows to a data set's images."""

from __future__ import annotations

import os
import pickle
import uuid
from pathlib import Path

import numpy as np
import pytest

from ensemble.errors import InputError
from ensemble.io.atomic import atomic_folder
from ensemble.io.external_predictions import check_values, match_images, read_external
from ensemble.io.landmarks import write_landmarks
from ensemble.io.predictions import save_predictions
from ensemble.io.safe_pickle import load_pickle
from ensemble.io.submission import write_submission

NAMES = np.array([f"{i:06d}.jpg" for i in range(5)], dtype=object)
REFERENCE = Path("DATA/test/test_points.csv")


def _points(rows: int = 5, n_points: int = 7, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 200, (rows, n_points, 2))


# ----------------------------------------------------------------------------------------------
# formats


def test_every_format_reads_back_the_same_names_and_numbers(tmp_path: Path) -> None:
    points = _points()
    paths = [f"data/test/images/{name}" for name in NAMES]
    with open(tmp_path / "organisers.pkl", "wb") as handle:
        pickle.dump({"image_names": paths, "landmarks": points}, handle)
    np.savez(tmp_path / "own.npz", file_names=NAMES.astype(str), points=points)
    np.savez(tmp_path / "alias.npz", image_names=NAMES.astype(str), landmarks=points)
    save_predictions(tmp_path / "saved.npz", NAMES, points)
    write_landmarks(tmp_path / "full.tsv", list(NAMES), points)
    expected = {
        "organisers.pkl": ("pickle", paths, points),
        "own.npz": ("npz", NAMES, points),
        "alias.npz": ("npz", NAMES, points),
        "saved.npz": ("npz", NAMES, points.astype(np.float32)),
        "full.tsv": ("landmarks", NAMES, points),
    }
    for file, (kind, names, values) in expected.items():
        read = read_external(tmp_path / file)
        assert read.format == kind and not read.requested_only
        assert list(read.file_names) == list(names)
        np.testing.assert_allclose(read.points, values, rtol=1e-6)


def test_a_bare_array_has_no_names(tmp_path: Path) -> None:
    points = _points()
    np.save(tmp_path / "bare.npy", points)
    np.savez(tmp_path / "points_only.npz", points=points)
    with open(tmp_path / "array.pkl", "wb") as handle:
        pickle.dump(points, handle)
    for file in ("bare.npy", "points_only.npz", "array.pkl"):
        read = read_external(tmp_path / file)
        assert read.file_names is None
        np.testing.assert_array_equal(read.points, points)


def test_a_submission_is_read_as_its_requested_points(tmp_path: Path) -> None:
    values = np.round(_points(n_points=3), 4)
    write_submission(tmp_path / "sub.csv", list(NAMES), values)
    read = read_external(tmp_path / "sub.csv")
    assert read.requested_only and list(read.file_names) == list(NAMES)
    np.testing.assert_array_equal(read.points, values)


@pytest.mark.parametrize(
    "arrays, needle",
    [
        ({"coords": np.zeros((2, 3, 2))}, "no points: expected an array named 'points'"),
        ({"points": np.zeros((2, 3))}, "points of shape (2, 3)"),
        ({"points": np.zeros((2, 3, 2)), "file_names": np.array(["a"])}, "1 file_names for 2"),
    ],
)
def test_an_npz_that_does_not_fit_is_named(tmp_path: Path, arrays: dict, needle: str) -> None:
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(InputError, match="bad.npz") as error:
        read_external(tmp_path / "bad.npz")
    assert needle in str(error.value)


def test_an_npy_of_another_shape_is_named(tmp_path: Path) -> None:
    np.save(tmp_path / "flat.npy", np.zeros((5, 14)))
    with pytest.raises(InputError) as error:
        read_external(tmp_path / "flat.npy")
    assert str(error.value) == (
        f"{tmp_path / 'flat.npy'}: points of shape (5, 14) (float64); expected (images, points, 2)"
    )


def test_object_arrays_and_unknown_text_are_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "objects.npz", file_names=NAMES, points=_points())  # object dtype
    with pytest.raises(InputError, match="np.array\\(names, dtype=str\\)"):
        read_external(tmp_path / "objects.npz")
    (tmp_path / "notes.txt").write_text("hello\n")
    with pytest.raises(InputError, match="unknown format"):
        read_external(tmp_path / "notes.txt")


# ----------------------------------------------------------------------------------------------
# the restricted unpickler


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_data_pickles_of_every_protocol_load(tmp_path: Path, protocol: int) -> None:
    data = {
        "image_names": ["a.jpg", "b.jpg"],
        "names": np.array(["a.jpg", "b.jpg"]),
        "landmarks": _points(2).astype(np.float32),
        "strided": _points(2)[:, ::2],
        "scalar": np.float64(1.5),
        "other": (1, 2.5, 3j, b"raw", bytearray(b"x"), {1}, frozenset({2}), None, True),
    }
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    loaded = load_pickle(path)
    for key in ("names", "landmarks", "strided"):
        np.testing.assert_array_equal(loaded[key], data[key])
        assert loaded[key].dtype == data[key].dtype
    assert loaded["image_names"] == data["image_names"]
    assert loaded["scalar"] == 1.5 and loaded["other"] == data["other"]


def test_a_numpy_1_pickle_loads(tmp_path: Path) -> None:
    modern = pickle.dumps({"landmarks": _points(2)}, protocol=2)
    assert b"numpy._core.multiarray" in modern or b"numpy.core.multiarray" in modern
    old = modern.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    (tmp_path / "old.pkl").write_bytes(old)
    np.testing.assert_array_equal(load_pickle(tmp_path / "old.pkl")["landmarks"], _points(2))


class _Payload:
    """Unpickled by a plain pickle.load, it runs a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Writer:
    """Unpickled by a plain pickle.load, it writes a file through a builtin."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('x')",))


@pytest.mark.parametrize("payload", [_Payload, _Writer])
@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_a_pickle_that_would_run_code_is_refused_and_runs_nothing(
    tmp_path: Path, payload: type, protocol: int
) -> None:
    marker = Path(f"/tmp/imp_pwned_{uuid.uuid4().hex}")
    path = tmp_path / "evil.pkl"
    path.write_bytes(
        pickle.dumps({"image_names": ["a.jpg"], "x": payload(marker)}, protocol=protocol)
    )
    with pytest.raises(InputError, match="evil.pkl: refused to load") as error:
        load_pickle(path)
    assert ("system" in str(error.value)) or ("exec" in str(error.value))
    assert not marker.exists()


def test_codecs_encode_is_admitted_for_latin1_only(tmp_path: Path) -> None:
    stream = pickle.dumps(b"\x00\xff", protocol=2)
    (tmp_path / "bytes.pkl").write_bytes(stream)
    assert load_pickle(tmp_path / "bytes.pkl") == b"\x00\xff"
    (tmp_path / "codec.pkl").write_bytes(stream.replace(b"latin1", b"utf-16"))
    with pytest.raises(InputError, match="not a readable pickle"):
        load_pickle(tmp_path / "codec.pkl")


def test_a_truncated_pickle_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "cut.pkl").write_bytes(pickle.dumps({"landmarks": _points()}, protocol=4)[:40])
    with pytest.raises(InputError, match="cut.pkl: not a readable pickle"):
        read_external(tmp_path / "cut.pkl")


def test_a_tiny_pickle_asking_for_a_huge_array_is_refused(tmp_path: Path) -> None:
    """38 bytes calling numpy.ndarray((1000000, 971, 2)): 15.5 GB that no data backs."""
    path = tmp_path / "bomb.pkl"
    path.write_bytes(b"cnumpy\nndarray\n((I1000000\nI971\nI2\nttR.")
    with pytest.raises(InputError, match=r"bomb.pkl: not a readable pickle .*15,536,000,000 bytes"):
        load_pickle(path)
    grown = tmp_path / "bytes.pkl"  # bytearray(n) would fill n bytes while loading
    grown.write_bytes(b"c__builtin__\nbytearray\n(I2000000000\ntR.")
    with pytest.raises(InputError, match=r"bytearray\(2,000,000,000\) asked for by a size"):
        load_pickle(grown)


# ----------------------------------------------------------------------------------------------
# matching rows to the data set's images


def _external(tmp_path: Path, names, points) -> object:
    np.savez(tmp_path / "p.npz", file_names=np.asarray(names, dtype=str), points=points)
    return read_external(tmp_path / "p.npz")


def test_reordered_rows_and_paths_are_matched_by_file_name(tmp_path: Path) -> None:
    points = _points()
    order = np.array([3, 0, 4, 1, 2])
    written = [f"C:\\data\\{NAMES[i]}" if i % 2 else f"data/test/images/{NAMES[i]}" for i in order]
    matched = match_images(_external(tmp_path, written, points[order]), NAMES, REFERENCE)
    np.testing.assert_array_equal(matched.positions, np.arange(5))
    np.testing.assert_array_equal(matched.points, points)


def test_missing_extra_and_repeated_images_are_named(tmp_path: Path) -> None:
    points = _points()
    missing = _external(tmp_path, NAMES[[0, 1, 3, 4]], points[:4])
    with pytest.raises(InputError, match="1 image\\(s\\) of .* missing, the first '000002.jpg'"):
        match_images(missing, NAMES, REFERENCE)
    partial = match_images(missing, NAMES, REFERENCE, partial=True)
    np.testing.assert_array_equal(partial.positions, [0, 1, 3, 4])
    extra = _external(tmp_path, [*NAMES[:4], "x/other.jpg"], points)
    with pytest.raises(InputError, match="1 image\\(s\\) not in .*, the first 'x/other.jpg'"):
        match_images(extra, NAMES, REFERENCE, partial=True)
    twice = _external(tmp_path, [*NAMES[:4], "y/000001.jpg"], points)
    with pytest.raises(InputError, match="'000001.jpg' appears twice \\(rows 2 and 5\\)"):
        match_images(twice, NAMES, REFERENCE)


def test_rows_without_names_need_the_data_order(tmp_path: Path) -> None:
    np.save(tmp_path / "bare.npy", _points())
    bare = read_external(tmp_path / "bare.npy")
    with pytest.raises(InputError, match="no file names.*--order data"):
        match_images(bare, NAMES, REFERENCE)
    np.testing.assert_array_equal(
        match_images(bare, NAMES, REFERENCE, data_order=True).points, _points()
    )
    with pytest.raises(InputError, match="5 rows without file names, .* has 4"):
        match_images(bare, NAMES[:4], REFERENCE, data_order=True)


def test_non_finite_values_name_the_first_image(tmp_path: Path) -> None:
    points = _points()
    points[2, 4, 1] = np.nan
    external = _external(tmp_path, NAMES, points)
    with pytest.raises(InputError, match="image '000002.jpg': point 4 y = nan is not finite"):
        check_values(external, NAMES, points)
    requested = np.ones(points.shape[:2], dtype=bool)
    requested[2, 4] = False  # ragged padding: not requested, not checked
    check_values(external, NAMES, points, requested)
    points[1, 0, 0] = 1e9
    with pytest.raises(InputError, match="'000001.jpg': .* not a plausible pixel coordinate"):
        check_values(external, NAMES, points)


# ----------------------------------------------------------------------------------------------
# the folder written at once


def test_atomic_folder_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "runs" / "run"
    with pytest.raises(RuntimeError), atomic_folder(target) as work:
        (work / "a.txt").write_text("half")
        raise RuntimeError("stop")
    assert list((tmp_path / "runs").iterdir()) == []
    with atomic_folder(target) as work:
        (work / "a.txt").write_text("first")
    with atomic_folder(target) as work:
        (work / "b.txt").write_text("second")
    assert [p.name for p in target.iterdir()] == ["b.txt"]
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["run"]

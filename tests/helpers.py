"""Helpers the test modules share, in one place: tiny datasets the tests write themselves,
clean-failure checks of `ens`, a disk that fills, drawn-face datasets, run folders for blend
fits, corrupted files, suspect-label cases and the leaderboard metric by hand."""

from __future__ import annotations

import os
import warnings
from errno import ENOSPC
from pathlib import Path

import numpy as np
import pandas as pd
from click.testing import CliRunner
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from ensemble.cli import cli
from ensemble.competition.subsets import draw_point_subsets, validation_subsets
from ensemble.io.landmarks import write_landmarks
from ensemble.io.predictions import save_predictions
from ensemble.io.submission import gather_points
from ensemble.io.test_points import write_test_points

# ----------------------------------------------------------------------------------------------
# Tiny competition datasets and clean-failure checks of `ens`


def write_tiny_competition(
    root: Path, n_train: int = 8, n_test: int = 6, n_points: int = 12, k: int = 5, seed: int = 0
) -> dict:
    """A competition-layout folder with random images and landmarks inside each image."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, count, offset in (("train", n_train, 0), ("test", n_test, 1000)):
        images = root / split / "images"
        images.mkdir(parents=True)
        names = [f"{offset + i:06d}.jpg" for i in range(count)]
        sizes = rng.integers(40, 90, size=(count, 2))
        points = rng.uniform(0.1, 0.9, size=(count, n_points, 2)) * sizes[:, None, :]
        points = np.rint(points)
        for name, (width, height) in zip(names, sizes, strict=True):
            pixels = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(images / name, quality=90)
        write_landmarks(root / split / "landmarks.csv", names, points, integer=True)
        out[split] = (names, points, sizes.astype(float))
    indices = draw_point_subsets(rng, n_test, n_points, k)
    write_test_points(root / "test" / "test_points.csv", out["test"][0], indices)
    out["indices"] = indices
    return out


def write_demo_with_baseline(root: Path) -> Path:
    """root/demo (a tiny make-demo competition, 12 train and 4 test images) and root/base.csv
    (its mean-shape submission, by `ens baseline`)."""
    from ensemble.synthetic.demo import make_demo

    make_demo(root / "demo", n_train=12, n_test=4, progress=False, n_jobs=1)
    result = CliRunner().invoke(
        cli, ["baseline", "--data", str(root / "demo"), "-o", str(root / "base.csv")]
    )
    assert result.exit_code == 0, result.output
    return root


def folder_tree(root: Path) -> dict[str, bytes | str | None]:
    """Every file (its bytes) and folder (None) under `root`, by relative path; a FIFO, device
    or socket by its kind (never opened)."""
    from ensemble.io.file_kind import special_file_kind

    tree: dict[str, bytes | str | None] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            tree[os.path.relpath(os.path.join(folder, name), root)] = None
        for name in files:
            path = Path(folder, name)
            tree[os.path.relpath(path, root)] = special_file_kind(path) or path.read_bytes()
    return tree


def invoke_ens(args: list[str]):
    """`ens ARGS` through click's runner; no RuntimeWarning (numpy's NaN warnings) may escape."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = CliRunner().invoke(cli, args)
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], caught
    return result


def fails_cleanly(root: Path, args: list[str], *needles: str, code: int = 1) -> str:
    """Run `ens ARGS`: it must exit with `code`, every needle in its output, no traceback,
    and leave the tree under `root` exactly as it was. Returns the output."""
    before = folder_tree(root)
    result = invoke_ens(args)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output, result.output
    assert isinstance(result.exception, SystemExit)
    assert folder_tree(root) == before
    return result.output


# ----------------------------------------------------------------------------------------------
# Hostile conditions: a disk that fills while one file is written, a decompression bomb


class _FillingFile:
    """A file opened for writing whose writes fail with OSError `code` once `room` bytes are
    in it."""

    def __init__(self, handle, room: int, code: int) -> None:
        self._handle, self._room, self._code = handle, room, code

    def write(self, data):
        if len(data) > self._room:
            self._handle.write(data[: self._room])  # a partial file, as a full disk leaves it
            self._room = 0
            raise OSError(self._code, os.strerror(self._code))
        self._room -= len(data)
        return self._handle.write(data)

    def __getattr__(self, name: str):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._handle.close()

    def __iter__(self):
        return iter(self._handle)


def fill_disk_on(monkeypatch, name: str, room: int = 64, code: int = ENOSPC) -> None:
    """Make the disk fill (OSError `code`, ENOSPC by default) after `room` bytes of any file
    opened for writing whose name holds `name` (its temp files too), through builtins.open."""
    import builtins

    real_open = builtins.open

    def filling_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        writing = any(flag in mode for flag in "wax+")
        if writing and isinstance(file, str | os.PathLike) and name in Path(file).name:
            return _FillingFile(handle, room, code)
        return handle

    monkeypatch.setattr(builtins, "open", filling_open)


def bomb_png(width: int, height: int) -> bytes:
    """A PNG of about 100 bytes whose header declares width x height RGB pixels (a
    decompression bomb: its few compressed rows are never reached)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    rows = zlib.compress(bytes(1 + 3 * min(width, 1000)))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


# ----------------------------------------------------------------------------------------------
# Drawn faces: tiny learnable datasets for the model tests (ellipses with eyes, nose and mouth)


N_OVAL = 12


def face_points(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A symmetric face of N_OVAL + 6 landmarks placed at random inside a width x height image."""
    radius = rng.uniform(0.25, 0.4) * min(width, height)
    cx = rng.uniform(radius, width - radius)
    cy = rng.uniform(radius, height - radius)
    angle = rng.uniform(-0.3, 0.3)
    t = np.linspace(0, 2 * np.pi, N_OVAL, endpoint=False) + np.pi / N_OVAL
    local = [np.stack([0.8 * np.cos(t), np.sin(t)], axis=1)]
    eye_dx, mouth = rng.uniform(0.25, 0.4), rng.uniform(0.35, 0.55)
    local.append(np.array([[-eye_dx, -0.25], [eye_dx, -0.25], [-0.15, 0.1], [0.15, 0.1]]))
    local.append(np.array([[-0.3, mouth], [0.3, mouth]]))
    shape = np.concatenate(local) * radius
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return shape @ rotation.T + [cx, cy]


def draw_face(rng: np.random.Generator, width: int, height: int, points: np.ndarray) -> Image.Image:
    """Render the face of `points` on a noisy background."""
    pixels = rng.integers(0, 90, size=(height, width, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    draw.polygon([tuple(p) for p in points[:N_OVAL]], fill=(220, 180, 150))
    r = max(1.5, 0.04 * min(width, height))
    for (x, y), colour in zip(
        points[N_OVAL:], [(20, 20, 20)] * 2 + [(150, 90, 70)] * 2 + [(200, 30, 40)] * 2, strict=True
    ):
        draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
    draw.line([tuple(points[-2]), tuple(points[-1])], fill=(200, 30, 40), width=max(1, int(r)))
    return image


def write_faces(
    root: Path, n_train: int = 160, n_test: int = 20, seed: int = 0, k: int = 5
) -> Path:
    """A competition-layout folder of drawn faces (with the demo's hidden test/landmarks.csv)."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", n_train), ("test", n_test)):
        folder = root / split / "images"
        folder.mkdir(parents=True)
        names, shapes = [], []
        for i in range(count):
            width, height = (int(v) for v in rng.integers(48, 120, size=2))
            points = face_points(rng, width, height)
            draw_face(rng, width, height, points).save(folder / f"{split}{i:05d}.jpg", quality=92)
            names.append(f"{split}{i:05d}.jpg")
            shapes.append(points)
        write_landmarks(root / split / "landmarks.csv", names, np.array(shapes))
    test_names = [f"test{i:05d}.jpg" for i in range(n_test)]
    n_points = N_OVAL + 6
    write_test_points(
        root / "test" / "test_points.csv", test_names, draw_point_subsets(rng, n_test, n_points, k)
    )
    return root


# ----------------------------------------------------------------------------------------------
# Seven landmarks of the drawn faces, without a layout file


# Of the drawn face's landmarks: two eyes, the nose pair, the mouth corners and the chin.
SEVEN = [N_OVAL, N_OVAL + 1, N_OVAL + 2, N_OVAL + 3, N_OVAL + 4, N_OVAL + 5, 2]

SEVEN_CONFIG = """
[defaults]
restarts = 0  # health and restarts are tested in tests/models/test_restarts.py
crop_size = 32
batch_size = 16
val_fraction = 0.25
device = "cpu"

[[run]]
name = "cnn"
arch = "small_cnn_basic"
stages = [{epochs = 1, lr = 0.003}]
"""


def write_seven(root: Path, n_train: int = 48, n_test: int = 6) -> Path:
    """A data folder of drawn faces labelled with 7 of their landmarks."""
    rng = np.random.default_rng(0)
    for split, count in (("train", n_train), ("test", n_test)):
        (root / split / "images").mkdir(parents=True)
        names, shapes = [], []
        for i in range(count):
            width, height = (int(v) for v in rng.integers(48, 96, size=2))
            points = face_points(rng, width, height)
            names.append(f"{split}{i:03d}.jpg")
            draw_face(rng, width, height, points).save(root / split / "images" / names[-1])
            shapes.append(points[SEVEN])
        write_landmarks(root / split / "landmarks.csv", names, np.array(shapes))
    test_names = [f"test{i:03d}.jpg" for i in range(n_test)]
    write_test_points(
        root / "test" / "test_points.csv", test_names, draw_point_subsets(rng, n_test, 7, 3)
    )
    return root


# ----------------------------------------------------------------------------------------------
# Run folders with known noise, as `ens train-all` writes them (blend fits)


N_FACE = 971


def random_truth(rng, rows):
    return rng.uniform(50, 400, size=(rows, N_FACE, 2))


def image_names(rows, prefix="val"):
    return np.array([f"{prefix}{i:04d}.jpg" for i in range(rows)], dtype=object)


def make_runs(tmp_path, sigmas, test_points=True, submissions=True):
    """A data folder and one run folder per noise level, as `ens train-all` writes them."""
    rng = np.random.default_rng(7)
    data, runs = tmp_path / "data", tmp_path / "runs"
    val_names, test_names = image_names(120), image_names(30, "test")
    truth = random_truth(rng, 120)
    write_landmarks(data / "train" / "landmarks.csv", val_names, truth)
    indices = np.stack([rng.choice(N_FACE, 6, replace=False) for _ in range(30)])
    if test_points:
        write_test_points(data / "test" / "test_points.csv", test_names, indices)
    test_truth = random_truth(rng, 30)
    for number, sigma in enumerate(sigmas):
        folder = runs / f"run{number}"
        folder.mkdir(parents=True)
        (folder / "config.toml").write_text(f'data = "{data}"\n')
        save_predictions(
            folder / "val_predictions.npz",
            val_names,
            truth + sigma * rng.normal(size=truth.shape),
        )
        test_predictions = test_truth + sigma * rng.normal(size=test_truth.shape)
        order = rng.permutation(30)  # the run's own row order
        save_predictions(
            folder / "test_predictions.npz", test_names[order], test_predictions[order]
        )
        if submissions:
            values = gather_points(test_predictions.astype(np.float32), indices)
            frame = pd.DataFrame(np.round(values.reshape(30, -1), 4))
            frame.insert(0, "file_name", test_names)
            frame.columns = ["file_name"] + [f"Point_M{i}_{a}" for i in range(6) for a in "XY"]
            frame.to_csv(folder / "submission.csv", index=False)
    return runs, data, test_names, indices, test_truth


# ----------------------------------------------------------------------------------------------
# Random corruption of a file's text (property tests of the readers)


def mutate(text: str, data: st.DataObject) -> str:
    """Apply one random corruption to a file's text."""
    kind = data.draw(st.sampled_from(["cut", "insert", "delete", "dup_line", "swap", "blank"]))
    lines = text.splitlines(keepends=True)
    if kind == "cut":
        return text[: data.draw(st.integers(0, len(text)))]
    if kind == "insert":
        at = data.draw(st.integers(0, len(text)))
        junk = data.draw(st.text(alphabet="\t,[]-.e x9\n\"'nainf", min_size=1, max_size=4))
        return text[:at] + junk + text[at:]
    if kind == "delete":
        at = data.draw(st.integers(0, max(len(text) - 1, 0)))
        return text[:at] + text[at + 1 :]
    if kind == "dup_line":
        at = data.draw(st.integers(0, len(lines) - 1))
        return "".join(lines[: at + 1] + lines[at:])
    if kind == "swap":
        at = data.draw(st.integers(0, len(lines) - 2))
        lines[at], lines[at + 1] = lines[at + 1], lines[at]
        return "".join(lines)
    at = data.draw(st.integers(1, len(lines)))
    return "".join(lines[:at] + ["\n"] + lines[at:])


# ----------------------------------------------------------------------------------------------
# Suspect-label cases: runs' predictions with planted wrong labels and hard images


SUSPECT_N_POINTS = 12
SUSPECT_IMAGE_SIZE = 120


def suspect_case(
    n: int = 200,
    n_runs: int = 3,
    planted: tuple[int, ...] = (3, 50, 97, 140, 188),
    hard: tuple[int, ...] = (10, 60, 120),
    seed: int = 0,
) -> dict:
    """Labels, runs' predictions (R, n, N, 2) and one run's tta_spread, with known bad rows.

    Faces of varied size (errors in px grow with the face); every image has a shared model
    error (the runs err alike) and a small per-run error; `planted` labels are moved about two
    face sizes away while the runs stay on the face; on `hard` images the runs scatter widely
    (1.5 face sizes, independently) around the right label.
    """
    rng = np.random.default_rng(seed)
    template = rng.uniform(-1, 1, (SUSPECT_N_POINTS, 2))
    size = np.exp(rng.normal(np.log(20), 0.4, n))[:, None, None]  # px
    true = 60 + size * template + rng.normal(0, 0.5, (n, SUSPECT_N_POINTS, 2)) * size / 20
    scale = np.exp(rng.normal(0, 0.3, n))[:, None, None] * size / 20
    shared = rng.normal(0, 2, (n, SUSPECT_N_POINTS, 2)) * scale
    own = rng.normal(0, 2, (n_runs, n, SUSPECT_N_POINTS, 2)) * scale
    predictions = true + shared + own
    for row in hard:
        predictions[:, row] = (
            true[row] + rng.normal(0, 1.5, (n_runs, SUSPECT_N_POINTS, 2)) * size[row]
        )
    labels = true.copy()
    labels[list(planted)] += np.array([2.2, 2.0]) * size[list(planted)]
    tta = (scale[:, 0, 0] ** 2) * rng.uniform(1.5, 2.5, n)  # a flip-view variance, px²
    tta[list(hard)] = (1.5 * size[list(hard), 0, 0]) ** 2  # the views disagree on hard images
    names = np.array([f"{i:05d}.jpg" for i in range(n)], dtype=object)
    return {
        "names": names,
        "labels": labels,
        "predictions": predictions,
        "tta": tta,
        "planted": set(planted),
        "hard": set(hard),
    }


def write_suspect_workspace(
    root: Path, case: dict, run_names: list[str], with_tta: bool = False
) -> None:
    """DATA (train images and labels) and RUNS/<run>/val_predictions.npz from `suspect_case`."""
    images = root / "data" / "train" / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name in case["names"][:40]:  # galleries draw only a few; the rest are "not found"
        pixels = rng.integers(0, 255, (SUSPECT_IMAGE_SIZE, SUSPECT_IMAGE_SIZE, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images / name, quality=80)
    write_landmarks(root / "data" / "train" / "landmarks.csv", case["names"], case["labels"])
    for number, run in enumerate(run_names):
        save_predictions(
            root / "runs" / run / "val_predictions.npz",
            case["names"],
            case["predictions"][number],
            tta_spread=case["tta"] if with_tta else None,
        )


# ----------------------------------------------------------------------------------------------
# The leaderboard metric by hand


def direct_score(names: np.ndarray, predicted: np.ndarray, truth: np.ndarray) -> float:
    """Leaderboard metric by hand: per image, MSE over the 30-index subset's 60 values."""
    subsets = validation_subsets(names, truth.shape[1])
    rows = np.arange(len(names))[:, None]
    errors = (predicted[rows, subsets] - truth[rows, subsets]) ** 2
    return float(errors.reshape(len(names), -1).mean(axis=1).mean())

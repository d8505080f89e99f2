"""A competition data folder (DATA/): every path of its layout, spelled once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TRAIN, TEST = "train", "test"
LANDMARKS = "landmarks.csv"  # train labels; on demo data also the hidden test truth
TEST_POINTS = "test_points.csv"
LABEL_ERRORS = "label_errors.csv"  # demo data: the planted label errors
LAYOUT_FILE = "layout.json"  # an optional layout beside train/landmarks.csv
IMAGES = "images"


@dataclass(frozen=True)
class DataFolder:
    """DATA/train/{landmarks.csv, images/, layout.json, label_errors.csv} and
    DATA/test/{test_points.csv, images/, landmarks.csv (demo truth)}."""

    path: Path

    @classmethod
    def at(cls, path: str | Path) -> DataFolder:
        """The data folder at `path`."""
        return cls(Path(path))

    @property
    def train_landmarks(self) -> Path:
        """train/landmarks.csv: the training labels."""
        return self.path / TRAIN / LANDMARKS

    @property
    def test_landmarks(self) -> Path:
        """test/landmarks.csv: the hidden test truth (demo data only)."""
        return self.path / TEST / LANDMARKS

    @property
    def test_points(self) -> Path:
        """test/test_points.csv: the landmark indices each test row asks for."""
        return self.path / TEST / TEST_POINTS

    @property
    def label_errors(self) -> Path:
        """train/label_errors.csv: the label errors make-demo planted."""
        return self.path / TRAIN / LABEL_ERRORS

    @property
    def layout_file(self) -> Path:
        """train/layout.json: the dataset's own layout, when it ships one."""
        return self.path / TRAIN / LAYOUT_FILE

    def images(self, split: str) -> Path:
        """The images folder of the "train" or "test" split."""
        return self.path / split / IMAGES

    def landmarks(self, split: str) -> Path:
        """landmarks.csv of the "train" or "test" split."""
        return self.path / split / LANDMARKS

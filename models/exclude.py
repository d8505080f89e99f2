"""The `exclude` list of a run: images left out of training and validation scoring."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ensemble.errors import InputError
from ensemble.io.checks import row_index
from ensemble.io.file_kind import require_regular_file


def read_exclude_list(path: str | Path, file_names: np.ndarray) -> np.ndarray:
    """Bool mask over `file_names` of the images the CSV at `path` excludes.

    The CSV has a `file_name` column (e.g. REPORT/suspect_labels.csv from `ens analyze`); when
    it has a `suspect` column, only rows with suspect = 1 count. A name that is not a training
    image is an error naming the line: a typo would otherwise exclude nothing, silently.
    """
    path = Path(path)
    require_regular_file(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle))
    except FileNotFoundError:
        raise InputError(path, "exclude file not found") from None
    except IsADirectoryError:
        raise InputError(path, "exclude file is a directory") from None
    except UnicodeDecodeError as error:
        raise InputError(path, f"not UTF-8 text: {error}") from None
    except (OSError, csv.Error) as error:
        raise InputError(path, f"cannot read the exclude file: {error}") from None
    if not rows or "file_name" not in rows[0]:
        raise InputError(path, "the header has no file_name column", 1)
    header = rows[0]
    name_at = header.index("file_name")
    suspect_at = header.index("suspect") if "suspect" in header else None
    position = row_index(file_names)
    mask = np.zeros(len(file_names), dtype=bool)
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise InputError(path, f"{len(row)} cells, the header has {len(header)}", line)
        if suspect_at is not None:
            if row[suspect_at] not in ("0", "1"):
                raise InputError(path, f"suspect is {row[suspect_at]!r}, not 0 or 1", line)
            if row[suspect_at] == "0":
                continue
        name = row[name_at]
        if name not in position:
            raise InputError(path, f"{name!r} is not an image of train/landmarks.csv", line)
        mask[position[name]] = True
    return mask

"""ImageSource: a folder of images, labels from sub-folders or a CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from podium.core.errors import (
    ConfigValidationError,
    DataSourceNotFoundError,
    DataSourceReadError,
)
from podium.data.sources.base import hash_file
from podium.data.sources.image_source import ImageSource, load_image


def _write(path: Path, size: tuple[int, int], mode: str = "RGB", seed: int = 0) -> np.ndarray:
    """Write a small random image and return its pixels."""
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, mode=mode).save(path)
    return pixels


@pytest.fixture
def by_folder(tmp_path: Path) -> Path:
    """Five images in two class folders (one nested deeper), plus non-image files."""
    root = tmp_path / "images"
    _write(root / "dogs" / "b.png", (4, 3), seed=1)
    _write(root / "cats" / "a.png", (5, 2), "L", seed=2)
    _write(root / "cats" / "z.JPG", (6, 4), seed=3)
    _write(root / "dogs" / "puppies" / "c.png", (2, 2), seed=4)
    _write(root / "cats" / "y.bmp", (3, 3), seed=5)
    (root / "cats" / "notes.txt").write_text("not an image")
    (root / ".cache").mkdir()
    _write(root / ".cache" / "thumb.png", (1, 1), seed=6)
    return root


def test_sub_folder_labels_and_header_columns(by_folder: Path) -> None:
    """Each image is a record, sorted by path, labelled by its first-level folder."""
    source = ImageSource(by_folder)
    assert source.column_names() == ["image", "label", "width", "height", "mode"]
    frame = source.to_pandas()
    root = by_folder.resolve()
    assert frame["image"].tolist() == [
        str(root / "cats/a.png"),
        str(root / "cats/y.bmp"),
        str(root / "cats/z.JPG"),
        str(root / "dogs/b.png"),
        str(root / "dogs/puppies/c.png"),
    ]
    assert frame["label"].tolist() == ["cats", "cats", "cats", "dogs", "dogs"]
    assert frame["width"].tolist() == [5, 3, 6, 4, 2]
    assert frame["height"].tolist() == [2, 3, 4, 3, 2]
    assert frame["mode"].tolist() == ["L", "RGB", "RGB", "RGB", "RGB"]
    assert source.record_count() == 5


def test_flat_folder_has_no_label_column(tmp_path: Path) -> None:
    """Images directly in the folder, with no sub-folders, give no label column."""
    _write(tmp_path / "one.png", (2, 2))
    _write(tmp_path / "two.png", (2, 2), seed=1)
    source = ImageSource(tmp_path)
    assert source.column_names() == ["image", "width", "height", "mode"]
    assert len(source.to_pandas()) == 2


def test_root_images_beside_sub_folders_have_missing_labels(tmp_path: Path) -> None:
    """An image in the root, beside labelled sub-folders, has a missing label."""
    _write(tmp_path / "cats" / "a.png", (2, 2))
    _write(tmp_path / "loose.png", (2, 2), seed=1)
    frame = ImageSource(tmp_path).to_pandas()
    labels = dict(zip(frame["image"].map(lambda p: Path(p).name), frame["label"], strict=True))
    assert labels["a.png"] == "cats"
    assert pd.isna(labels["loose.png"])


def test_batches_are_bounded(by_folder: Path) -> None:
    """Batches hold at most batch_rows images, in the same order as a full read."""
    source = ImageSource(by_folder, batch_rows=2)
    batches = list(source.iter_batches())
    assert [len(b) for b in batches] == [2, 2, 1]
    assert pd.concat(batches)["image"].tolist() == source.to_pandas()["image"].tolist()


def test_extensions_filter(by_folder: Path) -> None:
    """Only the listed extensions count, case-insensitively and with or without a dot."""
    source = ImageSource(by_folder, extensions=["jpg", ".BMP"])
    names = [Path(p).name for p in source.to_pandas()["image"]]
    assert names == ["y.bmp", "z.JPG"]


def test_files_lists_every_image_with_its_hash(by_folder: Path) -> None:
    """files() gives each image (and nothing else) with its SHA-256."""
    records = ImageSource(by_folder).files()
    assert [r.path.name for r in records] == ["a.png", "y.bmp", "z.JPG", "b.png", "c.png"]
    for record in records:
        assert record.sha256 == hash_file(record.path)
        assert record.size == record.path.stat().st_size


def test_csv_labels(tmp_path: Path) -> None:
    """Labels come from the CSV's columns, matched by path relative to the folder."""
    root = tmp_path / "scans"
    _write(root / "a.png", (2, 2))
    _write(root / "sub" / "b.jpg", (3, 2), seed=1)
    csv = tmp_path / "labels.csv"
    pd.DataFrame({"name": ["sub/b.jpg", "./a.png"], "diagnosis": [1, 0]}).to_csv(csv, index=False)
    source = ImageSource(root, labels=csv, file_column="name", label_column="diagnosis")
    assert source.column_names() == ["image", "diagnosis", "width", "height", "mode"]
    frame = source.to_pandas()
    assert [Path(p).name for p in frame["image"]] == ["a.png", "b.jpg"]
    assert frame["diagnosis"].tolist() == [0, 1]


def test_csv_missing_an_image(tmp_path: Path) -> None:
    """An image without a row in the labels CSV is an error naming both."""
    _write(tmp_path / "img" / "a.png", (2, 2))
    _write(tmp_path / "img" / "b.png", (2, 2), seed=1)
    csv = tmp_path / "labels.csv"
    csv.write_text("file,label\na.png,x\n")
    with pytest.raises(DataSourceReadError, match=r"labels\.csv.*b\.png"):
        ImageSource(tmp_path / "img", labels=csv).to_pandas()


def test_csv_naming_an_absent_image(tmp_path: Path) -> None:
    """A CSV row for a file that is not in the folder is an error naming both."""
    _write(tmp_path / "img" / "a.png", (2, 2))
    csv = tmp_path / "labels.csv"
    csv.write_text("file,label\na.png,x\nghost.png,y\n")
    with pytest.raises(DataSourceNotFoundError, match=r"labels\.csv.*ghost\.png"):
        ImageSource(tmp_path / "img", labels=csv).column_names()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("name,label\na.png,x\n", "no column"),
        ("file,label\na.png,x\na.png,y\n", "more than once"),
    ],
)
def test_bad_labels_csv(tmp_path: Path, content: str, fragment: str) -> None:
    """A CSV without the named columns, or listing a file twice, is a read error."""
    _write(tmp_path / "img" / "a.png", (2, 2))
    csv = tmp_path / "labels.csv"
    csv.write_text(content)
    with pytest.raises(DataSourceReadError, match=fragment):
        ImageSource(tmp_path / "img", labels=csv).to_pandas()


def test_missing_labels_file(tmp_path: Path) -> None:
    """A labels path that is not there is DataSourceNotFoundError naming it."""
    _write(tmp_path / "a.png", (2, 2))
    with pytest.raises(DataSourceNotFoundError, match=r"nolabels\.csv"):
        ImageSource(tmp_path, labels=tmp_path / "nolabels.csv").column_names()


def test_missing_folder(tmp_path: Path) -> None:
    """A folder that does not exist is DataSourceNotFoundError naming the path."""
    source = ImageSource(tmp_path / "nowhere")
    with pytest.raises(DataSourceNotFoundError, match="nowhere"):
        source.record_count()


def test_folder_without_images(tmp_path: Path) -> None:
    """A folder with no image files is DataSourceNotFoundError listing the extensions."""
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(DataSourceNotFoundError, match=r"no images.*\.png"):
        ImageSource(tmp_path).column_names()


def test_path_that_is_a_file(tmp_path: Path) -> None:
    """A path to a single file rather than a folder is refused."""
    file = tmp_path / "a.png"
    _write(file, (2, 2))
    with pytest.raises(DataSourceNotFoundError, match="not a folder"):
        ImageSource(file).record_count()


def test_corrupt_image_names_the_file(by_folder: Path) -> None:
    """A file with an image extension but no image inside is a read error naming it."""
    bad = by_folder / "dogs" / "broken.png"
    bad.write_bytes(b"definitely not a png")
    with pytest.raises(DataSourceReadError, match=r"broken\.png"):
        ImageSource(by_folder).to_pandas()


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({"extensions": []}, "extensions is empty"), ({"label_column": "width"}, "clashes")],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, object], fragment: str) -> None:
    """Empty extensions or a label column named like a made column are config errors."""
    with pytest.raises(ConfigValidationError, match=fragment):
        ImageSource(tmp_path, **kwargs)  # type: ignore[arg-type]


def test_load_image_round_trip(tmp_path: Path) -> None:
    """load_image gives back the exact pixels of a PNG, and converts on request."""
    pixels = _write(tmp_path / "a.png", (5, 4), seed=9)
    loaded = load_image(tmp_path / "a.png")
    assert loaded.shape == (4, 5, 3)
    np.testing.assert_array_equal(loaded, pixels)
    assert load_image(tmp_path / "a.png", mode="L").shape == (4, 5)


def test_load_image_errors(tmp_path: Path) -> None:
    """load_image reports a missing file and a truncated image, naming the file."""
    with pytest.raises(DataSourceNotFoundError, match=r"gone\.png"):
        load_image(tmp_path / "gone.png")
    _write(tmp_path / "full.png", (32, 32), seed=3)
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataSourceReadError, match=r"cut\.png"):
        load_image(tmp_path / "cut.png")

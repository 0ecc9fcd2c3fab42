"""DICOMSource: tags and pixels from a folder of DICOM files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from podium.core.errors import (
    ConfigValidationError,
    DataSourceNotFoundError,
    DataSourceReadError,
)
from podium.data.sources.base import hash_file
from podium.data.sources.dicom_source import DICOMSource, load_pixels


def _write_dicom(
    path: Path, *, shape: tuple[int, int] = (4, 3), seed: int = 0, **tags: object
) -> npt.NDArray[np.uint16]:
    """Write a small uint16 DICOM file with the given tags; return its pixels."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    pixels = np.random.default_rng(seed).integers(0, 4096, size=shape, dtype=np.uint16)
    ds.Rows, ds.Columns = shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = pixels.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return pixels


@pytest.fixture
def scans(tmp_path: Path) -> dict[str, npt.NDArray[np.uint16]]:
    """Three DICOM files (one nested, one without extension) plus a non-DICOM file."""
    root = tmp_path / "scans"
    written = {
        "b.dcm": _write_dicom(
            root / "b.dcm",
            shape=(4, 3),
            seed=1,
            PatientID="P2",
            Modality="MR",
            StudyDate="20240102",
            PixelSpacing=[0.5, 0.25],
        ),
        "a.dcm": _write_dicom(
            root / "a.dcm",
            shape=(2, 5),
            seed=2,
            PatientID="P1",
            Modality="CT",
            StudyDate="20240101",
            PatientName="Doe^Jane",
        ),
        "series1/IM0001": _write_dicom(
            root / "series1" / "IM0001",
            shape=(3, 3),
            seed=3,
            PatientID="P3",
            Modality="CT",
        ),
    }
    (root / "notes.txt").write_text("not dicom")
    (root / "README").write_text("no extension, no preamble")
    return written


def test_default_tags_one_record_per_file(
    tmp_path: Path, scans: dict[str, npt.NDArray[np.uint16]]
) -> None:
    """Each DICOM file is one record, sorted by path, with the default tags as columns."""
    source = DICOMSource(tmp_path / "scans")
    columns = source.column_names()
    assert columns[0] == "image"
    assert {"PatientID", "StudyInstanceUID", "Modality", "StudyDate", "Rows"} <= set(columns)
    assert "pixels" not in columns
    frame = source.to_pandas()
    root = (tmp_path / "scans").resolve()
    assert frame["image"].tolist() == [str(root / name) for name in sorted(scans)]
    assert frame["PatientID"].tolist() == ["P1", "P2", "P3"]
    assert frame["Modality"].tolist() == ["CT", "MR", "CT"]
    assert frame["Rows"].tolist() == [2, 4, 3]
    assert frame["Columns"].tolist() == [5, 3, 3]
    assert source.record_count() == 3


def test_selected_tags_and_missing_values(
    tmp_path: Path, scans: dict[str, npt.NDArray[np.uint16]]
) -> None:
    """Chosen tags come back as values; a tag a file lacks is missing; multi-values join."""
    source = DICOMSource(
        tmp_path / "scans", tags=["PatientName", "StudyDate", "PixelSpacing", "Rows"]
    )
    assert source.column_names() == ["image", "PatientName", "StudyDate", "PixelSpacing", "Rows"]
    frame = source.to_pandas()
    assert frame.loc[0, "PatientName"] == "Doe^Jane"
    assert frame["PatientName"].isna().tolist() == [False, True, True]
    assert frame["StudyDate"].tolist()[:2] == ["20240101", "20240102"]
    assert frame["StudyDate"].isna().tolist() == [False, False, True]
    assert frame.loc[1, "PixelSpacing"] == "0.5\\0.25"
    assert str(frame["Rows"].dtype) == "Int64"


def test_pixels_round_trip(tmp_path: Path, scans: dict[str, npt.NDArray[np.uint16]]) -> None:
    """With include_pixels each record carries its exact pixel array."""
    source = DICOMSource(tmp_path / "scans", tags=["PatientID"], include_pixels=True)
    assert source.column_names() == ["image", "PatientID", "pixels"]
    frame = source.to_pandas()
    for name, array in zip(sorted(scans), frame["pixels"], strict=True):
        assert array.dtype == np.uint16
        np.testing.assert_array_equal(array, scans[name])


def test_load_pixels(tmp_path: Path, scans: dict[str, npt.NDArray[np.uint16]]) -> None:
    """load_pixels reads one file's stored pixel values."""
    np.testing.assert_array_equal(load_pixels(tmp_path / "scans" / "b.dcm"), scans["b.dcm"])


def test_batches_are_bounded(tmp_path: Path, scans: dict[str, npt.NDArray[np.uint16]]) -> None:
    """Batches hold at most batch_rows files, with or without pixels."""
    assert [len(b) for b in DICOMSource(tmp_path / "scans", batch_rows=2).iter_batches()] == [2, 1]
    with_pixels = DICOMSource(tmp_path / "scans", include_pixels=True)
    assert [len(b) for b in with_pixels.iter_batches(batch_rows=1)] == [1, 1, 1]


def test_files_have_hashes(tmp_path: Path, scans: dict[str, npt.NDArray[np.uint16]]) -> None:
    """files() lists the DICOM files only, each with its SHA-256."""
    records = DICOMSource(tmp_path / "scans").files()
    assert [r.path.name for r in records] == ["a.dcm", "b.dcm", "IM0001"]
    assert all(r.sha256 == hash_file(r.path) for r in records)


def test_unknown_tag_suggests_close_matches(tmp_path: Path) -> None:
    """An unknown keyword is a config error naming datasource_args.tags with suggestions."""
    with pytest.raises(ConfigValidationError, match=r"datasource_args\.tags") as info:
        DICOMSource(tmp_path, tags=["PatientId"])
    assert "PatientID" in str(info.value)


@pytest.mark.parametrize(
    ("tags", "fragment"),
    [
        (["PixelData"], "include_pixels"),
        (["ReferencedImageSequence"], "sequence or binary"),
        (["Modality", "Modality"], "listed twice"),
    ],
)
def test_tags_that_cannot_be_columns(tmp_path: Path, tags: list[str], fragment: str) -> None:
    """Pixel data, sequences and repeated tags are refused as tag columns."""
    with pytest.raises(ConfigValidationError, match=fragment):
        DICOMSource(tmp_path, tags=tags)


def test_missing_folder(tmp_path: Path) -> None:
    """A folder that does not exist is DataSourceNotFoundError naming it."""
    with pytest.raises(DataSourceNotFoundError, match="nowhere"):
        DICOMSource(tmp_path / "nowhere").record_count()


def test_folder_without_dicom_files(tmp_path: Path) -> None:
    """A folder with no DICOM files is DataSourceNotFoundError."""
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "noext").write_bytes(b"\x00" * 200)
    with pytest.raises(DataSourceNotFoundError, match="no DICOM files"):
        DICOMSource(tmp_path).column_names()


@pytest.mark.parametrize(
    "content",
    [b"hello, not dicom", b"\x00" * 128 + b"DICM" + b"\x00\xff" * 40],
    ids=["no-preamble", "garbage-after-preamble"],
)
def test_corrupt_file_names_the_file(
    tmp_path: Path, scans: dict[str, npt.NDArray[np.uint16]], content: bytes
) -> None:
    """A .dcm file that is not valid DICOM is a read error naming the file."""
    (tmp_path / "scans" / "broken.dcm").write_bytes(content)
    with pytest.raises(DataSourceReadError, match=r"broken\.dcm"):
        DICOMSource(tmp_path / "scans").to_pandas()


def test_truncated_pixels_name_the_file(
    tmp_path: Path, scans: dict[str, npt.NDArray[np.uint16]]
) -> None:
    """Pixel data cut short is a read error naming the file when pixels are read."""
    path = tmp_path / "scans" / "b.dcm"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataSourceReadError, match=r"b\.dcm"):
        load_pixels(path)
    with pytest.raises(DataSourceReadError, match=r"b\.dcm"):
        DICOMSource(tmp_path / "scans", include_pixels=True).to_pandas()


def test_load_pixels_missing_file(tmp_path: Path) -> None:
    """load_pixels on a path that is not there is DataSourceNotFoundError."""
    with pytest.raises(DataSourceNotFoundError, match=r"gone\.dcm"):
        load_pixels(tmp_path / "gone.dcm")

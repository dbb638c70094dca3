import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medae.errors import InputError
from medae.viewer.tags import filter_rows, read_tags


def _write(path):
    ds = Dataset()
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "12345"
    ds.Modality = "CT"
    item = Dataset()
    item.CodeMeaning = "Chest"
    ds.AnatomicRegionSequence = [item]
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    pydicom.dcmwrite(path, ds, enforce_file_format=True)


def test_read_and_search(tmp_path):
    _write(tmp_path / "a.dcm")
    rows = read_tags(tmp_path / "a.dcm")
    kws = [r.keyword for r in rows]
    assert "PatientName" in kws and "TransferSyntaxUID" in kws
    name = rows[kws.index("PatientName")]
    assert name.tag == "(0010,0010)" and name.vr == "PN" and name.value == "Doe^Jane"
    assert [rows[i].keyword for i in filter_rows(rows, "patientid")] == ["PatientID"]
    assert [rows[i].keyword for i in filter_rows(rows, "(0010,0010)")] == ["PatientName"]
    # Tags typed without brackets and comma, keywords typed as the standard's words.
    assert [rows[i].keyword for i in filter_rows(rows, "00100010")] == ["PatientName"]
    assert [rows[i].keyword for i in filter_rows(rows, "0010, 0010")] == ["PatientName"]
    assert [rows[i].keyword for i in filter_rows(rows, "Patient Name")] == ["PatientName"]
    # A match inside a sequence keeps the sequence and item rows that hold it.
    nested = [rows[i].keyword for i in filter_rows(rows, "chest")]
    assert nested == ["AnatomicRegionSequence", "Item 1", "CodeMeaning"]
    assert len(filter_rows(rows, "")) == len(rows)


def test_unreadable_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="missing.dcm"):
        read_tags(tmp_path / "missing.dcm")


def test_dicom_dates_and_times_read_as_such():
    from medae.viewer.tags import dicom_date, dicom_time

    assert dicom_date("20240102") == "2024-01-02" and dicom_date("2024") == "2024" and dicom_date("") == ""
    assert dicom_time("134502.123") == "13:45" and dicom_time("0930") == "09:30" and dicom_time("9") == "9"

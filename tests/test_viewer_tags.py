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
    _save(path, ds, "1.2.840.10008.5.1.4.1.1.2")


def _save(path, ds, sop_class):
    ds.SOPClassUID = sop_class
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


def test_private_tags_are_named_by_their_vendor(tmp_path):
    ds = Dataset()
    ds.PatientName = "Doe^Jane"
    block = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    block.add_new(0x0C, "IS", "1000")
    block.add_new(0x77, "LO", "other")
    ds.add_new(0x00311011, "LO", "orphan")  # no creator element for its block
    _save(tmp_path / "p.dcm", ds, "1.2.840.10008.5.1.4.1.1.4")
    rows = {r.tag: r for r in read_tags(tmp_path / "p.dcm")}
    assert rows["(0019,0010)"].keyword == "Private Creator"
    assert rows["(0019,100C)"].keyword == "[B_value]" and rows["(0019,100C)"].value == "1000"
    assert rows["(0019,1077)"].keyword == "Private tag (SIEMENS MR HEADER)"
    assert rows["(0031,1011)"].keyword == "Private tag"
    found = [r for r in read_tags(tmp_path / "p.dcm") if r.matches("b_value")]
    assert [r.tag for r in found] == ["(0019,100C)"]

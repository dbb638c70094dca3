"""`medae compress` / `medae decompress`: the bundled sample and a DICOM series back on their own grid."""

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medae.cli import main
from medae.io import load
from tests.dicom_factory import axial_affine, phantom, write_series

SAMPLE = Path(__file__).resolve().parents[1] / "resources" / "samples" / "brain_t1.nii.gz"


def test_lossless_round_trip_of_the_sample_is_exact(tmp_path, capsys):
    assert main(["compress", str(SAMPLE), str(tmp_path / "s.mae")]) == 0
    out = capsys.readouterr().out
    assert "lossless" in out and ":1)" in out
    assert main(["decompress", str(tmp_path / "s.mae"), str(tmp_path / "s.nii.gz")]) == 0
    original, back = nib.load(SAMPLE), nib.load(tmp_path / "s.nii.gz")
    assert back.get_data_dtype() == original.get_data_dtype()
    assert np.array_equal(np.asanyarray(back.dataobj), np.asanyarray(original.dataobj))
    assert np.allclose(back.affine, original.affine, atol=1e-6)
    raw = np.asanyarray(original.dataobj).nbytes
    assert (tmp_path / "s.mae").stat().st_size < raw / 1.8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.mae", "s.nii.gz"]  # no temporary file left


def test_what_a_killed_run_left_is_cleared_by_the_next(tmp_path):
    import os

    small = tmp_path / "small.nii.gz"
    vol = load(SAMPLE)
    from medae.io.nifti import save_nifti
    from medae.volume import Volume

    save_nifti(Volume(np.asarray(vol.array)[:40, :40, :30].copy(), vol.affine, "MR"), small)
    # Temporary files as a SIGKILL during each write leaves them (an hour old).
    stale = [tmp_path / ".c.abcdefgh.mae", tmp_path / ".d.nii.ijklmnop.nii.gz"]
    for path in stale:
        path.write_bytes(b"half")
        os.utime(path, (0, os.path.getmtime(path) - 3600))
    assert main(["compress", str(small), str(tmp_path / "c.mae")]) == 0
    assert main(["decompress", str(tmp_path / "c.mae"), str(tmp_path / "d.nii.gz")]) == 0
    assert not any(p.exists() for p in stale)


def test_lossy_is_near_lossless_with_the_bound_given(tmp_path, capsys):
    assert main(["compress", str(SAMPLE), str(tmp_path / "s.mae"), "--mode", "lossy", "--max-error", "4"]) == 0
    assert "within 4" in capsys.readouterr().out
    assert main(["decompress", str(tmp_path / "s.mae"), str(tmp_path / "s.nii")]) == 0
    diff = nib.load(tmp_path / "s.nii").get_fdata() - nib.load(SAMPLE).get_fdata()
    assert 0 < np.abs(diff).max() <= 4


def test_a_dicom_series_keeps_its_geometry_and_leaves_patient_data_out(tmp_path):
    affine = axial_affine((0.8, 0.8, 3.0))
    write_series(tmp_path / "dcm", phantom((16, 14, 6)), affine, modality="MR", description="T1 axial")
    assert main(["compress", str(tmp_path / "dcm"), str(tmp_path / "s.mae")]) == 0
    assert b"Synthetic^Patient" not in (tmp_path / "s.mae").read_bytes()
    assert main(["decompress", str(tmp_path / "s.mae"), str(tmp_path / "s.nii.gz")]) == 0
    source, back = load(tmp_path / "dcm"), nib.load(tmp_path / "s.nii.gz")
    assert np.array_equal(np.asanyarray(back.dataobj), source.array)
    assert np.allclose(back.affine, source.affine, atol=1e-5)
    assert main(["compress", str(tmp_path / "dcm"), str(tmp_path / "p.mae"), "--keep-phi"]) == 0
    assert b"Synthetic^Patient" in (tmp_path / "p.mae").read_bytes()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compress", "{sample}", "{sample}"], "never overwrites a source"),
        (["compress", "{sample}", "{tmp}/s.mae", "--max-error", "3"], "--max-error applies to --mode near-lossless"),
        (["compress", "{sample}", "{tmp}"], "is a folder"),
        (["decompress", "{sample}", "{tmp}/x.nii.gz"], "not a medae compressed study"),
        (["decompress", "{tmp}/none.mae", "{tmp}/x.nii.gz"], "no such file"),
        (["decompress", "{tmp}/none.mae", "{tmp}/x.png"], "ending in .nii.gz or .nii"),
    ],
)
def test_mistakes_get_one_line_that_says_what_to_do(tmp_path, capsys, argv, message):
    argv = [a.format(sample=SAMPLE, tmp=tmp_path) for a in argv]
    before = SAMPLE.read_bytes()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert SAMPLE.read_bytes() == before


def test_info_describes_a_compressed_study(tmp_path, capsys):
    assert main(["compress", str(SAMPLE), str(tmp_path / "s.mae"), "--mode", "near-lossless", "--max-error", "3"]) == 0
    capsys.readouterr()
    assert main(["info", str(tmp_path / "s.mae")]) == 0
    out = capsys.readouterr().out
    assert "compressed study, near-lossless, 174x229x121 int16, every voxel within 3" in out


def test_analyze_reads_a_compressed_study_as_the_scan_it_holds(tmp_path):
    import json

    assert main(["compress", str(SAMPLE), str(tmp_path / "s.mae")]) == 0
    assert main(["analyze", str(tmp_path / "s.mae"), "--out", str(tmp_path / "a")]) == 0
    assert main(["analyze", str(SAMPLE), "--out", str(tmp_path / "b")]) == 0
    report, direct = (json.loads((tmp_path / d / "report.json").read_text()) for d in "ab")
    assert report["score"] == direct["score"] and len(report["findings"]) == len(direct["findings"]) >= 1
    heat = nib.load(tmp_path / "a" / "heatmap.nii.gz")
    assert heat.shape == nib.load(SAMPLE).shape
    assert np.allclose(heat.affine, nib.load(SAMPLE).affine, atol=1e-5)


def test_batch_analyses_compressed_studies_and_names_a_damaged_one(tmp_path, capsys):
    import csv

    studies = tmp_path / "studies"
    studies.mkdir()
    assert main(["compress", str(SAMPLE), str(studies / "good.mae")]) == 0
    blob = (studies / "good.mae").read_bytes()
    (studies / "cut.mae").write_bytes(blob[: len(blob) // 2])
    assert main(["batch", str(studies), "--out", str(tmp_path / "out"), "--no-png"]) == 2  # one series failed
    rows = {r["input"]: r for r in csv.DictReader(open(tmp_path / "out" / "results.csv"))}
    assert rows["good.mae"]["status"] == "ok" and int(rows["good.mae"]["findings"]) >= 1
    assert rows["good.mae"]["description"] == "good.mae"  # its description is free text, left out
    assert rows["cut.mae"]["status"] != "ok" and "cut short" in rows["cut.mae"]["error"]


def test_a_compressed_study_can_be_compressed_again_in_another_mode(tmp_path, capsys):
    assert main(["compress", str(SAMPLE), str(tmp_path / "exact.mae")]) == 0
    assert main(["compress", str(tmp_path / "exact.mae"), str(tmp_path / "small.mae"), "--mode", "lossy"]) == 0
    assert (tmp_path / "small.mae").stat().st_size < (tmp_path / "exact.mae").stat().st_size
    assert main(["decompress", str(tmp_path / "small.mae"), str(tmp_path / "s.nii")]) == 0
    bound = float(capsys.readouterr().out.split("within ")[-1].split()[0].rstrip(";"))
    diff = nib.load(tmp_path / "s.nii").get_fdata() - nib.load(SAMPLE).get_fdata()
    assert np.abs(diff).max() <= bound


def test_batch_lists_a_latent_preview_and_a_damaged_header_as_rows_with_reasons(tmp_path):
    import csv

    from medae.codec import compress, container

    studies = tmp_path / "studies"
    studies.mkdir()
    header, sections = compress(load(SAMPLE))
    (studies / "fine.mae").write_bytes(container.pack(header, sections))
    latent = dict(header, mode="latent", latent={"model": "brain-t1-codec"})
    (studies / "preview.mae").write_bytes(container.pack(latent, {}))
    damaged = container.pack(header, sections).replace(b'"shape"', b'"shapf"', 1)
    (studies / "damaged.mae").write_bytes(damaged)
    assert main(["batch", str(studies), "--out", str(tmp_path / "out"), "--no-png"]) == 2
    rows = {r["input"]: r for r in csv.DictReader(open(tmp_path / "out" / "results.csv"))}
    assert rows["fine.mae"]["status"] == "ok"
    assert "only a latent" in rows["preview.mae"]["error"]
    assert "header is damaged" in rows["damaged.mae"]["error"]


def test_info_on_a_folder_lists_its_compressed_studies_beside_its_scans(tmp_path, capsys):
    import shutil

    shutil.copy(SAMPLE.with_name("ct_chest_synthetic.nii.gz"), tmp_path / "ct.nii.gz")
    assert main(["compress", str(SAMPLE), str(tmp_path / "brain.mae")]) == 0
    capsys.readouterr()
    assert main(["info", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ct.nii.gz" in out and "brain.mae" in out and "174x229x121" in out


def test_analyze_all_on_a_folder_takes_its_compressed_studies_too(tmp_path, capsys):
    studies = tmp_path / "studies"
    studies.mkdir()
    assert main(["compress", str(SAMPLE), str(studies / "brain.mae")]) == 0
    assert main(["analyze", str(studies), "--all", "--out", str(tmp_path / "out")]) == 0
    reports = list((tmp_path / "out").rglob("report.json"))
    assert len(reports) == 1


def test_analyze_all_on_one_compressed_study_and_a_broken_neighbour_is_named(tmp_path, capsys):
    studies = tmp_path / "studies"
    studies.mkdir()
    assert main(["compress", str(SAMPLE), str(studies / "brain.mae")]) == 0
    assert main(["analyze", str(studies / "brain.mae"), "--all", "--out", str(tmp_path / "one")]) == 0
    assert len(list((tmp_path / "one").rglob("report.json"))) == 1
    (studies / "broken.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    capsys.readouterr()
    assert main(["info", str(studies)]) == 0
    captured = capsys.readouterr()
    assert "brain.mae" in captured.out and "broken.nii.gz" in captured.err


def test_the_output_may_not_be_one_of_the_slices_of_a_dicom_input(tmp_path, capsys):
    write_series(tmp_path / "dcm", phantom((16, 14, 6)), axial_affine(), modality="MR")
    slice_file = sorted((tmp_path / "dcm").iterdir())[0]
    before = slice_file.read_bytes()
    assert main(["compress", str(tmp_path / "dcm"), str(slice_file)]) == 2
    assert "never overwrites a source" in capsys.readouterr().err
    assert slice_file.read_bytes() == before


def test_64_bit_integers_come_back_and_a_file_name_stays_out_of_the_file(tmp_path):
    import nibabel as nib

    array = (np.arange(6 * 5 * 4, dtype=np.int64) * 10**12).reshape(6, 5, 4)
    named = tmp_path / "Smith_John_19800101.nii.gz"
    nib.save(nib.Nifti1Image(array, np.eye(4), dtype=np.int64), named)
    assert main(["compress", str(named), str(tmp_path / "s.mae")]) == 0
    assert b"Smith" not in (tmp_path / "s.mae").read_bytes()
    assert main(["decompress", str(tmp_path / "s.mae"), str(tmp_path / "s.nii.gz")]) == 0
    back = nib.load(tmp_path / "s.nii.gz")
    assert back.get_data_dtype() == np.int64 and np.array_equal(np.asanyarray(back.dataobj), array)
    assert b"Smith" not in (tmp_path / "s.nii.gz").read_bytes()


def test_bounds_add_up_when_a_near_lossless_study_is_compressed_again(tmp_path, capsys):
    a, b = str(tmp_path / "a.mae"), str(tmp_path / "b.mae")
    assert main(["compress", str(SAMPLE), a, "--mode", "lossy", "--max-error", "3"]) == 0
    assert main(["compress", a, b, "--mode", "lossy", "--max-error", "3"]) == 0
    assert main(["compress", b, str(tmp_path / "c.mae")]) == 0  # lossless from here on
    capsys.readouterr()
    assert main(["decompress", str(tmp_path / "c.mae"), str(tmp_path / "c.nii")]) == 0
    out = capsys.readouterr().out
    assert out.count("Decoded from a near-lossless") == 1 and "by up to 6" in out
    diff = nib.load(tmp_path / "c.nii").get_fdata() - nib.load(SAMPLE).get_fdata()
    assert np.abs(diff).max() <= 6


def test_series_or_volume_options_for_a_compressed_study_are_refused_not_ignored(tmp_path, capsys):
    assert main(["compress", str(SAMPLE), str(tmp_path / "s.mae")]) == 0
    assert main(["compress", str(tmp_path / "s.mae"), str(tmp_path / "t.mae"), "--volume", "1"]) == 2
    assert "--series and --volume do not apply" in capsys.readouterr().err


def test_a_header_s_data_file_and_the_input_itself_are_never_written_over(tmp_path, capsys):
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(phantom((6, 7, 8)).astype(np.int16))
    sitk.WriteImage(image, str(tmp_path / "scan.mhd"))  # scan.mhd + scan.raw
    raw = tmp_path / "scan.raw"
    before = raw.read_bytes()
    assert main(["compress", str(tmp_path / "scan.mhd"), str(raw)]) == 2
    assert "never overwrites a source" in capsys.readouterr().err and raw.read_bytes() == before
    study = tmp_path / "study.nii.gz"  # a .mae may carry any name
    assert main(["compress", str(tmp_path / "scan.mhd"), str(study)]) == 0
    kept = study.read_bytes()
    assert main(["decompress", str(study), str(study)]) == 2
    assert study.read_bytes() == kept


def test_dicom_descriptions_stay_and_a_bids_name_keeps_all_but_the_person(tmp_path):
    from medae.analysis.checks import _contrast_agent
    from medae.codec import read_study
    from medae.model.card import ModelCard

    write_series(tmp_path / "dcm", phantom((16, 14, 6)), axial_affine(), modality="MR", description="AX T1 POST GAD")
    assert main(["compress", str(tmp_path / "dcm"), str(tmp_path / "d.mae")]) == 0
    assert read_study(tmp_path / "d.mae").meta["series_description"] == "AX T1 POST GAD"
    bids = tmp_path / "sub-0042_ses-2_ce-gadolinium_T1w.nii.gz"
    source = nib.load(SAMPLE)
    nib.save(nib.Nifti1Image(np.asanyarray(source.dataobj), source.affine), bids)  # no description: its name
    assert main(["compress", str(bids), str(tmp_path / "b.mae")]) == 0
    assert b"0042" not in (tmp_path / "b.mae").read_bytes()
    back = read_study(tmp_path / "b.mae")
    assert back.meta["series_description"] == "ce-gadolinium_T1w.nii.gz"
    card = ModelCard.read(Path(__file__).resolve().parents[1] / "models" / "brain-t1-dae" / "card.json")
    assert _contrast_agent(back, card)  # the analysis still hears of the contrast agent


def test_info_of_a_study_compressed_again_states_the_bound_against_the_acquired_scan(tmp_path, capsys):
    a, b = str(tmp_path / "a.mae"), str(tmp_path / "b.mae")
    assert main(["compress", str(SAMPLE), a, "--mode", "lossy", "--max-error", "3"]) == 0
    assert main(["compress", a, b]) == 0
    assert "within 3 of the acquired scan" in capsys.readouterr().out
    assert main(["info", b]) == 0
    assert "lossless" in (out := capsys.readouterr().out) and "within 3 of the acquired scan" in out


def test_decompress_never_replaces_an_existing_file_unless_asked(tmp_path, capsys):
    """Decompressing next to the original under its own name would replace the acquired scan with a decoded copy."""
    scan = tmp_path / "scan.nii.gz"
    nib.save(nib.Nifti1Image(phantom((6, 7, 8)).astype(np.int16), np.eye(4)), scan)
    original = scan.read_bytes()
    assert main(["compress", str(scan), str(tmp_path / "scan.mae"), "--mode", "near-lossless"]) == 0
    capsys.readouterr()
    assert main(["decompress", str(tmp_path / "scan.mae"), str(scan)]) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and err.count("\n") == 1
    assert scan.read_bytes() == original
    assert main(["decompress", str(tmp_path / "scan.mae"), str(scan), "--overwrite"]) == 0
    assert scan.read_bytes() != original


def test_compress_never_replaces_a_scan_given_as_the_output_by_mistake(tmp_path, capsys):
    """A .mae may carry any name, so `compress a.nii.gz b.nii.gz` wrote a study over the other scan b."""
    first, second = tmp_path / "a.nii.gz", tmp_path / "b.nii.gz"
    nib.save(nib.Nifti1Image(phantom((6, 7, 8)).astype(np.int16), np.eye(4)), first)
    nib.save(nib.Nifti1Image(phantom((5, 6, 7)).astype(np.int16), np.eye(4)), second)
    kept = second.read_bytes()
    assert main(["compress", str(first), str(second)]) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and err.count("\n") == 1 and second.read_bytes() == kept
    # A study written before is replaced as ever; any file with --overwrite.
    assert main(["compress", str(first), str(tmp_path / "a.mae")]) == 0
    assert main(["compress", str(second), str(tmp_path / "a.mae")]) == 0
    assert main(["compress", str(first), str(second), "--overwrite"]) == 0
    assert second.read_bytes().startswith(b"\x89MAE")


@pytest.mark.parametrize("dtype", ["?", "f2"])
def test_a_study_of_a_type_nifti_lacks_is_written_in_the_nearest_exact_one(tmp_path, dtype):
    """NIfTI holds no bool or float16 voxels; decompress ended in nibabel's traceback."""
    from medae.codec import compress, write_study
    from medae.volume import Volume

    array = (phantom((5, 6, 7)) > 100).astype(dtype)
    write_study(tmp_path / "s.mae", *compress(Volume(array, np.eye(4), "MR", {})))
    assert main(["decompress", str(tmp_path / "s.mae"), str(tmp_path / "s.nii.gz")]) == 0
    back = np.asanyarray(nib.load(tmp_path / "s.nii.gz").dataobj)
    assert np.array_equal(back, array.astype(np.float64)) and back.dtype.kind == ("u" if dtype == "?" else "f")

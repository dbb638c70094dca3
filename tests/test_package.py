"""The package contract: cheap import, the layering rule, lint, the command line entry point."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_medae_loads_neither_torch_nor_qt():
    code = (
        "import sys, medae, medae.io, medae.cli; medae.cli.build_parser();"
        "bad=[m for m in ('torch','monai','PySide6','superqt') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_dependency_rule_holds():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is a test dependency"
    out = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_ruff_clean():
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent))
    assert exe, "ruff is a test dependency"
    out = subprocess.run([exe, "check", "medae", "tests", "benchmarks"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_version_and_help():
    from medae.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    out = subprocess.run([sys.executable, "-m", "medae", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "info" in out.stdout


def test_every_command_help_speaks_to_users():
    from medae.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert {"analyze", "batch", "view"} <= set(commands)
    for name, command in commands.items():
        text = command.format_help()
        # No reStructuredText marks, and nothing about how the code is put together.
        assert "``" not in text and "entry point" not in text and not re.search(r"\bimport\b", text), name


def test_info_json_on_nifti(tmp_path, capsys):
    import numpy as np

    from medae.cli import main
    from medae.io.nifti import save_nifti
    from medae.volume import Volume

    aff = np.diag([-0.9, -0.9, 3.0, 1.0])
    save_nifti(Volume(np.zeros((4, 5, 6), np.int16), aff), tmp_path / "a.nii.gz")
    assert main(["info", str(tmp_path / "a.nii.gz"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (s,) = data["series"]
    assert s["shape"] == [4, 5, 6] and s["orientation"] == "LPS"
    assert s["spacing"] == pytest.approx([0.9, 0.9, 3.0])


def test_cli_error_is_one_line_and_nonzero(tmp_path, capsys):
    from medae.cli import main

    assert main(["info", str(tmp_path / "missing.nii")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such file" in err[0]

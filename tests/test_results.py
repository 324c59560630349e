"""The committed CPU study regenerates from the repository alone: its tables come out of its raw runs."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results" / "cpu"


def test_tables_regenerate_from_the_committed_runs(tmp_path):
    (tmp_path / "runs").symlink_to(RESULTS / "runs")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "cpu_study_report.py"), "--out", str(tmp_path)],
                   check=True, capture_output=True)
    assert (tmp_path / "tables.md").read_text() == (RESULTS / "tables.md").read_text()
    assert (tmp_path / "minatar-training-return.png").stat().st_size > 10_000


def test_no_checkpoint_is_committed():
    kept = {"config.json", "metrics.jsonl", "eval.json", "resumes.jsonl"}
    assert {p.name for p in (RESULTS / "runs").rglob("*") if p.is_file()} <= kept

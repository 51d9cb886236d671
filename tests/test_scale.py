"""experiments/scale/run.py: the stages run in their own processes and print their table (tiny size)."""

import json
import subprocess
import sys

from .conftest import REPO


def test_scale_script_measures_stages_in_fresh_processes(tmp_path):
    out = tmp_path / "scale"
    proc = subprocess.run([sys.executable, str(REPO / "experiments" / "scale" / "run.py"), "--sizes", "4",
                           "--stages", "render", "neardup", "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| render the synthetic set (64 px) | 96 |" in proc.stdout
    assert "| audit: near-duplicates, clusters, leak rate | 96 |" in proc.stdout
    rows = json.loads((out / "results.json").read_text())["4"]
    assert rows[0]["disk_mb"] > 0 and all(r["peak_rss_mb"] > 0 for r in rows)
    refused = subprocess.run([sys.executable, str(REPO / "experiments" / "scale" / "run.py"), "--out", str(REPO / "x")],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "inside the checkout" in refused.stderr

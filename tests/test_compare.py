"""asl-compare: grouping over seeds, mean ± std, Markdown + PNG, clear errors; and on a real tiny multirun."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from torch.utils.tensorboard import SummaryWriter

from asl import ASLError
from asl.cli.compare import main
from asl.runs.compare import compare, metric_value
from tests.conftest import REPO, TINY_TRAIN, run_cli


def fake_multirun(root: Path, settings=("curriculum=none", "curriculum=five_then_all"), seeds=(0, 1)) -> Path:
    """A multirun folder as asl-train writes it (overrides, metrics.json, tb/ events), without training."""
    num = 0
    for s, setting in enumerate(settings):
        for seed in seeds:
            job = root / f"{num}_{setting.replace('=', '-')}+seed-{seed}"
            (job / ".hydra").mkdir(parents=True)
            (job / ".hydra" / "overrides.yaml").write_text(f"- {setting}\n- seed={seed}\n- trainer.max_epochs=2\n")
            acc = 0.5 + 0.1 * s + 0.01 * seed
            metrics = {"test/acc": acc, "test/f1_macro": acc - 0.05, "eval": {"room": {"acc": acc / 2}},
                       "images_seen": 400, "fit_seconds": 3.0}
            (job / "metrics.json").write_text(json.dumps(metrics))
            writer = SummaryWriter(str(job / "tb"))
            for step in range(1, 5):
                writer.add_scalar("images_seen", step * 50, step)
                if step % 2 == 0:
                    writer.add_scalar("val/acc", acc * step / 4, step)
            writer.close()
            num += 1
    return root


def test_groups_over_seeds_with_mean_and_std(tmp_path):
    mr = fake_multirun(tmp_path / "mr")
    (tmp_path / "mr" / "9_curriculum-none+seed-5" / ".hydra").mkdir(parents=True)  # a failed job
    (tmp_path / "mr" / "9_curriculum-none+seed-5" / ".hydra" / "overrides.yaml").write_text("- curriculum=none\n- seed=5\n")
    r = compare([mr], ["test/acc", "eval/room/acc"], out=tmp_path / "out")
    rows = {row["setting"]: row for row in r["rows"]}
    assert set(rows) == {"curriculum=none", "curriculum=five_then_all"}  # seed and common overrides dropped
    none = rows["curriculum=none"]["test/acc"]
    assert none["n"] == 2 and none["mean"] == pytest.approx(0.505) and none["std"] == pytest.approx(0.00707, abs=1e-4)
    assert rows["curriculum=five_then_all"]["eval/room/acc"]["mean"] == pytest.approx(0.3025)
    assert len(r["unfinished"]) == 1
    md = (tmp_path / "out" / "compare.md").read_text()
    assert "0.5050 ± 0.0071 (n=2)" in md and "no metrics.json" in md
    assert (tmp_path / "out" / "compare.png").stat().st_size > 1000
    job = r["jobs"][0]
    assert list(job.curve["images_seen"]) == [100, 200] and len(job.curve["val_acc"]) == 2


def test_metric_value_flat_and_nested():
    m = {"test/acc": 0.5, "eval/room/acc": 0.25, "eval": {"massey": {"acc": 0.75}}, "flag": True}
    assert metric_value(m, "test/acc") == 0.5
    assert metric_value(m, "eval/room/acc") == 0.25
    assert metric_value(m, "eval/massey/acc") == 0.75
    assert metric_value(m, "flag") is None and metric_value(m, "missing") is None


def test_several_dirs_and_cli(tmp_path, capsys):
    a = fake_multirun(tmp_path / "a", settings=("model=small_cnn",))
    b = fake_multirun(tmp_path / "b", settings=("model=resnet18",))
    main([str(a), str(b), "--out", str(tmp_path / "out"), "--metrics", "test/acc"])
    out = capsys.readouterr().out
    assert "| model=resnet18 |" in out and "| model=small_cnn |" in out
    assert (tmp_path / "out" / "compare.md").exists()


def test_wrong_folder_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main([str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no finished runs found" in err
    with pytest.raises(ASLError, match="not a folder"):
        compare([tmp_path / "missing"])
    with pytest.raises(ASLError, match="numeric keys there"):
        compare([fake_multirun(tmp_path / "mr")], ["test/nope"])


@pytest.mark.slow
def test_two_job_multirun_then_compare(tmp_path):
    """asl-train -m over curriculum (budget=images) on tiny synthetic data, then asl-compare on the folder."""
    mr = tmp_path / "mr"
    r = run_cli("asl.cli.train", "-m", "experiment=curriculum_vs_all", "seed=0", "data/background=none", *TINY_TRAIN,
                f"hydra.sweep.dir={mr}", f"paths.log_dir={tmp_path}", cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    jobs = sorted(p.name for p in mr.iterdir() if p.is_dir())
    assert jobs == ["0_curriculum-none", "1_curriculum-five_then_all"]  # the preset's sweep; seed=0 etc. fixed: left out
    seen = [json.loads((mr / j / "metrics.json").read_text())["images_seen"] for j in jobs]
    assert seen[0] == seen[1] > 0  # equal budgets of training images
    result = compare([mr], ["test/acc", "images_seen"])
    assert [row["setting"] for row in result["rows"]] == ["curriculum=five_then_all", "curriculum=none"]
    assert all(len(j.curve["val_acc"]) == 2 for j in result["jobs"])  # 2 epochs, validated each
    assert (mr / "compare.md").exists() and (mr / "compare.png").exists()


@pytest.mark.slow
def test_a_failing_job_does_not_stop_the_sweep_and_compare_lists_it(tmp_path, capsys):
    mr = tmp_path / "mr"
    r = run_cli("asl.cli.train", "-m", "label_smoothing=0.0,2.0", *TINY_TRAIN, "trainer.max_epochs=1", "logger=none",
                f"hydra.sweep.dir={mr}", f"paths.log_dir={tmp_path}", cwd=REPO)
    assert r.returncode == 1 and "1 job(s) of the sweep failed" in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
    ok, bad = sorted(p for p in mr.iterdir() if p.is_dir())
    assert (ok / "metrics.json").exists() and not (ok / "FAILED").exists()
    assert "label_smoothing=2.0: must be a number" in (bad / "FAILED").read_text()
    main([str(mr)])
    assert "FAILED: ASLError: label_smoothing=2.0" in capsys.readouterr().out

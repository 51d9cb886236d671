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


def fake_multirun(root: Path, settings=("curriculum=none", "curriculum=five_then_all"), seeds=(0, 1),
                  predictions: bool = False) -> Path:
    """A multirun folder as asl-train writes it (overrides, metrics.json, tb/ events, with ``predictions`` also
    predictions.csv over 100 test photos: the first 100 × test/acc right), without training."""
    num = 0
    for s, setting in enumerate(settings):
        for seed in seeds:
            job = root / f"{num}_{setting.replace('=', '-')}+seed-{seed}"
            (job / ".hydra").mkdir(parents=True)
            (job / ".hydra" / "overrides.yaml").write_text(f"- {setting}\n- seed={seed}\n- trainer.max_epochs=2\n")
            acc = 0.5 + 0.1 * s + 0.01 * seed * (1 + s)
            if predictions:
                right = round(acc * 100)
                (job / "predictions.csv").write_text("file,label,predicted\n" + "".join(
                    f"A/{i}.png,A,{'A' if i < right else 'B'}\n" for i in range(100)))
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
    assert rows["curriculum=five_then_all"]["eval/room/acc"]["mean"] == pytest.approx(0.305)
    assert none["interval"] == pytest.approx((0.50, 0.51)) and none["photo_interval"] is None  # no predictions.csv
    assert len(r["unfinished"]) == 1
    md = (tmp_path / "out" / "compare.md").read_text()
    assert "0.5050 ± 0.0071 (n=2) [0.5000, 0.5100]" in md and "no metrics.json" in md and "bootstrap over seeds" in md
    assert (tmp_path / "out" / "compare.png").stat().st_size > 1000
    job = r["jobs"][0]
    assert list(job.curve["images_seen"]) == [100, 200] and len(job.curve["val_acc"]) == 2


def test_paired_against_a_baseline_by_seed_and_by_photo(tmp_path, capsys):
    mr = fake_multirun(tmp_path / "mr", seeds=(0, 1, 2), predictions=True)
    r = compare([mr], ["test/acc", "eval/room/acc"], baseline="curriculum=none")
    row = r["rows"][0]["test/acc"]  # curriculum=five_then_all: 0.60, 0.62, 0.64 on 100 photos each
    lo, hi = row["photo_interval"]
    assert lo < row["mean"] < hi and row["interval"][0] <= row["mean"] <= row["interval"][1]
    acc, room = r["paired"]
    assert acc["setting"] == "curriculum=five_then_all" and acc["seeds"] == ["0", "1", "2"]
    assert acc["mean"] == pytest.approx(0.11)  # differences 0.10, 0.11, 0.12
    assert acc["t_interval"][0] < 0.11 < acc["t_interval"][1] and acc["p_t"] < 0.01
    assert acc["p_sign_flip"] == pytest.approx(0.25) and acc["probability_of_improvement"] == 1.0
    assert acc["mcnemar"]["only_a"] == 33 and acc["mcnemar"]["only_b"] == 0 and acc["mcnemar"]["p"] == pytest.approx(2 * 0.5**33)
    assert 0 < acc["photo_interval"][0] < 0.11 < acc["photo_interval"][1]
    assert room["mcnemar"] is None and "no predictions.csv" in room["photo_note"]  # eval/room saved none
    md = r["markdown"].read_text()
    assert "## Against the baseline" in md and "paired t-test" in md and "McNemar" in md and "0.25 for 3 seeds" in md
    assert "smallest p is 0.25" in md
    main([str(mr), "--baseline", "curriculum=none", "--metrics", "test/acc"])
    out = capsys.readouterr().out
    assert "against curriculum=none, paired by seed" in out and "| curriculum=five_then_all | test/acc | 3 | +0.1100 |" in out


def test_paired_says_when_it_cannot_say_anything(tmp_path):
    mr = fake_multirun(tmp_path / "mr", seeds=(0, 1), predictions=True)
    other = mr / "1_curriculum-none+seed-1" / "predictions.csv"
    other.write_text(other.read_text().replace("A/99.png", "A/100.png"))  # not the same photos
    r = compare([mr], ["test/acc"], baseline="curriculum=none")
    (row,) = r["paired"]
    assert "too few to say anything" in row["note"] and "seed 1: the runs scored different photos" in row["photo_note"]
    assert "not significant" not in r["paired_table"]  # too few pairs to call it either way
    mr3 = fake_multirun(tmp_path / "mr3", seeds=(0, 1, 2))
    worse = mr3 / "5_curriculum-five_then_all+seed-2" / "metrics.json"
    worse.write_text(json.dumps({**json.loads(worse.read_text()), "test/acc": 0.40}))  # differences +.10, +.11, -.12
    r3 = compare([mr3], ["test/acc"], baseline="curriculum=none")
    assert r3["paired"][0]["p_t"] > 0.05 and "not significant at 0.05 (paired t)" in r3["paired_table"]
    with pytest.raises(ASLError, match=r"--baseline 'model=x': no such setting, nor a folder of the jobs compared; "
                                       r"the settings are: curriculum=five_then_all; curriculum=none"):
        compare([mr], ["test/acc"], baseline="model=x")
    with pytest.raises(ASLError, match="its jobs are 2 settings"):
        compare([mr], ["test/acc"], baseline=str(mr))


def test_baseline_named_by_its_sweep_folder(tmp_path):
    """One sweep folder per row (as experiments/*/run.sh write them): --baseline names the row's folder."""
    a = fake_multirun(tmp_path / "rows" / "small", settings=("model=small_cnn",), seeds=(0, 1, 2))
    b = fake_multirun(tmp_path / "rows" / "big", settings=("model=resnet18",), seeds=(0, 1, 2))
    r = compare([a, b], ["test/acc"], out=tmp_path / "out", baseline=str(a))
    assert r["baseline"] == "model=small_cnn" and [p["setting"] for p in r["paired"]] == ["model=resnet18"]


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

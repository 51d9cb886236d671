"""What a user does: train from the shell, then evaluate and predict with the checkpoint."""

import json

import pytest

from asl.runs.run_folder import read_hits

from .conftest import TINY_TRAIN, make_photo_folder, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("work")
    run = work / "run"
    r = run_cli("asl.cli.train", *TINY_TRAIN, f"hydra.run.dir={run}", cwd=work)
    assert r.returncode == 0, r.stderr[-3000:]
    return work, run, r


def test_train_writes_a_self_describing_run_folder(trained_run):
    work, run, r = trained_run
    assert "test accuracy" in r.stdout and f"run folder: {run}" in r.stdout
    for name in (".hydra/config.yaml", ".hydra/overrides.yaml", "checkpoints/best.ckpt", "checkpoints/last.ckpt",
                 "splits.csv", "metrics.json", "environment.json", "confusion_matrix.png", "skipped_files.csv"):
        assert (run / name).exists(), name
    assert list((run / "tb").glob("events.out.tfevents.*"))
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 <= metrics["test/acc"] <= 1 and metrics["num_test_images"] == 24
    assert set(metrics["per_class_acc"]) == set("ABCDEFGHIKLMNOPQRSTUVWXY")
    lines = (run / "splits.csv").read_text().splitlines()
    assert lines[0] == "file,label,split" and len(lines) == 1 + 96
    hits = read_hits(run / "predictions.csv")  # every test photo, its label and the predicted letter
    assert set(hits) == {line.split(",")[0] for line in lines[1:] if line.endswith(",test")}
    assert sum(hits.values()) / len(hits) == pytest.approx(metrics["test/acc"])
    out = r.stdout + r.stderr  # what the user reads: asl's lines, not library noise
    for noise in ("💡 Tip", "litlogger", "GPU available:", "LeafSpec", "DeprecationWarning", "smaller than the logging interval"):
        assert noise not in out, noise


def test_eval_on_run_test_split_and_on_another_folder(trained_run, tmp_path):
    work, run, r = trained_run
    train_acc = json.loads((run / "metrics.json").read_text())["test/acc"]
    out = tmp_path / "eval"
    e = run_cli("asl.cli.eval", f"ckpt_path={run}/checkpoints/best.ckpt", f"output_dir={out}", cwd=work)
    assert e.returncode == 0, e.stderr[-3000:]
    m = json.loads((out / "metrics.json").read_text())
    assert m["num_images"] == 24 and m["test/acc"] == pytest.approx(train_acc)
    assert (out / "confusion_matrix.png").stat().st_size > 1000
    assert (out / "predictions.csv").read_text() == (run / "predictions.csv").read_text()  # the same photos, scored alike
    photos = make_photo_folder(tmp_path / "photos", letters="ABY", per_class=2)
    e2 = run_cli("asl.cli.eval", f"ckpt_path={run}/checkpoints/best.ckpt", f"data.root={photos}", cwd=work)
    assert e2.returncode == 0, e2.stderr[-3000:]
    assert "6 images" in e2.stdout
    assert list((run / "eval").glob("photos_*/metrics.json"))


def test_predict_prints_top3_and_writes_csv(trained_run, tmp_path):
    work, run, r = trained_run
    photos = make_photo_folder(tmp_path / "photos", letters="AB", per_class=2, fmt="jpg")
    (photos / "A" / "bad.jpg").write_bytes(b"nope")
    csv = tmp_path / "pred.csv"
    p = run_cli("asl.cli.predict", f"ckpt_path={run}/checkpoints/best.ckpt", f"inputs={photos}", f"csv={csv}", cwd=work)
    assert p.returncode == 0, p.stderr[-3000:]
    lines = [x for x in p.stdout.splitlines() if x.startswith(str(photos))]
    assert len(lines) == 5
    good = [x for x in lines if "ERROR" not in x]
    assert len(good) == 4 and all(len(x.split(": ")[1].split()) == 6 for x in good)
    assert "1 of 5 file(s) could not be read" in p.stdout
    rows = csv.read_text().splitlines()
    assert rows[0].startswith("file,letter1,prob1,letter2,prob2,letter3,prob3") and len(rows) == 6
    g = run_cli("asl.cli.predict", f"ckpt_path={run}/checkpoints/best.ckpt", f"inputs={photos}/*/img0.jpg", cwd=work)
    assert g.returncode == 0 and g.stdout.count("img0.jpg") == 2
    nothing = run_cli("asl.cli.predict", f"ckpt_path={run}/checkpoints/best.ckpt", f"inputs={photos}/A/bad.jpg", cwd=work)
    assert nothing.returncode == 2 and "none of the 1 file(s) could be read" in nothing.stderr  # a failed tool fails


@pytest.mark.parametrize("args,message", [
    (["asl.cli.eval", "ckpt_path=/nope.ckpt"], "error: ckpt_path: /nope.ckpt does not exist"),
    (["asl.cli.train", "data=folder", "data.root=/no/such/photos"], "error: data.root: /no/such/photos is not a folder"),
    (["asl.cli.train", "model.name=resnet9000"], "error: model.name: unknown backbone 'resnet9000'"),
    (["asl.cli.train", "data.split.fractions=[0.5,0.5,0.5]"], "error: data.split.fractions must sum to 1"),
    (["asl.cli.train", "trainer.max_epochs=abc"], "error: trainer.max_epochs='abc': must be a whole number ≥ 1"),
    (["asl.cli.train", "optimizer.lr=abc"], "error: optimizer.lr='abc': must be a number > 0"),
    (["asl.cli.train", "data.batch_size=abc"], "error: data.batch_size='abc': must be a whole number ≥ 1"),
    (["asl.cli.train", "trainer.precision=99"], "error: trainer.precision=99: must be one of"),
    (["asl.cli.train", "data.hand_blank=wide"], "error: data.hand_blank='wide': must be a number ≥ 0 ≤ 1"),
    (["asl.cli.train", "+model.trainable_stage=1"], "error: model: unexpected option(s) ['trainable_stage']"),
    (["asl.cli.train", "+trainer.foo=1"], "error: trainer: unknown option(s) ['foo']"),
    (["asl.cli.train", "data=folder"], "error: data.root is required: set it on the command line, e.g. data.root="),
    (["asl.cli.train", "trainer.num_workers=0"], "error: trainer.num_workers has moved: use data.num_workers"),
])
def test_user_mistakes_give_one_clear_line(args, message, tmp_path):
    if args[0] == "asl.cli.train":
        args = [*args, f"hydra.run.dir={tmp_path}/run", f"paths.cache_dir={tmp_path}/cache"]
    r = run_cli(*args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr[-2000:]
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_checkpoint_of_another_model_is_refused(trained_run, tmp_path):
    import torch
    (tmp_path / "cut.ckpt").write_bytes((trained_run[1] / "checkpoints" / "best.ckpt").read_bytes()[:5000])
    r = run_cli("asl.cli.eval", f"ckpt_path={tmp_path}/cut.ckpt", cwd=tmp_path)
    line = r.stderr.strip().splitlines()[-1]
    assert r.returncode == 2 and "is not a readable PyTorch checkpoint" in line and line.endswith((")", "…)")), line
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}, "epoch": 1}, other)
    r = run_cli("asl.cli.predict", f"ckpt_path={other}", f"inputs={tmp_path}", cwd=tmp_path)
    assert r.returncode == 2 and "is not an asl checkpoint" in r.stderr
    work, run, _ = trained_run
    ck = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)
    ck["hyper_parameters"]["model"]["widths"] = [8, 16, 32, 64, 128]
    torch.save(ck, tmp_path / "mismatch.ckpt")
    r = run_cli("asl.cli.predict", f"ckpt_path={tmp_path}/mismatch.ckpt", f"inputs={tmp_path}", cwd=tmp_path)
    assert r.returncode == 2 and "does not match the model it describes (small_cnn)" in r.stderr


@pytest.mark.parametrize("change,message", [
    (["model=resnet18", "model.input_size=32"], "model.name: 'small_cnn' there, 'resnet18' here"),
    (["model.input_size=48"], "input contract (image_size): 32 there, 48 here"),
])
def test_resuming_from_another_models_checkpoint_says_what_differs(trained_run, tmp_path, change, message):
    work, run, _ = trained_run
    r = run_cli("asl.cli.train", *TINY_TRAIN, *change, f"ckpt_path={run}/checkpoints/last.ckpt",
                f"hydra.run.dir={tmp_path}/resumed", cwd=work)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert (tmp_path / "resumed" / "FAILED").exists()  # a failed run says so in its folder

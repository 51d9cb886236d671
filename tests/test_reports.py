"""What a researcher reads and looks at: printed hints, summaries, error lines and figures say what is true
and can be read (issue 28, item 5)."""

import json
import logging
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from asl import LETTERS

from .conftest import TINY_TRAIN, classifier, make_photo_folder, run_cli


def _bbox_height(before: np.ndarray, after: np.ndarray) -> int:
    rows = np.flatnonzero((before != after).any(axis=(1, 2)))
    return int(rows[-1] - rows[0] + 1)


@pytest.mark.parametrize("side", [200, 2000])
def test_predict_drawing_label_scales_with_the_photo_on_a_dark_box(side):
    from asl.hands.draw import draw_hand

    photo = np.full((side, side, 3), 120, np.uint8)
    drawn = draw_hand(photo, None, label="A 0.93")
    height = _bbox_height(photo, drawn)
    assert 0.06 * side <= height <= 0.2 * side  # readable on a 200 px photo, not a banner on a large one
    corner = drawn[:height, : side // 2]
    assert (corner == 0).all(-1).any() and (corner == 255).all(-1).any()  # white letters on black


def test_mediapipe_start_up_notes_are_dropped_and_other_native_lines_kept(capfd):
    import os
    import warnings

    from asl.hands.detect import mediapipe_quiet

    with mediapipe_quiet():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
                    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
                    b"W0000 00:00:1796.8 7616 inference_feedback_manager.cc:114] Feedback manager requires a model\n"
                    b"E0000 00:00:1796.9 7616 calculator_graph.cc:887] a real error\n")
        warnings.warn("SymbolDatabase.GetPrototype() is deprecated. Please use message_factory", UserWarning, stacklevel=1)
    err = capfd.readouterr().err
    assert err == "E0000 00:00:1796.9 7616 calculator_graph.cc:887] a real error\n"


def test_budget_line_only_with_a_curriculum(caplog):
    from asl.lit.curriculum import setup_curriculum

    labels = np.repeat(np.arange(24), 4)
    dm = SimpleNamespace(labels=labels, classes=list(LETTERS), batch_size=8, indices=lambda split: np.arange(len(labels)))
    module = SimpleNamespace(planned_steps=None)
    caplog.set_level(logging.INFO, logger="asl.lit.curriculum")
    setup_curriculum(OmegaConf.create({"seed": 0, "budget": {"unit": "epochs"}, "curriculum": {"stages": []}}), dm, module, {"max_epochs": 4})
    assert not [r for r in caplog.records if "Budget" in r.getMessage()]
    curriculum = {"order": "alphabetical", "stages": [{"classes": 5, "fraction": 0.5}, {"classes": "all"}]}
    setup_curriculum(OmegaConf.create({"seed": 0, "budget": {"unit": "epochs"}, "curriculum": curriculum}), dm, module, {"max_epochs": 4})
    (line,) = [r.getMessage() for r in caplog.records if "Budget" in r.getMessage()]
    assert "from epoch 0: ABCDE" in line and "from epoch 2: all 24 letters" in line


def test_worst_letters_group_ties_instead_of_listing_them_alphabetically():
    from asl.runs.evaluate import describe_worst, error_table

    conf = np.zeros((24, 24), int)
    conf[:19, 23] = 2  # 19 letters: both photos wrong
    conf[19, 19], conf[19, 0] = 1, 1  # U: 50 %
    for i in range(20, 24):
        conf[i, i] = 2
    worst = error_table(conf, list(LETTERS))["worst_letters"]
    assert worst == [{"acc": 0.0, "letters": list(LETTERS[:19]), "photos": 38}]
    assert describe_worst(worst).startswith("19 letters at 0 % (ABCDEFGHIKLMNOPQRST, 38 photos)")
    conf[:17, 23], conf[:17, :17] = 0, np.eye(17, dtype=int) * 2  # now only S and T fail
    worst = error_table(conf, list(LETTERS))["worst_letters"]
    assert [w["letters"] for w in worst] == [["S", "T"], ["U"], [c for c in LETTERS if c not in "STU"]]
    assert describe_worst(worst[:2]) == "2 letters at 0 % (ST, 4 photos), U 50 % (of 2)"


def test_layer_summary_lists_the_network_not_the_metrics_and_counts_flops(caplog):
    import pytorch_lightning as pl

    from asl.lit.summary import NetworkSummary

    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    caplog.set_level(logging.INFO, logger="asl.lit.summary")
    NetworkSummary(max_depth=3).on_fit_start(trainer, classifier({"name": "small_cnn"}, "ABC", image_size=32))
    table = caplog.records[-1].getMessage()
    assert "net.stages.0" in table and "net.head" in table
    assert "Multiclass" not in table and "test_acc" not in table
    flops = next(line for line in table.splitlines() if line.endswith("FLOPs per image"))
    assert flops.split()[0] not in ("0", "")
    compiled = classifier({"name": "small_cnn", "compile": True}, "ABC", image_size=32)  # no example input: no count
    NetworkSummary(max_depth=1).on_fit_start(trainer, compiled)
    assert "FLOPs" not in caplog.records[-1].getMessage()


@pytest.mark.parametrize("model", ["landmark_mlp", "fusion"])
def test_layer_summary_counts_models_that_read_landmarks(model, caplog):
    """The example input follows the input contract: landmark rows, or (image, landmarks) for fusion."""
    import pytorch_lightning as pl
    from hydra import compose, initialize_config_dir

    from asl.inputs import resolve_input_spec
    from asl.lit.summary import NetworkSummary

    from .conftest import CONFIG_PATH

    with initialize_config_dir(config_dir=CONFIG_PATH, version_base="1.3"):
        cfg = compose("train", overrides=[f"model={model}", "model.input_size=32"])
    model_cfg, data_cfg = (OmegaConf.to_container(cfg[k], resolve=True) for k in ("model", "data"))
    spec = resolve_input_spec(model_cfg, data_cfg).to_dict()
    caplog.set_level(logging.INFO, logger="asl.lit.summary")
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    NetworkSummary(max_depth=2).on_fit_start(trainer, classifier(model_cfg, "ABC", spec=spec))
    assert caplog.records[-1].getMessage().splitlines()[-1].split()[0] != "0"  # FLOPs per image


def test_layer_summary_runs_before_device_augmentation_sees_a_batch(photo_folder, tmp_path, caplog):
    """The example input passes the datamodule's on-device augmentation hook untouched (it is no (x, y) batch)."""
    import pytorch_lightning as pl

    from asl.lit.summary import NetworkSummary

    from .conftest import datamodule
    from .test_device_augment import device_recipe

    dm = datamodule(root=str(photo_folder), classes="ABC", image_size=32, batch_size=4, train_transforms=[],
                    split={"fractions": [0.5, 0.25, 0.25]}, device_transforms=device_recipe(),
                    cache_dir=str(tmp_path / "cache"), audit=False)
    caplog.set_level(logging.INFO, logger="asl.lit.summary")
    pl.Trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=1, logger=False, enable_checkpointing=False,
               enable_progress_bar=False, callbacks=[NetworkSummary(max_depth=1)], accelerator="cpu").fit(
        classifier({"name": "small_cnn"}, dm.classes, image_size=32), datamodule=dm)
    assert "FLOPs per image" in caplog.text


def test_eval_and_self_training_use_trainings_progress_bar_not_rich():
    from pytorch_lightning.callbacks import TQDMProgressBar

    from asl.runs.evaluate import trainer_for

    assert type(trainer_for("cpu").progress_bar_callback) is TQDMProgressBar


def test_an_unreadable_photo_names_its_path_once(tmp_path):
    from asl import ASLError
    from asl.data.folder import load_image
    from asl.runs.predict import predict_files

    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    with pytest.raises(ASLError) as e:
        load_image(bad)
    assert str(e.value).count("bad.jpg") == 1
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "good.png")
    rows = predict_files(classifier({"name": "small_cnn"}, "ABC", image_size=32), [bad, tmp_path / "good.png"])
    assert "top" in rows[1] and "bad.jpg" not in rows[0]["error"] and "cannot read image" in rows[0]["error"]


def test_augmentation_figure_has_large_tiles_titled_with_their_letter(tmp_path):
    from asl.runs.train import augmentation_figure

    letters = [LETTERS[i % 24] for i in range(32)]
    fig = augmentation_figure(torch.rand(32, 3, 32, 32), letters)
    assert [ax.get_title() for ax in fig.axes] == letters
    fig.savefig(tmp_path / "a.png", dpi=100)
    width, height = Image.open(tmp_path / "a.png").size
    assert width >= 900 and height >= 450  # 8 × 4 tiles of about 110 px, not 33 px


def test_near_duplicate_titles_keep_the_letter_folder():
    from asl.runs.audit import pairs_figure

    store = SimpleNamespace(image=lambda k: np.zeros((8, 8, 3), np.uint8))
    names = ["K/" + "signer_with_a_long_name_" * 3 + "0001.jpg", "K/" + "signer_with_a_long_name_" * 3 + "0002.jpg"]
    fig = pairs_figure(store, np.arange(2), [(0, 1, 3)], names, np.array(["test", "train"]))
    titles = [ax.get_title() for ax in fig.axes]
    assert all("K/" in t for t in titles) and titles[0].endswith("0001.jpg") and "d=3" in titles[1]
    plt.close(fig)


def test_mistakes_grid_stays_about_square_with_a_colour_bar():
    from asl.runs.gradcam import mistakes_grid

    mistakes = [{"true": c, "pred": "A", "prob": 0.9} for c in LETTERS[1:21] for _ in range(2)]
    overlays = [np.zeros((32, 32, 3), np.uint8)] * len(mistakes)
    fig = mistakes_grid(overlays, mistakes)
    cells = [ax for ax in fig.axes if ax.images]
    assert len(cells) == 40 and {ax.get_title() for ax in cells} >= {"B → A 0.90", "V → A 0.90"}
    rows = {round(ax.get_position().y0, 3) for ax in cells}
    assert len(rows) <= 7  # 20 letters, not 20 rows
    (bar,) = [ax for ax in fig.axes if ax.get_ylabel().startswith("Grad-CAM")]  # the colour bar, over [0, 1]
    assert bar.get_ylim() == (0, 1) and not bar.images
    width, height = fig.get_size_inches()
    assert height < 1.5 * width
    plt.close(fig)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("work")
    r = run_cli("asl.cli.train", *TINY_TRAIN, "hydra.run.dir=run", cwd=work)
    assert r.returncode == 0, r.stderr[-3000:]
    return work, work / "run", r.stdout + r.stderr


@pytest.mark.slow
def test_training_prints_the_network_summary_and_no_budget_without_curriculum(cli_run):
    work, run, out = cli_run
    assert "FLOPs per image" in out and "Total FLOPs: 0" not in out and "MulticlassAccuracy" not in out
    assert "Budget:" not in out and "Trainer already configured" not in out
    assert f"asl-eval ckpt_path={run}/checkpoints/best.ckpt" in out
    assert Image.open(run / "augmented_samples.png").size[0] >= 900


@pytest.mark.slow
def test_eval_writes_into_hydra_run_dir_and_its_confusion_title_names_data_and_checkpoint(cli_run, monkeypatch, tmp_path):
    work, run, _ = cli_run
    e = run_cli("asl.cli.eval", f"ckpt_path={run}/checkpoints/best.ckpt", "hydra.run.dir=X", "data.num_workers=0", cwd=work)
    assert e.returncode == 0, e.stderr[-3000:]
    assert {p.name for p in (work / "X").iterdir()} >= {"metrics.json", "confusion_matrix.png"}

    import asl.runs.run_folder as run_folder
    from asl.runs.evaluate import evaluate

    figures, real = [], run_folder.confusion_figure

    def keep(*args, **kwargs):
        figures.append(real(*args, **kwargs))
        return figures[-1]

    monkeypatch.setattr(run_folder, "confusion_figure", keep)
    photos = make_photo_folder(tmp_path / "photos", letters="AB", per_class=1)
    evaluate(run / "checkpoints" / "best.ckpt", str(photos), tmp_path / "eval", {"num_workers": 0}, accelerator="cpu")
    title = figures[0].axes[0].get_title()
    assert str(photos) in title and "best.ckpt" in title


@pytest.mark.slow
def test_predict_prints_no_mediapipe_log_lines_and_each_path_once(cli_run, tmp_path):
    work, run, _ = cli_run
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "bad.jpg").write_bytes(b"nope")
    p = run_cli("asl.cli.predict", f"ckpt_path={run}/checkpoints/best.ckpt", f"inputs={tmp_path}",
                f"draw={tmp_path}/drawn", f"cache_dir={tmp_path}/cache", cwd=work)  # draw=: the real detector runs
    assert p.returncode == 0, p.stderr[-3000:]
    assert (tmp_path / "drawn" / "a.png").exists()
    for noise in ("absl", "W0000", "I0000", "XNNPACK", "inference_feedback_manager", "GetPrototype"):
        assert noise not in p.stderr, noise
    (line,) = [x for x in p.stdout.splitlines() if "ERROR" in x]
    assert line.count("bad.jpg") == 1


@pytest.mark.slow
def test_fast_dev_run_names_no_checkpoint_it_did_not_write(tmp_path):
    r = run_cli("asl.cli.train", *TINY_TRAIN, "+trainer.fast_dev_run=true", "hydra.run.dir=run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert not (tmp_path / "run" / "checkpoints").exists()
    assert "ckpt_path=" not in r.stdout and "trainer.fast_dev_run writes none" in r.stdout
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["best_checkpoint"] is None

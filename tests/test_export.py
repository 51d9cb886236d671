"""Exported models (ONNX, TorchScript) match PyTorch and carry what asl-predict needs."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from asl import ASLError
from asl.cli import export as export_cli
from asl.cli import predict as predict_cli
from asl.inputs import InputSpec
from asl.lit.module import ASLClassifier, load_classifier
from asl.runs.export import export_model, load_exported
from asl.runs.predict import load_predictor, predict_files

from .conftest import classifier, make_photo_folder


def save_checkpoint(module: ASLClassifier, path):
    """A checkpoint as asl-train writes it (hyper-parameters + state dict), without training."""
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def module() -> ASLClassifier:
    torch.manual_seed(0)
    spec = InputSpec(image_size=32, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3)).to_dict()
    return classifier({"name": "small_cnn", "widths": [8, 16, 32]}, list("ABC"), spec=spec).eval()


@pytest.mark.parametrize("name", ["small_cnn", "resnet18"])
def test_exported_outputs_match_pytorch(name, tmp_path):
    torch.manual_seed(0)
    m = classifier({"name": name}, list("ABCD"), image_size=32).eval()
    x = torch.randn(5, 3, 32, 32)  # another batch size than the one exported with
    with torch.no_grad():
        expected = m(x).numpy()
    for format in ("onnx", "torchscript"):
        run, meta = load_exported(export_model(m, tmp_path / f"m.{format}", format))
        assert meta["class_names"] == list("ABCD") and meta["spec"]["image_size"] == 32 and meta["model"] == name
        np.testing.assert_allclose(run(x).numpy(), expected, atol=1e-4, rtol=0, err_msg=format)


@pytest.mark.parametrize("suffix", [".onnx", ".pt"])
def test_predict_accepts_exported_files(module, suffix, tmp_path, capsys, monkeypatch):
    photos = make_photo_folder(tmp_path / "photos", letters="AB", per_class=2, size=40)
    paths = sorted(photos.rglob("*.png"))
    path = export_model(module, tmp_path / f"m{suffix}", "onnx" if suffix == ".onnx" else "torchscript")
    exported = load_predictor(path)
    assert exported.spec == module.spec and exported.spec.mean == (0.5, 0.4, 0.3)
    expected = predict_files(module, paths)
    got = predict_files(exported, paths)
    for e, g in zip(expected, got, strict=True):
        assert [c for c, _ in e["top"]] == [c for c, _ in g["top"]]
        np.testing.assert_allclose([p for _, p in e["top"]], [p for _, p in g["top"]], atol=1e-5)
    monkeypatch.setattr(sys, "argv", ["asl-predict", f"ckpt_path={path}", f"inputs={photos}"])
    predict_cli.main()
    assert capsys.readouterr().out.count(str(photos)) == 4


def test_files_without_asl_metadata_are_refused(module, tmp_path):
    plain = tmp_path / "plain.pt"
    torch.jit.save(torch.jit.trace(module.net, torch.zeros(1, 3, 32, 32)), str(plain))
    with pytest.raises(ASLError, match="no asl metadata"):
        load_exported(plain)
    with pytest.raises(ASLError, match="not a TorchScript model"):
        load_exported(save_checkpoint(module, tmp_path / "x.pt"))


def test_export_cli_writes_a_checked_file_beside_the_checkpoint(module, tmp_path, capsys, monkeypatch):
    ckpt = save_checkpoint(module, tmp_path / "best.ckpt")
    assert load_classifier(ckpt).class_names == list("ABC")
    monkeypatch.setattr(sys, "argv", ["asl-export", f"ckpt_path={ckpt}", "format=torchscript"])
    export_cli.main()
    out = capsys.readouterr().out
    assert (tmp_path / "best.pt").exists() and "largest logit difference" in out
    assert float(out.split("random inputs ")[1].split()[0]) < 1e-4
    monkeypatch.setattr(sys, "argv", ["asl-export", f"ckpt_path={ckpt}", "format=tflite"])
    with pytest.raises(SystemExit) as e:
        export_cli.main()
    assert e.value.code == 2 and "format: 'tflite' is not one of" in capsys.readouterr().err

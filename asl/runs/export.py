"""Ship a model: ONNX or TorchScript files that carry their class names and preprocessing.

The metadata (``asl.json``: class names, image size, mean, std, backbone, asl version) sits in
ONNX ``metadata_props`` or in TorchScript ``_extra_files``, so ``load_exported`` (and
``asl-predict``) need nothing but the file. Outputs are logits; softmax is left to the caller.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import asl
from asl import ASLError, brief
from asl.lit.module import ASLClassifier

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
META_KEY = "asl.json"


def metadata(module: ASLClassifier) -> dict[str, Any]:
    """What a user of the file needs to feed it: classes and preprocessing."""
    return {"class_names": list(module.class_names), "spec": module.spec.to_dict(),
            "model": module.hparams.model.get("name"), "asl_version": asl.__version__,
            "input": "float32 (batch, 3, spec.image_size, spec.image_size), RGB in [0, 1], then (x - spec.mean) / spec.std",
            "output": "logits (batch, len(class_names))"}


def export_model(module: ASLClassifier, path: str | Path, format: str = "onnx", opset: int = 17) -> Path:
    """Write ``module`` to ``path`` as ONNX (dynamic batch axis) or TorchScript (traced)."""
    if format not in FORMATS:
        raise ASLError(f"format: {format!r} is not one of {sorted(FORMATS)}")
    if module.spec.wants_hands:
        raise ASLError("ckpt_path: this model needs the hand detector (landmarks or hand crops), which an exported "
                       "file cannot carry; export an image model on whole photos, or predict with the .ckpt")
    module = module.eval().cpu()
    meta = metadata(module)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(2, 3, module.spec.image_size, module.spec.image_size)
    if format == "torchscript":
        with torch.no_grad():
            traced = torch.jit.trace(module.net, example, check_trace=False)  # checked by asl-export and tests
        torch.jit.save(traced, str(path), _extra_files={META_KEY: json.dumps(meta)})
        return path
    import onnx

    # The dynamo exporter needs onnxscript, which is not installed; the TorchScript-based one
    # covers every backbone in the registry.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.net, (example,), str(path), dynamo=False, opset_version=opset,
                          input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(meta)
    onnx.save(model, str(path))
    return path


def load_exported(path: str | Path) -> tuple[Callable[[torch.Tensor], torch.Tensor], dict[str, Any]]:
    """(run, metadata) for an exported file; ``run`` maps a float batch to logits, on the CPU."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ASLError(f"ckpt_path: {path} does not exist")
    if path.suffix == ".onnx":
        import onnxruntime as ort

        try:
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as e:
            raise ASLError(f"ckpt_path: {path} is not a readable ONNX model ({brief(e)})") from None
        props = session.get_modelmeta().custom_metadata_map
        name = session.get_inputs()[0].name

        def run(x: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(session.run(None, {name: x.cpu().numpy().astype(np.float32)})[0])
    else:
        extra = {META_KEY: ""}
        try:
            scripted = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
        except Exception as e:
            raise ASLError(f"ckpt_path: {path} is not a TorchScript model ({brief(e)}); pass a .ckpt, .onnx or "
                           f"a .pt written by asl-export") from None
        props = extra

        @torch.no_grad()
        def run(x: torch.Tensor) -> torch.Tensor:
            return scripted(x.cpu())
    if not props.get(META_KEY):
        raise ASLError(f"ckpt_path: {path} has no asl metadata (class names, preprocessing); export it with asl-export")
    return run, json.loads(props[META_KEY])

"""Where is the model looking? Grad-CAM overlays, the most confident mistakes, and the hand share.

Grad-CAM (the ``grad-cam`` library) is taken at a backbone stage, ``net.stages[i]``, which every
backbone in the registry has: the last one whose feature map is still at least 4×4 pixels. The
maps are scaled to [0, 1] per image by the library. The *hand share* is the share of the Grad-CAM mass that falls
inside the hand mask: near 1, the model looks at the hand; near the hand's share of the image
area, it looks everywhere; below that, it relies on the background.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from pytorch_grad_cam import GradCAM  # noqa: E402
from pytorch_grad_cam.utils.image import show_cam_on_image  # noqa: E402
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

from asl import ASLError  # noqa: E402
from asl.data.folder import UnreadableFile  # noqa: E402
from asl.hands.prepare import find_hands, input_transform, read_pixels  # noqa: E402
from asl.lit.datamodule import ASLDataModule  # noqa: E402
from asl.lit.module import ASLClassifier  # noqa: E402

#: Draws on an overlay's axes for one input file (e.g. detected hand landmarks or box, from
#: ``asl.hands``): ``annotate(ax, path, image_uint8)``. ``explain_images`` calls it when given.
Annotator = Callable[[Any, Path, np.ndarray], None]

#: Smallest feature-map side Grad-CAM is taken at (see :func:`cam_stage`).
MIN_CAM_SIDE = 4


def reads_images(module: ASLClassifier) -> bool:
    """Grad-CAM needs an image model; landmark and fusion models (``asl.hands``) read landmarks too."""
    return module.spec.inputs == "image"


def cam_stage(module: ASLClassifier, image_size: int, min_side: int = MIN_CAM_SIDE) -> int:
    """Index of the deepest backbone stage whose feature map is at least ``min_side`` pixels wide.

    At small inputs the last stage is 1×1 or 2×2 (small_cnn at 48 px: 1×1), where Grad-CAM is
    constant; an earlier stage then gives a map that can tell hand from background.
    """
    x = torch.zeros(1, 3, image_size, image_size, device=next(module.parameters()).device)
    best = 0
    with torch.no_grad():
        for i, stage in enumerate(module.net.stages):
            x = stage(x)
            if min(x.shape[-2:]) >= min_side:
                best = i
    return best


def gradcam(module: ASLClassifier, images: torch.Tensor, targets: Sequence[int] | None = None,
            stage: int | None = None) -> np.ndarray:
    """Grad-CAM maps (B, H, W) in [0, 1] at input resolution, for ``targets`` (default: predicted class).

    ``stage``: the backbone stage to explain (default :func:`cam_stage`; -1 = the last one).
    """
    module.eval()
    x = images.to(next(module.parameters()).device).requires_grad_(True)  # frozen stages still pass gradients
    layer = module.net.stages[cam_stage(module, x.shape[-1]) if stage is None else stage]
    cam_targets = None if targets is None else [ClassifierOutputTarget(int(t)) for t in targets]
    with torch.enable_grad(), GradCAM(model=module, target_layers=[layer]) as cam:
        return cam(input_tensor=x, targets=cam_targets)


def to_uint8(image: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Undo Normalize: a (3, H, W) model input back to an RGB uint8 (H, W, 3) picture (a uint8
    training image is one already)."""
    if image.dtype == torch.uint8:
        return image.detach().cpu().permute(1, 2, 0).numpy()
    img = image.detach().cpu().permute(1, 2, 0).numpy() * np.asarray(std) + np.asarray(mean)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def overlay(image: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """The Grad-CAM heat map blended over an RGB uint8 image."""
    return show_cam_on_image(image.astype(np.float32) / 255, cam, use_rgb=True, image_weight=0.55)


def hand_share(cams: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Per image: the share of Grad-CAM mass inside the hand mask (masks: nonzero = hand)."""
    cams = cams.reshape(len(cams), -1).astype(np.float64)
    inside = (masks.reshape(len(masks), -1) > 0)
    total = cams.sum(1)
    return np.where(total > 0, (cams * inside).sum(1) / np.maximum(total, 1e-12), np.nan)


def _test_batches(dm: ASLDataModule, batch_size: int, with_masks: bool = False):
    """(rows, images, labels, masks) over the test split, through the eval pipeline (masks follow)."""
    rows = dm.indices("test")
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        images, masks = [], []
        for r in chunk:
            k = int(dm.store_index[r])
            data = {"image": dm.store.image(k)}
            if with_masks:
                data["mask"] = dm.store.mask(k)
            out = dm.eval_tf(**data)
            images.append(out["image"])
            if with_masks:
                masks.append(np.asarray(out["mask"]))
        yield chunk, torch.stack(images), torch.as_tensor(dm.labels[chunk]), (np.stack(masks) if with_masks else None)


def background_reliance(module: ASLClassifier, dm: ASLDataModule, batch_size: int = 64) -> dict[str, Any] | None:
    """Mean hand share of the Grad-CAM mass over the test split (overall and per true class).

    ``None`` when the data has no hand masks or the model reads more than images. Grad-CAM is
    taken for the predicted class.
    """
    if not reads_images(module):
        return None
    dm.setup("test")
    if not dm.store.has_masks:
        return None
    shares, labels = [], []
    area = []
    for _, x, y, masks in _test_batches(dm, batch_size, with_masks=True):
        shares.append(hand_share(gradcam(module, x), masks))
        labels.append(y.numpy())
        area.append((masks.reshape(len(masks), -1) > 0).mean(1))
    s, y, a = np.concatenate(shares), np.concatenate(labels), np.concatenate(area)
    ok = ~np.isnan(s)
    per_class = {c: (float(s[ok & (y == i)].mean()) if (ok & (y == i)).any() else None)
                 for i, c in enumerate(module.class_names)}
    return {"hand_share": float(s[ok].mean()) if ok.any() else None,
            "hand_area": float(a.mean()),  # the share a model that looks everywhere would get
            "hand_share_per_class": per_class, "images": int(ok.sum())}


@torch.no_grad()
def _test_probabilities(module: ASLClassifier, dm: ASLDataModule, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    device = next(module.parameters()).device
    probs, labels = [], []
    for _, x, y, _ in _test_batches(dm, batch_size):
        probs.append(module(x.to(device)).softmax(-1).float().cpu().numpy())
        labels.append(y.numpy())
    return np.concatenate(probs), np.concatenate(labels)


def confident_mistakes(module: ASLClassifier, dm: ASLDataModule, per_class: int = 3,
                       batch_size: int = 64) -> list[dict[str, Any]]:
    """Per true class, its ``per_class`` most confident wrong predictions on the test split."""
    dm.setup("test")
    probs, labels = _test_probabilities(module, dm, batch_size)
    pred = probs.argmax(1)
    rows = dm.indices("test")
    names = module.class_names
    out = []
    for c in range(len(names)):
        wrong = np.flatnonzero((labels == c) & (pred != c))
        for i in wrong[np.argsort(-probs[wrong, pred[wrong]])][:per_class]:
            out.append({"row": int(rows[i]), "file": str(dm.table.paths[int(dm.store_index[rows[i]])]),
                        "true": names[c], "pred": names[pred[i]], "prob": float(probs[i, pred[i]])})
    return out


def mistakes_figure(module: ASLClassifier, dm: ASLDataModule, mistakes: list[dict[str, Any]]):
    """Each mistake's Grad-CAM overlay (for the wrong letter), grouped by true letter: :func:`mistakes_grid`."""
    if not mistakes:
        fig, ax = plt.subplots(figsize=(4, 1))
        ax.axis("off")
        ax.text(0.5, 0.5, "no mistakes on the test split", ha="center", va="center")
        return fig
    images = torch.stack([dm.eval_tf(image=dm.store.image(int(dm.store_index[m["row"]])))["image"] for m in mistakes])
    cams = gradcam(module, images, [module.class_names.index(m["pred"]) for m in mistakes])
    return mistakes_grid([overlay(to_uint8(img, module.spec.mean, module.spec.std), cam) for img, cam in zip(images, cams, strict=True)],
                         mistakes)


def mistakes_grid(overlays: Sequence[np.ndarray], mistakes: list[dict[str, Any]]):
    """One row of cells per true letter (its mistakes, titled true → predicted and probability), the rows
    set side by side in blocks so that the figure stays about square (24 letters: 5 rows, not 24), and
    a colour bar for the Grad-CAM scale (``show_cam_on_image``'s jet map, each map scaled to [0, 1])."""
    classes = list(dict.fromkeys(m["true"] for m in mistakes))
    cols = max(sum(m["true"] == c for m in mistakes) for c in classes)
    blocks = max(1, round(math.sqrt(len(classes) / cols)))
    rows = -(-len(classes) // blocks)
    height = 1.9 * rows + 0.7  # + room for the title
    fig, axes = plt.subplots(rows, blocks * cols, figsize=(max(1.8 * blocks * cols + 1.0, 4.5), height), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    filled = dict.fromkeys(classes, 0)
    for m, picture in zip(mistakes, overlays, strict=True):
        row, block = divmod(classes.index(m["true"]), blocks)
        ax = axes[row, block * cols + filled[m["true"]]]
        filled[m["true"]] += 1
        ax.imshow(picture)
        ax.set_title(f"{m['true']} → {m['pred']} {m['prob']:.2f}", fontsize=8)
    fig.suptitle("most confident mistakes: true → predicted, probability\n(Grad-CAM of the predicted letter)", fontsize=9,
                 y=1 - 0.05 / height, va="top")
    width = fig.get_figwidth()
    fig.tight_layout(rect=(0, 0, 1 - 1.0 / width, 1 - 0.6 / height))  # the right inch: the colour bar
    bar = fig.colorbar(ScalarMappable(Normalize(0, 1), "jet"), cax=fig.add_axes((1 - 0.75 / width, 0.15, 0.12 / width, 0.6)))
    bar.set_label("Grad-CAM (scaled per image)", fontsize=8)
    return fig


def explain_images(module: ASLClassifier, paths: Sequence[Path], out_dir: str | Path,
                   annotate: Annotator | None = None, cache_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """For each image: ``<out_dir>/<stem>.png`` with the photo and the Grad-CAM of its top letter.

    ``annotate`` may draw on the overlay (hook for hand landmarks/box). Unreadable files are
    reported in the returned rows, not skipped silently.
    """
    spec = module.spec
    transform = input_transform(spec)
    hands = find_hands(paths, spec, cache_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for i, p in enumerate(paths):
        try:
            picture = read_pixels(p, hands[i], spec)
        except ASLError as e:  # the row names the file: the reason alone
            rows.append({"file": str(p), "error": e.reason if isinstance(e, UnreadableFile) else str(e)})
            continue
        x = transform(image=picture)["image"][None]
        with torch.no_grad():
            probs = module(x.to(next(module.parameters()).device)).softmax(-1)[0].cpu().numpy()
        top = int(probs.argmax())
        cam = gradcam(module, x, [top])[0]
        fig, axes = plt.subplots(1, 2, figsize=(5, 2.8))
        axes[0].imshow(picture)
        axes[0].set_title(Path(p).name, fontsize=8)
        axes[1].imshow(overlay(picture, cam))
        axes[1].set_title(f"{module.class_names[top]} {probs[top]:.2f}", fontsize=9)
        if annotate is not None:
            annotate(axes[1], Path(p), picture)
        for ax in axes:
            ax.axis("off")
        fig.tight_layout()
        target = out / f"{i:04d}_{Path(p).stem}.png"
        fig.savefig(target, dpi=110)
        plt.close(fig)
        rows.append({"file": str(p), "letter": module.class_names[top], "prob": float(probs[top]), "overlay": str(target)})
    return rows

"""Throughput in one run: (a) data pipeline, JPEG decode + augment vs cache + augment, per worker, with
the augmentation in the workers (albumentations) or on the device in batches (kornia, data/augment=device);
(b) training, the Lightning loop vs a plain PyTorch loop (same model, data, batch size);
(c) with --gpu: ResNet-50 at 224 px with trainer=gpu settings, real data vs synthetic in-memory tensors.

    python experiments/benchmarks/bench.py [--data ../shared/data/asl_alphabet_room] [--gpu]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, Dataset

from asl.cli import CONFIG_PATH
from asl.data.folder import load_image
from asl.data.transforms import DeviceAugment, build_pipeline
from asl.runs.train import build_datamodule, build_module


def config(overrides: list[str]):
    with initialize_config_dir(config_dir=CONFIG_PATH, version_base="1.3"):
        return compose("train", overrides=[*overrides, "paths.output_dir=/tmp/asl-bench"])


def datamodule(cfg):
    dm = build_datamodule(cfg, audit={"audit": False})
    dm.prepare_data()
    dm.setup("fit")
    return dm, OmegaConf.to_container(cfg.trainer, resolve=True)


def images_per_second(idx: list[int], get, transform=None) -> float:
    """One process (= one loader worker): ``get`` each image of ``idx`` and, if given, ``transform`` it."""
    def one(k):
        return transform(image=get(k)) if transform is not None else get(k)

    for k in idx[:20]:
        one(k)  # warm the page cache, the memmap and the transforms
    t = time.perf_counter()
    for k in idx:
        one(k)
    return len(idx) / (time.perf_counter() - t)


def jpeg_reader(dm):
    """What the loader does without the cache: decode the photo, resized to the model input."""
    return lambda k: load_image(dm.store.paths[k], dm.spec.image_size)


def pipeline(cfg, n: int):
    """(a) One process (= one loader worker): decode + augment each image, from JPEG vs from the cache."""
    dm, _ = datamodule(cfg)
    ds = dm.dataset("train")
    idx = [int(ds.indices[i % len(ds)]) for i in range(n)]
    jpeg = jpeg_reader(dm)
    full, cached = images_per_second(idx, jpeg, ds.transform), images_per_second(idx, dm.store.image, ds.transform)
    decode, read = images_per_second(idx, jpeg), images_per_second(idx, dm.store.image)
    print(f"(a) data pipeline at {dm.spec.image_size}px, images/s per worker: JPEG decode+augment {full:,.0f}, "
          f"cache+augment {cached:,.0f}  ->  ratio {cached / full:.1f}x (target >= 5x)\n"
          f"    without augmentation: JPEG decode {decode:,.0f}, cache read {read:,.0f}  ->  ratio {read / decode:.0f}x")
    # Where the cached path's time goes: each step of the training pipeline alone, then the Compose's own share.
    images = [dm.store.image(k) for k in idx]
    costs = {}
    for step in ds.transform.transforms:
        t = time.perf_counter()
        for image in images:
            step(image=image)
        costs[type(step).__name__] = (time.perf_counter() - t) / n * 1e6
    costs["Compose overhead"] = 1e6 / cached - 1e6 / read - sum(costs.values())
    costs["JPEG decode + resize"] = 1e6 / decode
    print("    microseconds per image: " + ", ".join(f"{k} {v:,.0f}" for k, v in costs.items()))
    return dm, idx


def device_route(overrides: list[str], dm, idx: list[int], device: str, batch: int) -> None:
    """(a) with data/augment=device: a worker only reads the cache (or decodes) and tensorises; kornia
    augments whole batches on ``device``. On a CPU both run on the same cores, so the ratio adds them."""
    recipe = config([*overrides, "data/augment=device"]).data.device_transforms
    worker = build_pipeline([], dm.spec.image_size, normalize=False)  # what a worker still does: resize, tensorise
    jpeg, cached = images_per_second(idx, jpeg_reader(dm), worker), images_per_second(idx, dm.store.image, worker)
    aug = DeviceAugment(recipe).to(device)
    x = torch.stack([worker(image=dm.store.image(idx[i % len(idx)]))["image"] for i in range(batch)]).to(device)
    reps = 3 if device == "cpu" else 20
    for _ in range(2):
        aug(x)  # warm-up (CUDA kernels, allocator)

    def cost(fn) -> float:
        """Seconds per image of ``fn`` over the batch."""
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        if device == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - t) / (reps * batch)

    per_image = cost(lambda: aug(x))
    xf = x.float() / 255
    steps = {type(step).__name__: cost(lambda step=step: step(xf)) * 1e6 for step in aug.steps}
    name = torch.cuda.get_device_name(0) if device == "cuda" else "the CPU, one process"
    line = (f"(a) data/augment=device at {dm.spec.image_size}px: kornia on {name}, batches of {batch}: "
            f"{per_image * 1e6:,.1f} µs per image ({', '.join(f'{k} {v:,.1f}' for k, v in steps.items())})\n    per worker (no augmentation there): JPEG decode {jpeg:,.0f}, "
            f"cache read {cached:,.0f} img/s  ->  ratio {cached / jpeg:.0f}x")
    if device == "cpu":  # the same core decodes (or reads) and augments
        both = [1 / (1 / r + per_image) for r in (jpeg, cached)]
        line += (f"\n    one core doing both: JPEG + device augment {both[0]:,.0f}, cache + device augment {both[1]:,.0f} img/s"
                 f"  ->  ratio {both[1] / both[0]:.1f}x")
    print(line)


class Timer(pl.Callback):
    """Images/s of training batches after ``skip`` warm-up batches."""

    def __init__(self, skip: int):
        self.skip, self.images, self.start = skip, 0, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == self.skip:
            self.start = time.perf_counter()
        if batch_idx >= self.skip:
            self.images += batch[1].shape[0]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.start is not None and pl_module.device.type == "cuda":
            torch.cuda.synchronize()
        self.end = time.perf_counter()

    @property
    def rate(self) -> float:
        return self.images / (self.end - self.start)


def lightning_rate(cfg, dm, trainer_kwargs, batches: int, skip: int, loader: DataLoader | None = None) -> float:
    module = build_module(cfg, dm)
    timer = Timer(skip)
    trainer_kwargs = {**trainer_kwargs, "max_epochs": 1, "deterministic": False, "limit_train_batches": batches,
                      "limit_val_batches": 0, "logger": False, "enable_checkpointing": False,
                      "enable_progress_bar": False, "enable_model_summary": False}
    trainer = pl.Trainer(**trainer_kwargs, callbacks=[timer])
    if loader is None:
        trainer.fit(module, datamodule=dm)
    else:
        trainer.fit(module, train_dataloaders=loader)
    return timer.rate


def plain_rate(cfg, dm, batches: int, skip: int) -> float:
    """The same network, optimizer and loader, driven by a hand-written loop."""
    module = build_module(cfg, dm)
    net = module.net.train()
    opt = module.configure_optimizers()  # scheduler=none: just the optimizer
    images, start = 0, None
    for i, (x, y) in enumerate(dm.train_dataloader()):
        if i == skip:
            start = time.perf_counter()
        if i >= skip:
            images += y.shape[0]
        if module.channels_last:  # model.channels_last
            x = x.contiguous(memory_format=torch.channels_last)
        loss = F.cross_entropy(net(module.normalize(x)), y)  # uint8 training batches, normalised as the module does
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i + 1 == batches:
            break
    return images / (time.perf_counter() - start)


def loops(cfg, batches: int, skip: int, rounds: int) -> None:
    """(b) Best of ``rounds`` alternating runs each, so a busy machine hurts both alike."""
    dm, trainer_kwargs = datamodule(cfg)
    light, plain = [], []
    for _ in range(rounds):
        plain.append(plain_rate(cfg, dm, batches, skip))
        light.append(lightning_rate(cfg, dm, trainer_kwargs, batches, skip))
    print(f"(b) training images/s, {cfg.model.name} at {dm.spec.image_size}px, batch {dm.batch_size}, "
          f"{dm.loader['num_workers']} workers: plain loop {max(plain):,.0f}, Lightning {max(light):,.0f}  ->  "
          f"ratio {max(light) / max(plain):.2f}x (target >= 0.95x)")


class InMemory(Dataset):
    """Pre-made normalised tensors: a data pipeline that costs nothing."""

    def __init__(self, n: int, size: int, classes: int):
        self.x = torch.randn(n, 3, size, size)
        self.y = torch.randint(0, classes, (n,))

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


def gpu(data: str, batches: int, skip: int, batch_size: int) -> None:
    """(c) ResNet-50, 224 px, trainer=gpu, 8 pinned-memory workers: real photos (cache + augment in the workers, or on the GPU)
    vs in-memory tensors."""
    overrides = ["data=folder", f"data.root={data}", "model=resnet50", "model.input_size=224", "trainer=gpu",
                 "data.num_workers=8", "data.pin_memory=true", f"data.batch_size={batch_size}", "scheduler=none"]
    cfg = config(overrides)
    dm, trainer_kwargs = datamodule(cfg)
    real = lightning_rate(cfg, dm, trainer_kwargs, batches, skip)
    on_gpu_cfg = config([*overrides, "data/augment=device"])
    on_gpu = lightning_rate(on_gpu_cfg, datamodule(on_gpu_cfg)[0], trainer_kwargs, batches, skip)
    fake = DataLoader(InMemory(batch_size * 8, 224, len(dm.classes)), batch_size=batch_size, shuffle=True,
                      drop_last=True, num_workers=2, pin_memory=True, persistent_workers=True)
    synthetic = lightning_rate(cfg, dm, trainer_kwargs, batches, skip, loader=fake)
    print(f"(c) {torch.cuda.get_device_name(0)}: ResNet-50 224px bf16-mixed, batch {batch_size}, "
          f"{dm.loader['num_workers']} workers: real data {real:,.0f} img/s, synthetic in-memory {synthetic:,.0f} img/s"
          f"  ->  ratio {real / synthetic:.2f}x (target >= 0.95x, >= 3,000 img/s on an H100)\n"
          f"    real data with data/augment=device (augmented on the GPU): {on_gpu:,.0f} img/s  ->  ratio {on_gpu / synthetic:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/asl_alphabet_room", help="a photo folder root/<LETTER>/")
    ap.add_argument("--images", type=int, default=2000, help="(a) images per measurement")
    ap.add_argument("--size", type=int, default=64, help="(a, b) model input side in pixels (224: the transfer backbones')")
    ap.add_argument("--skip-loops", action="store_true", help="measure (a) only")
    ap.add_argument("--batches", type=int, default=40, help="(b, c) training batches per measurement")
    ap.add_argument("--skip", type=int, default=5, help="(b, c) warm-up batches not timed")
    ap.add_argument("--rounds", type=int, default=2, help="(b) alternating repeats; the best counts")
    ap.add_argument("--gpu", action="store_true", help="also (c) on the GPU")
    ap.add_argument("--gpu-batch", type=int, default=256)
    ap.add_argument("--device-batch", type=int, default=256, help="(a) batch size of the augmentation on the device")
    a = ap.parse_args()
    if not Path(a.data).is_dir():
        raise SystemExit(f"--data: {a.data} is not a folder of photos (root/<LETTER>/<image>)")
    overrides = ["data=folder", f"data.root={a.data}", "model=small_cnn", f"model.input_size={a.size}", "trainer=cpu",
                 "logger=none", "scheduler=none"]
    cfg = config(overrides)
    torch.manual_seed(0)
    dm, idx = pipeline(cfg, a.images)
    for device in ["cpu", *(["cuda"] if a.gpu else [])]:
        device_route(overrides, dm, idx, device, a.device_batch)
    if not a.skip_loops:
        loops(cfg, a.batches, a.skip, a.rounds)
    if a.gpu:
        gpu(a.data, a.batches, a.skip, a.gpu_batch)


if __name__ == "__main__":
    main()

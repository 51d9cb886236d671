"""Parameters and training / inference images per second of every backbone, to plan a run.

    python experiments/backbones/bench.py                      # this CPU: 64, 128, 224 px, batch 32
    python experiments/backbones/bench.py --device cuda --sizes 64 224 --batch 128

Random tensors in memory (no data loading), a fresh 24-class head, full fine-tuning (all stages
train), channels-last. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import time

import torch

from asl.models import create_model

BACKBONES = ["small_cnn", "vgg16", "vgg16_bn", "resnet18", "resnet34", "resnet50"]


def images_per_second(model: torch.nn.Module, x: torch.Tensor, train: bool, min_seconds: float, min_steps: int) -> float:
    y = torch.randint(0, 24, (x.shape[0],), device=x.device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4) if train else None
    model.train(train)

    def step() -> None:
        with torch.set_grad_enabled(train), torch.autocast(x.device.type, torch.bfloat16, enabled=x.device.type == "cuda"):
            out = model(x)
            if train:
                loss = torch.nn.functional.cross_entropy(out.float(), y)
        if train:
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    step()  # warm-up (allocations, cudnn autotune)
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    sync()
    start, steps = time.perf_counter(), 0
    while steps < min_steps or time.perf_counter() - start < min_seconds:
        step()
        steps += 1
    sync()
    return steps * x.shape[0] / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=BACKBONES)
    p.add_argument("--sizes", nargs="+", type=int, default=[64, 128, 224])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--device", default="cpu")
    p.add_argument("--min-seconds", type=float, default=3.0, help="time each measurement at least this long")
    p.add_argument("--min-steps", type=int, default=2)
    args = p.parse_args()
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; batch {args.batch}; torch {torch.__version__}\n")
    cols = " | ".join(f"train {s}px | infer {s}px" for s in args.sizes)
    print(f"| backbone | params (M) | {cols} |")
    print("|---|---:|" + "---:|" * (2 * len(args.sizes)))
    for m in args.models:
        cells = []
        params = None
        for s in args.sizes:
            model = create_model(m, 24, input_size=s).to(device, memory_format=torch.channels_last)
            params = sum(p.numel() for p in model.parameters()) / 1e6
            x = torch.randn(args.batch, 3, s, s, device=device).contiguous(memory_format=torch.channels_last)
            for train in (True, False):
                cells.append(f"{images_per_second(model, x, train, args.min_seconds, args.min_steps):,.0f}")
            del model, x
        print(f"| {m} | {params:.1f} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()

"""``asl-predict ckpt_path=<.ckpt | .onnx | .pt> inputs=<image | folder | glob>``: top-3 letters per photo, optional CSV."""

import torch
from omegaconf import DictConfig, ListConfig

from asl import ASLError
from asl.cli import command
from asl.runs.predict import collect_inputs, load_predictor, predict_files, write_csv


@command("predict")
def main(cfg: DictConfig) -> None:
    cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    model = load_predictor(cfg.ckpt_path, "cuda" if cuda else "cpu")  # exported files run on the CPU
    inputs = list(cfg.inputs) if isinstance(cfg.inputs, ListConfig) else str(cfg.inputs)
    paths = collect_inputs(inputs)
    rows = predict_files(model, paths, cfg.top_k, cfg.batch_size, cfg.cache_dir, cfg.draw)
    for r in rows:
        if "error" in r:
            print(f"{r['file']}: ERROR {r['error']}")
        else:
            hand = "" if r.get("hand", True) else "  (no hand found: whole photo)"
            print(f"{r['file']}: " + "  ".join(f"{letter} {p:.3f}" for letter, p in r["top"]) + hand)
    if cfg.draw:
        print(f"drawings of the detected hands: {cfg.draw}/")
    if cfg.csv:
        write_csv(rows, cfg.csv, cfg.top_k)
        print(f"wrote {cfg.csv}")
    failed = sum("error" in r for r in rows)
    if failed == len(rows):
        raise ASLError(f"inputs: none of the {len(rows)} file(s) could be read (listed above)")
    if failed:
        print(f"{failed} of {len(rows)} file(s) could not be read (listed above)")


if __name__ == "__main__":
    main()

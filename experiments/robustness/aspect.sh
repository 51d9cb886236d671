#!/usr/bin/env bash
# Non-square photos: the landmark MLP trained on massey's square photos (unseen-signer split), tested on
# the unseen signer's 240 photos as they are (re-saved) and padded with black to 4:3 (wide) and 3:4
# (tall): the same hands, other frames. Before the fix a 4:3 frame stretched the landmarks 4:3.
#
#   experiments/robustness/aspect.sh                 # this code (landmarks in pixel-true proportions)
#   BEFORE=/path/to/checkout-of-d14940a experiments/robustness/aspect.sh   # also the code before the fix
#
# BEFORE: a checkout of the commit before the fix (git worktree add --detach /tmp/before d14940a); its
# asl-eval runs with that checkout first on the import path (the installed package is editable).
# Env: DATA, OUT (runs), PADDED (the padded copies, outside the project), SEEDS; SKIP_TRAIN=1 / SKIP_AFTER=1
# reuse the runs / the evaluations with this code already in OUT.
set -euo pipefail
DATA=${DATA:-../shared/data}
OUT=${OUT:-experiments/robustness/runs/aspect}
PADDED=${PADDED:-/tmp/asl-aspect}
SEEDS=${SEEDS:-0,1,2}
BEFORE=${BEFORE:-}
M=$DATA/asl_massey_black
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

for aspect in 1:1 4:3 3:4; do
  [ -d "$PADDED/${aspect/:/x}" ] || python experiments/robustness/pad_photos.py "$M" "$PADDED/${aspect/:/x}" --aspect $aspect --match hand5_
done
[ -n "${SKIP_TRAIN:-}" ] || asl-train -m model=landmark_mlp data=folder data.root=$M "data.split.group_by='(hand\d+)_'" \
  'data.split.group_assign={val:[hand4],test:[hand5]}' data.no_hand=drop data.batch_size=128 trainer.max_epochs=40 \
  trainer=cpu data.audit=false data.num_workers=0 logger=none callbacks.lr_monitor=null seed=$SEEDS \
  hydra.sweep.dir=$OUT 'hydra.sweep.subdir=${hydra.job.num}'

evaluate() {  # $1: label, then asl-eval's own arguments
  local label=$1; shift
  for run in "$OUT"/*/; do
    for aspect in 1x1 4x3 3x4; do
      "$@" "ckpt_path='${run}checkpoints/best.ckpt'" data.root=$PADDED/$aspect "output_dir='${run}aspect/$label/$aspect'" \
        data.num_workers=0 > /dev/null
    done
  done
}
[ -n "${SKIP_AFTER:-}" ] || evaluate after asl-eval
if [ -n "$BEFORE" ]; then
  site=$(mktemp -d)  # put the old checkout before the editable install on the import path
  printf 'import sys\nsys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f)]\nsys.path.insert(0, "%s")\n' \
    "$(cd "$BEFORE" && pwd)" > "$site/sitecustomize.py"
  evaluate before env PYTHONPATH="$site" asl-eval
fi
python - "$OUT" <<'PY'
import json, statistics, sys
from pathlib import Path
runs = sorted(p for p in Path(sys.argv[1]).iterdir() if (p / "aspect").is_dir())
print("| code | frame | accuracy over all 240 photos % (no hand = wrong) | with a hand % | photos without a hand |")
print("|---|---|---|---|---|")
for label in ("before", "after"):
    for aspect in ("1x1", "4x3", "3x4"):
        ms = [json.loads(f.read_text()) for r in runs if (f := r / "aspect" / label / aspect / "metrics.json").exists()]
        if not ms:
            continue
        # the code before the fix reports test/acc over the photos with a hand only
        acc = [m.get("test/acc_all_photos", m["test/acc"] * m["num_images"] / 240) for m in ms]
        hand = [m.get("test/acc_with_hand", m["test/acc"]) for m in ms]
        cell = lambda v: f"{100 * statistics.mean(v):.1f} ± {100 * statistics.stdev(v):.1f}" if len(v) > 1 else f"{100 * v[0]:.1f}"
        print(f"| {label} | {aspect.replace('x', ':')} | {cell(acc)} | {cell(hand)} | {240 - ms[0]['num_images']} |")
PY

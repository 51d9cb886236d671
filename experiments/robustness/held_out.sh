#!/usr/bin/env bash
# Does self-training carry to photos of the new setting it never saw? Each robust_best run of the two transfers
# (run.sh's runs) adapts to one part of the other set (asl-eval adapt_bn=true self_train=..., labels unused) and
# is then scored, as saved (self_trained.ckpt, no further adaptation), on the other part: room frames of the
# second half of each letter's video after adapting to the first half; massey's signers 4-5 after adapting to
# signers 1-3 (experiments/robustness/halves.py). Also the unadapted model on the same photos.
#
#   ROWS=robust_best experiments/robustness/run.sh && experiments/robustness/held_out.sh
#
# Env: DATA, OUT (run.sh's), PARTS (where the symlinked parts go), SELF_TRAIN. Writes <run>/held_out/*/metrics.json.
set -euo pipefail
OUT=${OUT:-experiments/robustness/runs}
PARTS=${PARTS:-/tmp/asl_held_out}
SELF_TRAIN=${SELF_TRAIN:-"[0.3,0.6,0.9]"}
source experiments/setups.sh   # DATA, M, R, the detector caches
python experiments/robustness/halves.py "$M" "$R" "$PARTS"
for setup in massey2room room2massey; do
  case $setup in
    massey2room) adapt=$PARTS/room_early; score=$PARTS/room_late ;;
    room2massey) adapt=$PARTS/massey_hand123; score=$PARTS/massey_hand45 ;;
  esac
  for run in "$OUT/robust_best/$setup"/*/; do
    asl-eval "ckpt_path='${run}checkpoints/best.ckpt'" data.root=$score "output_dir='${run}held_out/unadapted'" \
      data.num_workers=0 > /dev/null
    asl-eval "ckpt_path='${run}checkpoints/best.ckpt'" data.root=$adapt adapt_bn=true "self_train=$SELF_TRAIN" \
      "output_dir='${run}held_out/adapting'" data.num_workers=0 > /dev/null
    asl-eval "ckpt_path='${run}held_out/adapting/self_trained.ckpt'" data.root=$score \
      "output_dir='${run}held_out/self_trained'" data.num_workers=0 > /dev/null
  done
done
python - "$OUT" <<'PY'
import json, statistics, sys
from pathlib import Path
print("| transfer | scored on | unadapted | self-trained on the other part, then scored as saved |")
print("|---|---|---|---|")
for setup, part in (("massey2room", "room, second half of each letter's frames"), ("room2massey", "massey, signers 4-5")):
    cells = []
    for kind in ("unadapted", "self_trained"):
        v = [json.loads(p.read_text())["test/acc_all_photos"] for p in sorted(Path(sys.argv[1], "robust_best", setup).glob(f"*/held_out/{kind}/metrics.json"))]
        cells.append(f"{100 * statistics.mean(v):.1f} ± {100 * statistics.stdev(v):.1f} ({len(v)} seeds)" if len(v) > 1 else "–")
    print(f"| {setup} | {part} | {' | '.join(cells)} |")
PY

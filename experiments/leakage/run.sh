#!/usr/bin/env bash
# Small CNN test accuracy on a random per-class split vs the deduplicated split, both real sets.
# 2 sets x 2 splits x SEEDS runs. Env: DATA TRAINER SEEDS EPOCHS OUT SETS (see experiments/leakage/README.md).
set -euo pipefail
DATA=${DATA:-../shared/data}
TRAINER=${TRAINER:-cpu}
SEEDS=${SEEDS:-0,1,2}
EPOCHS=${EPOCHS:-15}
OUT=${OUT:-experiments/leakage/runs}
SETS=${SETS:-asl_massey_black asl_alphabet_room}
EXTRA=${EXTRA:-}             # more overrides, e.g. "data.num_workers=2"
# trainer=gpu no longer sets the loader (data.*): its old loader settings, so TRAINER=gpu runs stay as measured
LOADER=""; if [ "$TRAINER" = gpu ]; then LOADER="data.num_workers=8 data.pin_memory=true"; fi
for set in $SETS; do
  # shellcheck disable=SC2086
  asl-train -m data=folder "data.root=$DATA/$set" model=small_cnn model.input_size=64 "trainer=$TRAINER" \
    "trainer.max_epochs=$EPOCHS" "seed=$SEEDS" data.split.dedupe=false,true $LOADER $EXTRA \
    "hydra.sweep.dir=$OUT/$set"
done
python experiments/leakage/leak_rates.py "$DATA"
python experiments/leakage/summarize.py "$OUT"

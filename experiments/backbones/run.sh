#!/usr/bin/env bash
# Scratch comparison: small CNN vs ResNet-18 from scratch, >= 3 seeds, on
#  (1) asl_alphabet_room, per-class fractions split 0.5/0.25/0.25, and
#  (2) asl_massey_black, unseen signer: train hand1-3, validate hand4, test hand5.
# Usage (from the repo root, .venv/bin on PATH):
#   bash experiments/backbones/run.sh                       # CPU
#   TRAINER=gpu DATA=/data bash experiments/backbones/run.sh
# Then: asl-compare $OUT/room $OUT/massey
set -euo pipefail
DATA=${DATA:-../shared/data}
TRAINER=${TRAINER:-cpu}
SEEDS=${SEEDS:-0,1,2}
EPOCHS=${EPOCHS:-15}
SIZE=${SIZE:-64}
OUT=${OUT:-experiments/backbones/runs}
EXTRA=${EXTRA:-}             # more overrides, e.g. "data.num_workers=2"
# trainer=gpu no longer sets the loader (data.*): its old loader settings, so TRAINER=gpu runs stay as measured
LOADER=""; if [ "$TRAINER" = gpu ]; then LOADER="data.num_workers=8 data.pin_memory=true"; fi
# shellcheck disable=SC2206
common=(-m trainer="$TRAINER" trainer.max_epochs="$EPOCHS" seed="$SEEDS" model=small_cnn,resnet18
        model.input_size="$SIZE" data=folder $LOADER $EXTRA)
asl-train "${common[@]}" data.root="$DATA/asl_alphabet_room" hydra.sweep.dir="$OUT/room"
asl-train "${common[@]}" data.root="$DATA/asl_massey_black" "data.split.group_by='(hand\d+)_'" \
  'data.split.group_assign={val:[hand4],test:[hand5]}' hydra.sweep.dir="$OUT/massey"

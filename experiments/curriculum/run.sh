#!/usr/bin/env bash
# Curriculum (5 letters first, then all 24) against all 24 at once, at equal budgets of training
# images (experiment=curriculum_vs_all), over seeds, on the real photos; then asl-compare per sweep.
#   experiments/curriculum/run.sh                                  # CPU defaults
#   TRAINER=gpu EPOCHS=30 SEEDS=0,1,2,3,4 MODELS=small_cnn,resnet18 experiments/curriculum/run.sh
# Env: DATA (folder with asl_massey_black/ and asl_alphabet_room/), TRAINER (cpu|gpu), SEEDS, EPOCHS
# (passes over all training images = the budget), OUT (multirun root), SIZE (px), MODELS (comma list),
# SETS (which data sets: massey and/or room).
set -euo pipefail
DATA=${DATA:-../shared/data}
TRAINER=${TRAINER:-cpu}
SEEDS=${SEEDS:-0,1,2}
EPOCHS=${EPOCHS:-20}
OUT=${OUT:-experiments/curriculum/runs}
SIZE=${SIZE:-48}
MODELS=${MODELS:-small_cnn}
SETS=${SETS:-massey room}
EXTRA=${EXTRA:-}             # more overrides, e.g. "data.num_workers=2"
# trainer=gpu no longer sets the loader (data.*): its old loader settings, so TRAINER=gpu runs stay as measured
LOADER=""; if [ "$TRAINER" = gpu ]; then LOADER="data.num_workers=8 data.pin_memory=true"; fi

common=(experiment=curriculum_vs_all data=folder "model=$MODELS" "model.input_size=$SIZE" "trainer=$TRAINER"
        "trainer.max_epochs=$EPOCHS" "seed=$SEEDS" $LOADER $EXTRA)

for set in $SETS; do
  case $set in
    massey)  # unseen signer: train hand1-3, validate on hand4, test on hand5
      asl-train -m "${common[@]}" "data.root=$DATA/asl_massey_black" "data.split.group_by='(hand\d+)_'" \
        'data.split.group_assign={val:[hand4],test:[hand5]}' "hydra.sweep.dir=$OUT/massey_unseen_signer" ;;
    room)    # one signer, random 50/25/25 split (near-duplicate frames: optimistic, but shows learning speed)
      asl-train -m "${common[@]}" "data.root=$DATA/asl_alphabet_room" "hydra.sweep.dir=$OUT/room" ;;
    *) echo "SETS: unknown set '$set' (massey, room)" >&2; exit 2 ;;
  esac
done
for set in $SETS; do
  case $set in massey) dir=$OUT/massey_unseen_signer ;; room) dir=$OUT/room ;; esac
  # the difference of all at once from the curriculum, paired by seed (one model: settings named by curriculum= alone)
  base=(); [[ $MODELS == *,* ]] || base=(--baseline curriculum=five_then_all)
  asl-compare "$dir" "${base[@]}" --metrics test/acc test/f1_macro best_val_acc fit_seconds
done

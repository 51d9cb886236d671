#!/usr/bin/env bash
# Find the hand first: each model row on both transfers (massey → room, room → massey; every photo of
# the other set is test, misses counted wrong) and on massey's unseen-signer split (train hand1-3,
# val hand4, test hand5). Then experiments/hands/summarise.py prints the table.
#
#   experiments/hands/run.sh                                  # all rows, 3 seeds, on this machine
#   ROWS=landmark_mlp SEEDS=0,1,2 experiments/hands/run.sh    # one row
#
# Rows that need hands (all but cnn) need mediapipe or a filled detector cache
# (asl-prepare hands data.root=...): run them where the cache is. Row "cnn" needs no detector.
# Env: DATA (holds asl_alphabet_room/ and asl_massey_black/), TRAINER (cpu|gpu), SEEDS, EPOCHS (image
# models), LM_EPOCHS (landmark MLP), FT_EPOCHS (fusion_from_runs), OUT (multirun root), ROWS, SETUPS,
# EXTRA (more overrides for every training run, e.g. "data.num_workers=0").
set -euo pipefail
DATA=${DATA:-../shared/data}
TRAINER=${TRAINER:-cpu}
SEEDS=${SEEDS:-0,1,2}
EPOCHS=${EPOCHS:-8}
FT_EPOCHS=${FT_EPOCHS:-3}  # fusion_from_runs: joint fine-tuning after loading both branches
LM_EPOCHS=${LM_EPOCHS:-40}  # the room2massey figures below used 15 (val acc saturates by then)
OUT=${OUT:-experiments/hands/runs}
EXTRA=${EXTRA:-}
# trainer=gpu no longer sets the loader (data.*): its old loader settings, so TRAINER=gpu runs stay as measured
LOADER=""; if [ "$TRAINER" = gpu ]; then LOADER="data.num_workers=8 data.pin_memory=true"; fi
ROWS=${ROWS:-"landmark_mlp landmark_mlp_tilt cnn_crop cnn_crop_blank cnn_crop_bg cnn_crop_bg_relight cnn_crop_best cnn_crop_bg_photo fusion_from_runs fusion_best_from_runs fusion cnn"}
SETUPS=${SETUPS:-"massey2room room2massey signer"}
CROP_BG="data/background=procedural_inplace data.masks=key_black"  # new backgrounds behind the crop's keyed-out hand
M=$DATA/asl_massey_black
R=$DATA/asl_alphabet_room

row_args() {
  case $1 in
    landmark_mlp) echo "model=landmark_mlp data.no_hand=drop data.batch_size=128 trainer.max_epochs=$LM_EPOCHS" ;;
    landmark_mlp_tilt) echo "$(row_args landmark_mlp) model.augment.tilt=30" ;;  # + out-of-plane rotation
    cnn) echo "model=small_cnn model.input_size=48 trainer.max_epochs=$EPOCHS" ;;
    cnn_crop) echo "model=small_cnn model.input_size=48 data.hand_crop=true trainer.max_epochs=$EPOCHS" ;;
    # hand crops whose black backdrop (key_black masks) is replaced by procedural backgrounds, hand kept in place
    cnn_crop_bg) echo "$(row_args cnn_crop) $CROP_BG" ;;
    # ... with the hand alone relit, from a back-lit silhouette to a bright hand, and desaturated
    cnn_crop_bg_relight) echo "$(row_args cnn_crop_bg) data.background.hand_brightness=[0.12,1.3] data.background.hand_saturation=[0.2,1.2]" ;;
    # the preset: cnn_crop_bg_relight + viewpoint changes (data/augment=viewpoint)
    cnn_crop_best) echo "model=small_cnn model.input_size=48 experiment=background_best data.masks=key_black trainer.max_epochs=$EPOCHS" ;;
    # hand crops painted the mean colour outside the hand's widened landmark hull (train and test: no room left)
    cnn_crop_blank) echo "$(row_args cnn_crop) data.hand_blank=0.1" ;;
    # ... plus strong lighting/colour/blur/noise/JPEG changes (data/augment=photometric)
    cnn_crop_bg_photo) echo "$(row_args cnn_crop_bg) data/augment=photometric" ;;
    fusion) echo "model=fusion model.input_size=48 data.hand_crop=true trainer.max_epochs=$EPOCHS" ;;
    # rows cnn_crop_bg (room2massey: cnn_crop) and landmark_mlp, same setup and seed (run them first),
    # fused and fine-tuned together for FT_EPOCHS
    fusion_from_runs)
      local img=cnn_crop_bg bg=$CROP_BG
      [ "$setup" = room2massey ] && img=cnn_crop bg=""
      echo "model=fusion model.input_size=48 data.hand_crop=true $bg trainer.max_epochs=$FT_EPOCHS \
        model.from_checkpoints.image=$OUT/$img/$setup/\${seed}/checkpoints/best.ckpt \
        model.from_checkpoints.landmarks=$OUT/landmark_mlp/$setup/\${seed}/checkpoints/best.ckpt" ;;
    # the same with the best crop CNN (row cnn_crop_best, run first), fine-tuned with its recipe
    fusion_best_from_runs)
      echo "model=fusion model.input_size=48 experiment=background_best data.masks=key_black background_shift=false trainer.max_epochs=$FT_EPOCHS \
        model.from_checkpoints.image=$OUT/cnn_crop_best/$setup/\${seed}/checkpoints/best.ckpt \
        model.from_checkpoints.landmarks=$OUT/landmark_mlp/$setup/\${seed}/checkpoints/best.ckpt" ;;
    *) echo "unknown row $1" >&2; exit 2 ;;
  esac
}

for row in $ROWS; do
  for setup in $SETUPS; do
    case $row:$setup in  # room photos have no plain backdrop to key out
      cnn_crop_bg*:room2massey | cnn_crop_best:room2massey | fusion_best_from_runs:room2massey) continue ;;
    esac
    case $setup in
      massey2room) train=$M; test=$R; split="data.split.fractions=[0.8,0.1,0.1]" ;;
      room2massey) train=$R; test=$M; split="data.split.fractions=[0.8,0.1,0.1]" ;;
      signer) train=$M; test=""; split="data.split.group_by='(hand\d+)_' data.split.group_assign={val:[hand4],test:[hand5]}" ;;
      *) echo "unknown setup $setup" >&2; exit 2 ;;
    esac
    dir=$OUT/$row/$setup
    # shellcheck disable=SC2046,SC2086
    asl-train -m data=folder data.root=$train $split $(row_args $row) trainer=$TRAINER \
      data.audit=false logger=none callbacks.lr_monitor=null seed=$SEEDS hydra.sweep.dir=$dir \
      'hydra.sweep.subdir=${hydra.job.num}' $LOADER $EXTRA
    if [ -n "$test" ]; then
      for run in "$dir"/*/; do
        asl-eval "ckpt_path='${run}checkpoints/best.ckpt'" data.root=$test "output_dir='${run}transfer'" data.num_workers=0
      done
    fi
  done
done
python experiments/hands/summarise.py "$OUT"

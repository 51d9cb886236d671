#!/usr/bin/env bash
# Pilot of the transfer table (issue 16): frozen ImageNet backbones with a linear head on hand crops.
# Only the cheap rows on a CPU: model.cache_features=auto computes each image's frozen feature map once
# (first seed), and every later seed trains the linear head on the cached features.
#
#   experiments/transfer/run.sh                                         # 2 rows x 3 set-ups x 3 seeds
#   ROWS=mobilenet_v2 SETUPS=signer SEEDS=0 experiments/transfer/run.sh # one cell, one seed
#
# Set-ups: signer (massey: train hand1-3, val hand4, test hand5), massey2room (massey 80/10/10, then
# every photo of asl_alphabet_room via +eval_sets.room), room2massey (the reverse, +eval_sets.massey).
# Needs the filled detector cache (asl-prepare hands data.root=..., below) or mediapipe.
# Env: DATA (holds asl_massey_black/ and asl_alphabet_room/), WEIGHTS (holds the MobileNetV2 file),
# OUT (multirun root), ROWS, SETUPS, SEEDS, EPOCHS, LR, EXTRA (more overrides for every run).
# Run from the repository root; then experiments/transfer/summarise.py "$OUT" prints the table.
set -euo pipefail
DATA=${DATA:-../shared/data}
WEIGHTS=${WEIGHTS:-../shared/weights}
OUT=${OUT:-experiments/transfer/runs/pilot}
ROWS=${ROWS:-"mobilenet_v2 efficientnet_lite0"}
SETUPS=${SETUPS:-"signer massey2room room2massey"}
SEEDS=${SEEDS:-0,1,2}
EPOCHS=${EPOCHS:-30}   # a linear probe on fixed features: val accuracy is flat after ~10 epochs
LR=${LR:-0.01}         # AdamW, cosine to zero; 5x the default 0.002 (meant for whole networks): only a 1280->24 layer trains
EXTRA=${EXTRA:-}
M=$DATA/asl_massey_black
R=$DATA/asl_alphabet_room
# One torch thread per process: on this shared 2-core machine, 2 threads made a head step ~18x slower
# (29 ms vs 1.6 ms) and the backbone's forward pass 1.8x slower while another job used the CPU.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

# Detect the hand in every photo once (fills .cache/asl/hands-*.json, prints the detection rate and
# writes the per-class rates beside the cache). Skipped when the cache already holds every photo.
asl-prepare hands data.root=$M
asl-prepare hands data.root=$R

# What every run shares: frozen backbone (trainable_stages=0), linear head, 128 px hand crops, no
# training augmentation (data.train_transforms=[]: otherwise cache_features declines and the backbone
# runs on every image every epoch; data.eval_transforms is [] by default), photos without a detected
# hand kept whole (data.no_hand=keep, the default), no data audit, no TensorBoard.
COMMON=(model.trainable_stages=0 model.head.type=linear model.input_size=128 model.cache_features=auto
  data.hand_crop=true 'data.train_transforms=[]' data.no_hand=keep data.audit=false data.num_workers=0
  trainer=cpu trainer.max_epochs=$EPOCHS optimizer.lr=$LR logger=none callbacks.lr_monitor=null)

for row in $ROWS; do
  case $row in
    mobilenet_v2) MODEL=(model=mobilenet_v2 model.weights_path=$WEIGHTS/mobilenet_v2_imagenet_bnfolded.pth) ;;
    efficientnet_lite0) MODEL=(model=efficientnet_lite0 model.pretrained=imagenet) ;;
    *) echo "unknown row $row" >&2; exit 2 ;;
  esac
  for setup in $SETUPS; do
    case $setup in
      signer) SETUP=(data=folder data.root=$M "data.split.group_by='(hand\d+)_'"
                     'data.split.group_assign={val:[hand4],test:[hand5]}') ;;
      massey2room) SETUP=(data=folder data.root=$M 'data.split.fractions=[0.8,0.1,0.1]' +eval_sets.room=$R) ;;
      room2massey) SETUP=(data=folder data.root=$R 'data.split.fractions=[0.8,0.1,0.1]' +eval_sets.massey=$M) ;;
      *) echo "unknown setup $setup" >&2; exit 2 ;;
    esac
    dir=$OUT/$row/$setup
    # shellcheck disable=SC2086
    asl-train -m "${MODEL[@]}" "${SETUP[@]}" "${COMMON[@]}" seed=$SEEDS hydra.sweep.dir=$dir \
      'hydra.sweep.subdir=${hydra.job.num}' $EXTRA
    # the cache must have been used: otherwise the rows measure something else
    for log in "$dir"/*/train.log; do
      grep -q "the head trains on cached frozen features" "$log" || { echo "cache_features not used: $log" >&2; exit 1; }
    done
    case $setup in
      signer) metrics=(test/acc test/f1_macro fit_seconds) ;;
      massey2room) metrics=(eval/room/acc eval/room/f1_macro test/acc fit_seconds) ;;
      room2massey) metrics=(eval/massey/acc eval/massey/f1_macro test/acc fit_seconds) ;;
    esac
    asl-compare "$dir" --metrics "${metrics[@]}"   # mean ± sample std over the seeds → $dir/compare.md
  done
done
# The table: mean ± std per row x set-up, also with photos without a detected hand counted wrong,
# and the time per run (feature computation, fit, eval).
python experiments/transfer/summarise.py "$OUT"

#!/usr/bin/env bash
# The transfer table (issue 16) on hand crops: frozen probes, fine-tuning and scratch rows.
#
#   experiments/transfer/run.sh                                             # every row x 3 set-ups x 3 seeds
#   ROWS="mobilenet_v2 efficientnet_lite0" experiments/transfer/run.sh      # the frozen pilot (17 min here)
#   ROWS=mnv2_last2 SETUPS=signer SEEDS=0 experiments/transfer/run.sh       # one cell, one seed
#
# Rows: mobilenet_v2, efficientnet_lite0 (frozen, linear head, 30 epochs at lr 0.01 on cached features);
# mnv2_last1, mnv2_last2, mnv2_all (MobileNetV2 pretrained, last 1 / last 2 / all stages trainable),
# mnv2_gradual (frozen, then the last 1, 2, all stages from epochs 2, 4, 6), effnet_last2 (EfficientNet-Lite0
# pretrained, last 2 stages trainable: the best MobileNetV2 setting), mnv2_last2_blank (mnv2_last2 on crops
# blanked outside the hand's landmark hull, data.hand_blank=0.1: issue 19's "image branch sees only the hand"),
# mnv2_last2_recal (mnv2_last2 with the folded batch norms re-expressed and trained with batch statistics,
# model.pretrained_bn=recalibrate, the backbone at the full rate: the other remedy docs/transfer.md names),
# mnv2_last2_recal_blank (both: recalibrated batch norms on blanked crops),
# mnv2_scratch (MobileNetV2, random weights), small_cnn (the project's scratch CNN): 10 epochs at lr 0.002, and
# every other pretrained fine-tuning row with model.backbone_lr_mult=0.1 (at 1.0 with the batch norms left
# folded the weights collapse to chance: experiments/transfer/README.md).
# Set-ups (experiments/setups.sh): signer, massey2room, room2massey.
# Needs the filled detector cache (asl-prepare hands data.root=..., run by setups.sh) or mediapipe.
# Env: DATA, SEEDS, EXTRA (experiments/setups.sh), WEIGHTS (holds the MobileNetV2 file), OUT (multirun root),
# ROWS, SETUPS.
# Run from the repository root; then experiments/transfer/summarise.py "$OUT" prints the table.
set -euo pipefail
WEIGHTS=${WEIGHTS:-../shared/weights}
OUT=${OUT:-experiments/transfer/runs/pilot}
ROWS=${ROWS:-"mobilenet_v2 efficientnet_lite0 mnv2_last1 mnv2_last2 mnv2_all mnv2_gradual effnet_last2 mnv2_last2_blank
  mnv2_last2_recal mnv2_last2_recal_blank mnv2_scratch small_cnn"}
SETUPS=${SETUPS:-"signer massey2room room2massey"}
source experiments/setups.sh   # DATA, SEEDS, EXTRA, M, R, the detector caches, setup_args

# What every run shares: linear head, 128 px hand crops, no training augmentation (data.train_transforms=[]:
# the frozen rows need it for cache_features, and the other rows keep it so that only the training of the
# backbone differs; data.eval_transforms is [] by default), photos without a detected hand kept whole
# (data.no_hand=keep, the default), no data audit, no TensorBoard.
COMMON=(model.head.type=linear model.input_size=128 data.hand_crop=true 'data.train_transforms=[]'
  data.no_hand=keep data.audit=false data.num_workers=0 trainer=cpu logger=none callbacks.lr_monitor=null)
MNV2=(model=mobilenet_v2 model.weights_path=$WEIGHTS/mobilenet_v2_imagenet_bnfolded.pth)
# A linear probe on fixed features: val accuracy is flat after ~10 epochs; lr 5x the default 0.002 (meant
# for whole networks), as only a 1280->24 layer trains.
FROZEN=(model.trainable_stages=0 model.cache_features=auto trainer.max_epochs=30 optimizer.lr=0.01)
# Networks that train: 10 epochs (a CPU budget), the default AdamW lr 0.002, cosine to zero.
TRAINED=(trainer.max_epochs=10 optimizer.lr=0.002)
FINE=("${MNV2[@]}" "${TRAINED[@]}" model.backbone_lr_mult=0.1)
# The other remedy for the folded batch norms: recalibrated, trained with batch statistics, backbone at the full rate.
RECAL=("${MNV2[@]}" "${TRAINED[@]}" model.pretrained_bn=recalibrate)

for row in $ROWS; do
  case $row in
    mobilenet_v2) MODEL=("${MNV2[@]}" "${FROZEN[@]}") ;;
    efficientnet_lite0) MODEL=(model=efficientnet_lite0 model.pretrained=imagenet "${FROZEN[@]}") ;;
    mnv2_last1) MODEL=("${FINE[@]}" model.trainable_stages=1) ;;
    mnv2_last2) MODEL=("${FINE[@]}" model.trainable_stages=2) ;;
    mnv2_last2_blank) MODEL=("${FINE[@]}" model.trainable_stages=2 data.hand_blank=0.1) ;;
    mnv2_last2_recal) MODEL=("${RECAL[@]}" model.trainable_stages=2) ;;
    mnv2_last2_recal_blank) MODEL=("${RECAL[@]}" model.trainable_stages=2 data.hand_blank=0.1) ;;
    mnv2_all) MODEL=("${FINE[@]}" model.trainable_stages=all) ;;
    mnv2_gradual) MODEL=("${FINE[@]}" model.trainable_stages=0 'model.unfreeze_at_epoch={0:0,2:1,4:2,6:all}') ;;
    effnet_last2) MODEL=(model=efficientnet_lite0 model.pretrained=imagenet "${TRAINED[@]}" model.backbone_lr_mult=0.1
                        model.trainable_stages=2) ;;
    mnv2_scratch) MODEL=(model=mobilenet_v2 "${TRAINED[@]}") ;;
    small_cnn) MODEL=(model=small_cnn "${TRAINED[@]}") ;;
    *) echo "unknown row $row" >&2; exit 2 ;;
  esac
  for setup in $SETUPS; do
    setup_args $setup
    dir=$OUT/$row/$setup
    # shellcheck disable=SC2086
    asl-train -m "${MODEL[@]}" "${SETUP[@]}" "${COMMON[@]}" seed=$SEEDS hydra.sweep.dir=$dir \
      'hydra.sweep.subdir=${hydra.job.num}' $EXTRA
    # a frozen row must have used the cache: otherwise it measures something else
    case $row in mobilenet_v2|efficientnet_lite0)
      for log in "$dir"/*/train.log; do
        grep -q "the head trains on cached frozen features" "$log" || { echo "cache_features not used: $log" >&2; exit 1; }
      done ;;
    esac
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

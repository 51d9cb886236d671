#!/usr/bin/env bash
# Question 3: which landmark recipe holds up in a new room and on a new person. Each row on the three
# leave-one-set-out set-ups (two shared sets as one folder -> every photo of the third) and massey's unseen
# signer (train hand1-3, val hand4, test hand5), 3 seeds (issue 26; issue 19's rows ran on the two transfers
# massey2room, room2massey: SETUPS="massey2room room2massey signer"); scored over ALL photos, a photo without
# a detected hand counted wrong (metrics.json: test/acc_all_photos, eval/<set>/acc_all_photos). Rows are
# chosen by the mean of the set-ups, never by one.
#
#   ROWS="robust_best robust_palm robust_handedness" experiments/robustness/run.sh   # the preset and the two before it
#   ROWS=lm_pose SETUPS=signer SEEDS=0 experiments/robustness/run.sh
#   python experiments/robustness/summarise.py             # the tables
#
# Needs the filled detector cache (asl-prepare hands data.root=..., run by setups.sh and below) or mediapipe.
# Set-ups: experiments/setups.sh. Env: DATA, SEEDS, EXTRA (experiments/setups.sh), OUT, ROWS, SETUPS,
# SELF_TRAIN_ROWS (rows also scored after self-training; default "robust_best robust_palm"), SELF_TRAIN (its shares per round),
# SELF_TRAIN_BN (with AdaBN and/or without: "true false").
set -euo pipefail
OUT=${OUT:-experiments/robustness/runs}
ROWS=${ROWS:-"lm_base lm_pose lm_strong_aug lm_noz lm_pad05 robust_best robust_palm robust_handedness robust_tilt45 robust_tilt90 robust_no_aug robust_no_coords robust_no_distances robust_no_angles"}
SETUPS=${SETUPS:-"to_grey to_room to_massey signer"}
SELF_TRAIN_ROWS=${SELF_TRAIN_ROWS:-"robust_best robust_palm"}
SELF_TRAIN=${SELF_TRAIN:-"[0.3,0.6,0.9]"}   # three rounds: 30 %, 60 %, 90 % of each pseudo-label (chosen a priori)
SELF_TRAIN_BN=${SELF_TRAIN_BN:-"true"}      # "true false": also self-trained without AdaBN (its ablation)
SELF_TRAIN_LABELS=${SELF_TRAIN_LABELS:-"balanced"}  # "balanced confident": also with issue 19's per-predicted-letter quota
source experiments/setups.sh   # DATA, SEEDS, EXTRA, M, R, G, the detector caches, setup_args
case " $ROWS " in *" lm_pad05 "*)   # row lm_pad05's detector settings (a cache of their own)
  asl-prepare hands data.root=$M data.hands.padding=0.5
  asl-prepare hands data.root=$R data.hands.padding=0.5 ;;
esac

POSE="[coords,distances,angles,canonical,orientation,distances3d]"
for row in $ROWS; do
  case $row in
    lm_base) MODEL=(model=landmark_mlp) ;;                                   # image landmarks: coords, 2-D distances, angles
    lm_pose) MODEL=(model=landmark_mlp "model.features=$POSE") ;;            # + the hand in its palm's 3-D frame (world landmarks)
    # twice the default landmark augmentation: rotation, scale, jitter and finger lengths
    lm_strong_aug) MODEL=(model=landmark_mlp model.augment.rotate=20 model.augment.scale=0.2 model.augment.jitter=0.04
                          model.augment.finger_length=0.2) ;;
    lm_noz) MODEL=(model=landmark_mlp model.use_z=false) ;;                  # without MediaPipe's relative depth
    lm_pad05) MODEL=(model=landmark_mlp data.hands.padding=0.5) ;;          # the detector sees twice the black border
    # the preset (asl/conf/experiment/robust_best.yaml: lm_base's recipe, scored with and without AdaBN), then
    # its ablation: each ingredient removed in turn (AdaBN's: the columns without it)
    robust_best) MODEL=(experiment=robust_best) ;;
    # the preset before model.scale=spread: the coordinates divided by the palm's length in the photo (which
    # shrinks when the palm points at the camera, as grey_wall's P and Q do: experiments/robustness/viewpoint.py)
    robust_palm) MODEL=(experiment=robust_best model.scale=palm) ;;
    robust_handedness) MODEL=(experiment=robust_best model.scale=palm model.mirror=handedness) ;;  # the preset before issue 26
    # robust_palm with the hand turned out of the image plane in training, up to ± that many degrees about the
    # wrist's vertical and horizontal axes: grey_wall's P and Q are seen along the forearm, the training sets' side-on
    robust_tilt45) MODEL=(experiment=robust_best model.scale=palm model.augment.tilt=45) ;;
    robust_tilt90) MODEL=(experiment=robust_best model.scale=palm model.augment.tilt=90) ;;
    robust_no_aug) MODEL=(experiment=robust_best model.augment.rotate=0 model.augment.scale=0 model.augment.jitter=0
                          model.augment.finger_length=0) ;;
    robust_no_coords) MODEL=(experiment=robust_best "model.features=[distances,angles]") ;;
    robust_no_distances) MODEL=(experiment=robust_best "model.features=[coords,angles]") ;;
    robust_no_angles) MODEL=(experiment=robust_best "model.features=[coords,distances]") ;;
    *) echo "unknown row $row" >&2; exit 2 ;;
  esac
  for setup in $SETUPS; do
    setup_args $setup
    # shellcheck disable=SC2086
    # (eval_adapt_bn=false, eval_self_train=[]: AdaBN and self-training are scored by asl-eval below)
    asl-train -m "${MODEL[@]}" "${SETUP[@]}" data.no_hand=drop data.batch_size=128 trainer.max_epochs=40 \
      trainer=cpu data.audit=false data.num_workers=0 logger=none callbacks.lr_monitor=null seed=$SEEDS eval_adapt_bn=false \
      'eval_self_train=[]' \
      hydra.sweep.dir=$OUT/$row/$setup 'hydra.sweep.subdir=${hydra.job.num}' $EXTRA
    # AdaBN (asl-eval adapt_bn=true): the same model on the other set (signer: on its own test split), its
    # BatchNorm statistics first re-estimated on those photos, labels unused -> <run>/adapted/metrics.json.
    # keep_adapted=always: the adapted model is scored whatever the label-free check says; the check's verdict
    # is recorded beside it (metrics.json "adaptation"), so the summary shows both, checked and unchecked.
    other=data.root=${OTHER:-null}
    for run in "$OUT/$row/$setup"/*/; do
      asl-eval "ckpt_path='${run}checkpoints/best.ckpt'" $other adapt_bn=true keep_adapted=always \
        "output_dir='${run}adapted'" data.num_workers=0 > /dev/null
      # Self-training (asl-eval self_train=...): retrained on the run's training photos + the other set's photos
      # the model is most sure of, labelled by it (labels unused), with AdaBN -> <run>/self_trained, without
      # AdaBN -> <run>/self_trained_no_adabn, with issue 19's labels -> <run>/self_trained_confident
      case " $SELF_TRAIN_ROWS " in *" $row "*)
        for bn in $SELF_TRAIN_BN; do
          for labels in $SELF_TRAIN_LABELS; do
            dir=${run}self_trained; [ $bn = true ] || dir=${dir}_no_adabn; [ $labels = balanced ] || dir=${dir}_$labels
            asl-eval "ckpt_path='${run}checkpoints/best.ckpt'" $other adapt_bn=$bn "self_train=$SELF_TRAIN" \
              self_train_labels=$labels keep_adapted=always "output_dir='$dir'" data.num_workers=0 > /dev/null
          done
        done ;;
      esac
    done
  done
done
python experiments/robustness/summarise.py "$OUT"

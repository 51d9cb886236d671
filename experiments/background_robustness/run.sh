#!/usr/bin/env bash
# Does background randomisation make a model trained on one backdrop work on another?
# Train on asl_massey_black (hands on black, key_black masks) and test on all of asl_alphabet_room,
# and the reverse (room has no masks: mask-free recipe), small CNN, over seeds; one sweep per
# recipe row (the ablation), then asl-compare per direction.
#   experiments/background_robustness/run.sh                               # CPU defaults
#   TRAINER=gpu EPOCHS=40 SEEDS=0,1,2 experiments/background_robustness/run.sh
# Env: DATA (folder with asl_massey_black/ and asl_alphabet_room/), TRAINER (cpu|gpu), SEEDS, EPOCHS,
# OUT (multirun root), SIZE (px), DIRECTIONS (black2room and/or room2black), ROWS (recipe rows to run,
# default all of the direction), EXTRA (more overrides, e.g. "data.classes=ABC" for a smoke test),
# PARALLEL (row sweeps run at once; default 1; on a 16-core GPU machine 3 with "data.num_workers=4" in EXTRA).
set -euo pipefail
DATA=${DATA:-../shared/data}
TRAINER=${TRAINER:-cpu}
SEEDS=${SEEDS:-0,1,2}
EPOCHS=${EPOCHS:-40}
OUT=${OUT:-experiments/background_robustness/runs}
SIZE=${SIZE:-64}
DIRECTIONS=${DIRECTIONS:-black2room room2black}
EXTRA=${EXTRA:-}
PARALLEL=${PARALLEL:-1}
# trainer=gpu no longer sets the loader (data.*): its old loader settings, so TRAINER=gpu runs stay as measured
LOADER=""; if [ "$TRAINER" = gpu ]; then LOADER="data.num_workers=8 data.pin_memory=true"; fi

# job folders: $OUT/<direction>/<row>/seed<N>; recipe rows: name → overrides (data/background: where the hand goes; data/augment: the rest)
declare -A BLACK2ROOM=(
  [none]=""                                                          # default Affine + ColorJitter
  [photometric]="data/augment=photometric"                           # lighting/colour/blur/noise/JPEG only
  [maskfree]="data/augment=maskfree"                                 # crop + CoarseDropout + colour, no masks
  [bg_inplace]="data/background=procedural_inplace"                  # new backgrounds, hand stays put
  [bg_noarm]="data/background=procedural data.background.extend_arm=false"  # + random scale/place, wrist at the edge
  [bg_place]="data/background=procedural"                            # + random scale/place, forearm drawn
  [bg_place_photometric]="data/background=procedural data/augment=photometric"  # bg_place + strong photometric
  [best]="experiment=background_best"                                # the preset (hand crops + backgrounds in place)
)
declare -A ROOM2BLACK=(
  [none]=""
  [photometric]="data/augment=photometric"
  [maskfree]="data/augment=maskfree"
)

common=(data=folder model=small_cnn "model.input_size=$SIZE" "trainer=$TRAINER" "trainer.max_epochs=$EPOCHS"
        "seed=$SEEDS" 'data.split.fractions=[0.7,0.15,0.15]' data.batch_size=32 'hydra.sweep.subdir=seed${seed}' $LOADER $EXTRA)

throttle() {  # at most PARALLEL sweeps at once; a failed sweep stops the script
  while (( $(jobs -rp | wc -l) >= PARALLEL )); do wait -n; done
}

for dir in $DIRECTIONS; do
  case $dir in
    black2room)
      rows=${ROWS:-none photometric maskfree bg_inplace bg_noarm bg_place bg_place_photometric}
      for row in $rows; do
        [[ -v BLACK2ROOM[$row] ]] || { echo "ROWS: no row '$row' for black2room (${!BLACK2ROOM[*]})" >&2; exit 2; }
        # shellcheck disable=SC2086
        asl-train -m "${common[@]}" ${BLACK2ROOM[$row]} "data.root=$DATA/asl_massey_black" data.masks=key_black \
          "+eval_sets.room=$DATA/asl_alphabet_room" background_shift=true "hydra.sweep.dir=$OUT/black2room/$row" &
        throttle
      done ;;
    room2black)
      rows=${ROWS:-none photometric maskfree}
      for row in $rows; do
        [[ -v ROOM2BLACK[$row] ]] || { echo "ROWS: no row '$row' for room2black (${!ROOM2BLACK[*]})" >&2; exit 2; }
        # shellcheck disable=SC2086
        asl-train -m "${common[@]}" ${ROOM2BLACK[$row]} "data.root=$DATA/asl_alphabet_room" \
          "+eval_sets.black=$DATA/asl_massey_black" "hydra.sweep.dir=$OUT/room2black/$row" &
        throttle
      done ;;
    *) echo "DIRECTIONS: unknown direction '$dir' (black2room, room2black)" >&2; exit 2 ;;
  esac
done
while (( $(jobs -rp | wc -l) > 0 )); do wait -n; done
for dir in $DIRECTIONS; do
  case $dir in black2room) m="eval/room/acc eval/room/f1_macro background_shift/drop" ;; *) m="eval/black/acc eval/black/f1_macro" ;; esac
  # shellcheck disable=SC2086
  asl-compare "$OUT/$dir"/* --out "$OUT/$dir" --metrics test/acc $m fit_seconds
done

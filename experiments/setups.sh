# The set-ups of the cross-set experiments, in one place; sourced by experiments/transfer/run.sh and
# experiments/robustness/run.sh (run from the repository root):
#   signer       massey, unseen signer: train hand1-3, val hand4, test hand5
#   to_grey, to_room, to_massey (leave one set out; how recipes are chosen, with signer): the other two sets
#                as one folder, 80/10/10 (best-validation checkpoint), then every photo of the set left out
#   massey2room, room2massey, massey2grey, grey2massey, room2grey, grey2room (one set to another): one set
#                80/10/10, then every photo of the other
# Env: DATA (holds asl_massey_black/, asl_alphabet_room/, asl_grey_wall/), SEEDS, EXTRA (more overrides for every
# run), MERGED (where the two-set folders are made: links to the photos, no copies).
DATA=${DATA:-../shared/data}
SEEDS=${SEEDS:-0,1,2}
EXTRA=${EXTRA:-}
M=$DATA/asl_massey_black
R=$DATA/asl_alphabet_room
G=$DATA/asl_grey_wall
MERGED=${MERGED:-experiments/merged}
LOSO="to_grey to_room to_massey"   # the leave-one-set-out set-ups
# One torch thread per process: on this shared 2-core machine, 2 threads made a head step ~18x slower
# (29 ms vs 1.6 ms) and the backbone's forward pass 1.8x slower while another job used the CPU.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

# Detect the hand in every photo once (fills .cache/asl/hands-*.json, prints the detection rate and
# writes the per-class rates beside the cache). Skipped when the cache already holds every photo.
asl-prepare hands data.root=$M
asl-prepare hands data.root=$R
asl-prepare hands data.root=$G

# merged A B: prints a folder holding both sets, <LETTER>/<set>/<photo> as links to the photos (made once; the
# detector's cache finds their hands by content, so nothing is detected again).
merged() {
  local out=$MERGED/$(basename "$1")+$(basename "$2") set letter
  if [ ! -d "$out" ]; then
    for set in "$1" "$2"; do
      for letter in "$set"/*/; do
        mkdir -p "$out/$(basename "$letter")"
        cp -rs "$(realpath "$letter")" "$out/$(basename "$letter")/$(basename "$set")"
      done
    done
  fi
  echo "$out"
}

# setup_args SETUP: sets SETUP (asl-train overrides) and OTHER (the other set's folder; empty for signer). The other
# set is scored in training as eval set "other" (eval/other/* in metrics.json), or "room"/"massey" for the first two
# transfers (the older runs' keys).
setup_args() {
  local train other
  case $1 in
    signer) SETUP=(data=folder data.root=$M "data.split.group_by='(hand\d+)_'"
                   'data.split.group_assign={val:[hand4],test:[hand5]}'); OTHER=""; return ;;
    massey2room) SETUP=(data=folder data.root=$M 'data.split.fractions=[0.8,0.1,0.1]' +eval_sets.room=$R); OTHER=$R; return ;;
    room2massey) SETUP=(data=folder data.root=$R 'data.split.fractions=[0.8,0.1,0.1]' +eval_sets.massey=$M); OTHER=$M; return ;;
    to_grey) train=$(merged $M $R); other=$G ;;
    to_room) train=$(merged $M $G); other=$R ;;
    to_massey) train=$(merged $R $G); other=$M ;;
    massey2grey) train=$M; other=$G ;;
    grey2massey) train=$G; other=$M ;;
    room2grey) train=$R; other=$G ;;
    grey2room) train=$G; other=$R ;;
    *) echo "unknown setup $1" >&2; exit 2 ;;
  esac
  SETUP=(data=folder data.root=$train 'data.split.fractions=[0.8,0.1,0.1]' +eval_sets.other=$other); OTHER=$other
}

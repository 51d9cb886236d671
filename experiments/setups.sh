# The three set-ups of the cross-set experiments, in one place; sourced by experiments/transfer/run.sh and
# experiments/robustness/run.sh (run from the repository root):
#   signer       massey, unseen signer: train hand1-3, val hand4, test hand5
#   massey2room  massey 80/10/10 (best-validation checkpoint), then every photo of asl_alphabet_room
#   room2massey  the reverse
# Env: DATA (holds asl_massey_black/ and asl_alphabet_room/), SEEDS, EXTRA (more overrides for every run).
DATA=${DATA:-../shared/data}
SEEDS=${SEEDS:-0,1,2}
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

# setup_args SETUP: sets SETUP (asl-train overrides) and OTHER (the other set's folder; empty for signer).
setup_args() {
  case $1 in
    signer) SETUP=(data=folder data.root=$M "data.split.group_by='(hand\d+)_'"
                   'data.split.group_assign={val:[hand4],test:[hand5]}'); OTHER="" ;;
    massey2room) SETUP=(data=folder data.root=$M 'data.split.fractions=[0.8,0.1,0.1]' +eval_sets.room=$R); OTHER=$R ;;
    room2massey) SETUP=(data=folder data.root=$R 'data.split.fractions=[0.8,0.1,0.1]' +eval_sets.massey=$M); OTHER=$M ;;
    *) echo "unknown setup $1" >&2; exit 2 ;;
  esac
}

#!/usr/bin/env bash
# What asl-eval's keep_adapted=check runs where AdaBN alone fails the check: self-training without AdaBN.
# For each run of ROW (default robust_best) and SETUPS whose adapted/ report (run.sh) did not pass, writes
# <run>/self_trained_no_adabn (scored unchecked, its verdict recorded), so summarise.py can show the checked chain.
#   SETUPS=to_grey bash experiments/robustness/chain.sh
#   ROW=robust_spread bash experiments/robustness/chain.sh
set -uo pipefail
OUT=${OUT:-experiments/robustness/runs}
ROW=${ROW:-robust_best}
source experiments/setups.sh > /dev/null 2>&1
for setup in ${SETUPS:-$LOSO signer}; do
  setup_args "$setup"
  for run in "$OUT"/$ROW/$setup/*/; do
    [ -f "${run}adapted/metrics.json" ] || continue
    [ -f "${run}self_trained_no_adabn/metrics.json" ] && continue
    python -c "import json,sys; sys.exit(0 if json.load(open('${run}adapted/metrics.json'))['adaptation']['passed'] else 1)" && continue
    asl-eval "ckpt_path='${run}checkpoints/best.ckpt'" "data.root=${OTHER:-null}" adapt_bn=false "self_train=[0.3,0.6,0.9]" \
      keep_adapted=always "output_dir='${run}self_trained_no_adabn'" data.num_workers=0 > /dev/null
  done
done

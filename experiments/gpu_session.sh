#!/usr/bin/env bash
# One GPU session: install the wheels asl needs beside the image's torch, then run the sweeps in
# parallel under a deadline, compare them, and pack the results into $OUT.
#   python experiments/make_small_copies.py ../shared/data .devdata   # 96-px copies: what travels to the GPU machine
#   (device) bash experiments/gpu_session.sh  with .devdata and .whl (py3.12 wheels of hydra-core, omegaconf,
#   antlr4, albumentations, albucore, pydantic, imagehash, kornia, kornia-rs, ...) carried beside the repo;
#   $OUT collects results. The benchmark's --gpu run also times data/augment=device on the card (issue 8).
#   LOCAL=1 SMOKE=1 OUT=/tmp/devsmoke bash experiments/gpu_session.sh   # dry run here, tiny
set -u
T0=$(date +%s)
DEADLINE=${DEADLINE:-450}           # seconds for everything after set-up
since() { echo $(( $(date +%s) - T0 )); }
export NO_ALBUMENTATIONS_UPDATE=1 PYTHONUNBUFFERED=1
if [ -z "${LOCAL:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD ASL_CACHE_DIR=/tmp/asl-cache
  mkdir -p /tmp/bin
  for c in train eval compare audit reproduce; do
    printf '#!/bin/sh\nexec python3 -m asl.cli.%s "$@"\n' "$c" > /tmp/bin/asl-$c; chmod +x /tmp/bin/asl-$c
  done
  export PATH=/tmp/bin:$PATH DATA=$PWD/.devdata TRAINER=gpu
  nvidia-smi -L
  PY=python3
else
  export PATH=$PWD/.venv/bin:$PATH DATA=${DATA:-../shared/data} TRAINER=cpu ASL_CACHE_DIR=${ASL_CACHE_DIR:-$PWD/.cache/asl}
  PY=$PWD/.venv/bin/python
fi
$PY -c "import torch, torchvision, pytorch_lightning, albumentations, kornia, hydra, imagehash; import asl.runs.train, asl.runs.compare; print('torch', torch.__version__, 'tv', torchvision.__version__, 'pl', pytorch_lightning.__version__, 'cuda', torch.cuda.is_available())" || exit 1
R=$OUT/runs; mkdir -p $R
if [ -n "${SMOKE:-}" ]; then   # tiny: 1 epoch, 1 seed, 3 letters
  E1=2; E2=1; SEEDS=0; X="data.classes=ABCDEFG data.unknown_folders=ignore data.num_workers=0"; BENCH="--images 60 --batches 6 --skip 2 --rounds 1"
else
  E1=20; E2=40; SEEDS=0,1,2; X="data.num_workers=2"; BENCH="--images 600 --batches 30"
fi
echo "setup done after $(since)s"
# The GPU benchmark first, alone on the card (issue 8).
timeout 120 $PY experiments/benchmarks/bench.py --data $DATA/asl_alphabet_room $BENCH ${LOCAL:+} $([ -z "${LOCAL:-}" ] && echo --gpu) > $OUT/bench.log 2>&1
echo "bench rc=$? at $(since)s"
left=$(( DEADLINE - $(since) ))
run() { local name=$1; shift; ( timeout $left env "$@" > $OUT/$name.log 2>&1; echo "$name rc=$? at $(since)s" ) & }
run curriculum OUT=$R/curriculum EPOCHS=$E1 SIZE=64 SEEDS=$SEEDS EXTRA="$X" bash experiments/curriculum/run.sh
run backbones  OUT=$R/backbones  EPOCHS=$E1 SEEDS=$SEEDS EXTRA="$X" bash experiments/backbones/run.sh
run leakage    OUT=$R/leakage    EPOCHS=$E1 SEEDS=$SEEDS EXTRA="$X" bash experiments/leakage/run.sh
run background OUT=$R/background EPOCHS=$E2 SEEDS=$SEEDS EXTRA="$X" PARALLEL=3 bash experiments/background_robustness/run.sh
wait
echo "sweeps done at $(since)s"
cd $R && find . \( -name metrics.json -o -name overrides.yaml -o -name config.yaml -o -name 'events.out.tfevents.*' -o -name 'compare.md' -o -name 'background_shift.json' \) -print0 | tar czf $OUT/results.tgz --null -T -
cd - >/dev/null; ls -la $OUT; echo "end at $(since)s"

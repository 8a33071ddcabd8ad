#!/usr/bin/env bash
# Does TALL gain from more than one target position per verse (TrainConfig.positions)? Trains the demo preset's
# adapters once per setting, side by side on one GPU, then scores each best-dev checkpoint greedy/top-5 on every
# test-book verse without its last word (the demo table's 731 examples). Same seed (0), batch 16, lr 5e-4 and
# dev sample as the demo build's adapters stage; only positions and epochs change.
#
#   DATA=build/gpu-data OUT=runs/positions bash experiments/positions_sweep.sh [MAX_SECONDS]
#
# DATA holds the build's he_{train,dev,test}.jsonl (python -m demo_build --stages hebrew writes them).
# Each run is cut at MAX_SECONDS (default 420) and then scored from its best checkpoint so far.
set -u
PY=${PYTHON:-python3}; DATA=${DATA:-build/demo/data}; OUT=${OUT:-runs/positions}; MAX=${1:-420}
RUNS=${RUNS:-"last-e2:last:2 p2-e1:2:1 p2-e2:2:2 p4-e1:4:1"}  # name:positions:epochs
STAGE=runs/positions-results; mkdir -p "$OUT" "$STAGE"
run() {  # name positions epochs
  local name=$1 dir=runs/positions-$1
  timeout -s INT "$MAX" "$PY" -m training.train --preset demo --data "$DATA/he_train.jsonl" \
    --dev-data "$DATA/he_dev.jsonl" --positions "$2" --epochs "$3" --batch-size 16 --lr 5e-4 --eval-every 250 \
    --eval-limit 400 --log-every 50 --seed 0 --no-low-memory --translation-batch-size 256 \
    --translation-cache "$dir.sqlite" --out "$dir" > "$STAGE/$name.train.log" 2>&1
  local ckpt=$dir/best; [ -f "$ckpt/config.json" ] || ckpt=$dir/last
  cp "$dir/history.json" "$STAGE/$name.history.json" 2>/dev/null
  "$PY" -m evaluation.evaluate --preset demo --data "$DATA/he_test.jsonl" --tall "$ckpt" --approaches tall \
    --seeds 0 --translation-cache "$dir.sqlite" --out "$dir/eval" --no-progress > "$STAGE/$name.eval.log" 2>&1
  cp "$dir/eval/metrics.json" "$STAGE/$name.metrics.json" 2>/dev/null
  cp "$dir/eval/predictions.jsonl" "$STAGE/$name.predictions.jsonl" 2>/dev/null
}
for spec in $RUNS; do IFS=: read -r name positions epochs <<< "$spec"; run "$name" "$positions" "$epochs" & done
wait
tar czf "$OUT/positions.tgz" -C "$STAGE" .  # one file: the device tool brings back at most 8

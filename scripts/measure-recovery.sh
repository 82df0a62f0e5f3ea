#!/bin/sh
# Runs --recovery auto on every fixture and the real-world model at 50% and 80% unstructured and
# prints top-1 per ledger step with recovery seconds: the numbers in README "Measured recovery".
# usage: sh scripts/measure-recovery.sh OUTDIR
out=${1:-/tmp/pg-measure}
mkdir -p "$out"
rw=$(cd "$(dirname "$0")/../../.." && pwd)/shared/real-world/mnist-cnn-pytorch
for spec in mlp cnn-bn resnet dsconv-concat vit real-world; do
  for s in 0.5 0.8; do
    if [ "$spec" = real-world ]; then m=$rw/model.onnx; d=$rw/test.npz; c=$rw/calib.npz; else m=fixtures/$spec.onnx; d=fixtures/fmnist-test.npz; c=fixtures/fmnist-calib.npz; fi
    dir=$out/$spec-$s
    start=$(date +%s)
    node bin/prune-guard.js run --model "$m" --data "$d" --calib "$c" --sparsity $s --method unstructured --recovery auto --out "$dir" --warmup 1 --runs 5 --batch-sizes 1 --quiet >/dev/null 2>"$dir.log"
    end=$(date +%s)
    [ -f "$dir/ledger.json" ] && node -e "const l=require('$dir/ledger.json');const st=l.models[0].steps;console.log('$spec $s wall '+($end-$start)+'s | '+st.map(x=>x.name+' '+(x.accuracy*100).toFixed(2)+(x.recovery?' ('+x.recovery.seconds.toFixed(1)+'s)':'')).join(' | '))" || echo "$spec $s failed: $(tail -1 $dir.log)"
  done
done

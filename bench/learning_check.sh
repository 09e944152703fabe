#!/usr/bin/env bash
# Does one trial learn? A tiny backbone (test_resnet, no pretrained weights: none can be
# downloaded here) on a 300-patient synthetic set at the default difficulty, dual mode
# against stress only. The 17-segment logistic-regression baseline of the synthetic set
# reaches a balanced accuracy of about 0.8 (tests/search/synth/test_uptake.py).
#
# Without pretrained weights a frozen backbone gives random features, so the one-third
# rule is lifted (--max-layer-share 1 --max-param-share 1) and every layer fine-tunes.
#
#   bash bench/learning_check.sh [OUT]     (about 6 minutes on 2 cores)
set -euo pipefail
out=${1:-/tmp/polarmap-learning-check}
polarmap=${POLARMAP:-.venv/bin/polarmap}
"$polarmap" data synth "$out/data" --patients 300 --canvas 820x534 --seed 1 | tail -3
for mode in dual stress; do
    echo
    echo "== mode $mode"
    /usr/bin/time -f "%e s wall" "$polarmap" train --data "$out/data/manifest.csv" \
        --backbone test_resnet --mode "$mode" --warmup-epochs 3 --finetune-epochs 40 \
        --a 1.5 --unfreeze 1000 --max-layer-share 1 --max-param-share 1 --class-weighted \
        --cache "$out/cache" --out "$out/trial-$mode.json" | grep -E "^best|^epoch +43"
    "${PYTHON:-.venv/bin/python}" - "$out/trial-$mode.json" <<'PY'
import json, sys
best = json.load(open(sys.argv[1]))["best"]
print("validation sensitivity per class at the best epoch:",
      {k.split("/")[1]: round(v, 3) for k, v in best.items() if k.startswith("val_sensitivity/")})
PY
done

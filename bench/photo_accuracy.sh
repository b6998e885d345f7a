#!/usr/bin/env bash
# Accuracy of digits-predict --image on digit images unlike MNIST (tests/kaggle/gen_photos.py): the committed set
# (tests/fixtures/photo, seed 16) and fresh sets from other seeds. The train.csv digits in them are drawn from
# the hold-out of the given run directory (its val_ids.npy), so use a run trained with the split it names.
#   bench/photo_accuracy.sh RUN_DIR [MODEL...]     (models default to RUN_DIR; env SEEDS="17 18", BIN=build/bin)
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:?usage: bench/photo_accuracy.sh RUN_DIR [MODEL...]}
shift
models=("$@")
[ ${#models[@]} -eq 0 ] && models=("$run")
bin=${BIN:-build/bin}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
score() { # score DIR: accuracy of the models on DIR/labels.csv
    local dir=$1 args=()
    while IFS=, read -r file label _; do args+=(--image "$dir/$file"); done < <(tail -n +2 "$dir/labels.csv")
    "$bin/digits-predict" --threads 1 --json "${args[@]}" "${models[@]}" >"$tmp/res.jsonl" 2>/dev/null || true
    /usr/bin/python3 - "$dir" "$tmp/res.jsonl" <<'PY'
import csv, json, os, sys
d, res = sys.argv[1], sys.argv[2]
lab = {os.path.join(d, r["file"]): int(r["label"]) for r in csv.DictReader(open(os.path.join(d, "labels.csv")))}
ok, n, wrong = 0, 0, []
for line in open(res):
    j = json.loads(line)
    n += 1
    if j.get("digit") == lab[j["file"]]:
        ok += 1
    else:
        wrong.append(f'{os.path.basename(j["file"])}->{j.get("digit", j.get("error"))}')
print(f"{d}: {ok}/{n} = {100.0 * ok / max(n, 1):.1f}%  wrong: {' '.join(wrong) or '-'}")
PY
}
score tests/fixtures/photo
for seed in ${SEEDS:-17 18}; do
    /usr/bin/python3 tests/kaggle/gen_photos.py --train data/train.npy --val-ids "$run/val_ids.npy" --seed "$seed" \
        --out "$tmp/seed$seed" >/dev/null
    score "$tmp/seed$seed"
done

#!/usr/bin/env bash
# Ingest speed, side by side in one run: digits-ingest vs numpy.loadtxt and pandas.read_csv on the same CSV.
#
#   bench/ingest_bench.sh [CSV]        (default data/train.csv; `make -f Makefile.data` fetches it)
#   env: BIN=build/bin  REPS=3  THREADS=<digits-ingest default>  PY=/usr/bin/python3
#
# The three run interleaved (ours, numpy, pandas, ours, ...) so load from other processes hits them alike; the page
# cache is warmed first. digits-ingest is timed as a whole process (start-up, parse, write, fsync, rename; a fresh
# output file each time); the peers only for their parsing call (bench/ingest_peers.py), which favours them.
# Medians decide the ratios; the bars are >= 5x numpy.loadtxt, >= 15x pandas.read_csv, peak RSS < 160 MB.
# For information, digits-ingest --reference (libcsv parses every row, no fast scanner) runs alongside.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
csv=${1:-$root/data/train.csv}
BIN=${BIN:-$root/build/bin}
REPS=${REPS:-3}
PY=${PY:-/usr/bin/python3}
ingest=$BIN/digits-ingest
[ -f "$csv" ] || { echo "ingest_bench: $csv not found (make -f Makefile.data)" >&2; exit 1; }
[ -x "$ingest" ] || { echo "ingest_bench: $ingest not found (build first, or BIN=path/to/bin)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "ingest_bench: needs /usr/bin/time (GNU time)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
threads=()
[ -n "${THREADS:-}" ] && threads=(--threads "$THREADS")

cat "$csv" > /dev/null # page cache
mb=$(stat -c %s "$csv" | awk '{ printf "%.1f", $1 / 1e6 }')
echo "ingest bench: $csv ($mb MB), $REPS repetitions, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
echo "  $("$PY" -c 'import numpy, pandas; print("numpy", numpy.__version__, "pandas", pandas.__version__)'), digits-ingest" \
     "threads: ${THREADS:-default ($("$PY" -c 'import os; print(os.environ.get("OMP_NUM_THREADS") or os.cpu_count())'))}"

ours=() ours_rss=() ref=() np_t=() np_rss=() pd_t=() pd_rss=()
for r in $(seq "$REPS"); do
    rm -f "$tmp/out.npy"
    t0=$(date +%s%N)
    /usr/bin/time -f "%M" -o "$tmp/t" "$ingest" -q "${threads[@]}" -o "$tmp/out.npy" "$csv"
    t1=$(date +%s%N)
    ours+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')"); ours_rss+=("$(cat "$tmp/t")")
    rm -f "$tmp/ref.npy"
    t0=$(date +%s%N)
    "$ingest" -q --reference "${threads[@]}" -o "$tmp/ref.npy" "$csv"
    t1=$(date +%s%N)
    ref+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')")
    cmp -s "$tmp/out.npy" "$tmp/ref.npy" || { echo "ingest_bench: --reference output differs" >&2; exit 1; }
    check=()
    [ "$r" = 1 ] && check=(--check "$tmp/out.npy")
    /usr/bin/time -f "%e %M" -o "$tmp/t" "$PY" "$here/ingest_peers.py" numpy "$csv" "${check[@]}" > "$tmp/np"
    np_t+=("$(sed -n 's/^seconds=\([0-9.]*\).*/\1/p' "$tmp/np")"); np_rss+=("$(cut -d' ' -f2 "$tmp/t")")
    [ "$r" = 1 ] && { grep '^check' "$tmp/np" | sed 's/^/  digits-ingest vs numpy.loadtxt: /'; }
    /usr/bin/time -f "%e %M" -o "$tmp/t" "$PY" "$here/ingest_peers.py" pandas "$csv" > "$tmp/pd"
    pd_t+=("$(sed -n 's/^seconds=\([0-9.]*\).*/\1/p' "$tmp/pd")"); pd_rss+=("$(cut -d' ' -f2 "$tmp/t")")
done

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
maxof() { printf '%s\n' "$@" | sort -g | tail -1; }
m_ours=$(median "${ours[@]}"); m_np=$(median "${np_t[@]}"); m_pd=$(median "${pd_t[@]}")
rss=$(maxof "${ours_rss[@]}")
printf '  %-34s %s s   median %s s   peak RSS %.1f MB\n' "digits-ingest (whole process)" "${ours[*]}" "$m_ours" "$(awk "BEGIN{print $rss/1024}")"
printf '  %-34s %s s   median %s s\n' "digits-ingest --reference (libcsv)" "${ref[*]}" "$(median "${ref[@]}")"
printf '  %-34s %s s   median %s s   peak RSS %.1f MB\n' "numpy.loadtxt (call only)" "${np_t[*]}" "$m_np" "$(awk "BEGIN{print $(maxof "${np_rss[@]}")/1024}")"
printf '  %-34s %s s   median %s s   peak RSS %.1f MB\n' "pandas.read_csv (call only)" "${pd_t[*]}" "$m_pd" "$(awk "BEGIN{print $(maxof "${pd_rss[@]}")/1024}")"
awk -v o="$m_ours" -v n="$m_np" -v p="$m_pd" -v rss="$rss" 'BEGIN {
    rn = n / o; rp = p / o; mb = rss / 1024
    printf "  speed-up vs numpy.loadtxt   %5.1fx (bar >= 5x)     %s\n", rn, ((rn >= 5) ? "PASS" : "FAIL")
    printf "  speed-up vs pandas.read_csv %5.1fx (bar >= 15x)    %s\n", rp, ((rp >= 15) ? "PASS" : "FAIL")
    printf "  digits-ingest peak RSS      %5.1f MB (bar < 160 MB) %s\n", mb, ((mb < 160) ? "PASS" : "FAIL")
    exit ((rn >= 5 && rp >= 15 && mb < 160) ? 0 : 3) }'

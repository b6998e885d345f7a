#!/usr/bin/env bash
# tests/check_includes.sh [ROOT]: the folders' #include lines point one way (docs/architecture.md):
#
#   core (0) <- augment (1) <- nn (2) <- kaggle (3) <- pipeline, experiments (4)
#
# A source file in a folder may include the project's headers from its own folder or from a lower floor, never
# from a higher one or from a sibling on the same floor. tests/ and bench/ stand on top of everything.
# Headers under X/internal/ are not API: only X/, tests/ and bench/ may include them.
# Prints each offending line as file:line: text and exits 1 if there is any; exits 0 with a count otherwise.
set -euo pipefail
root=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
cd "$root"

declare -A floor=([core]=0 [augment]=1 [nn]=2 [kaggle]=3 [pipeline]=4 [experiments]=4)

bad=0 checked=0
while IFS= read -r -d '' file; do
    dir=${file%%/*}
    [ -n "${floor[$dir]+x}" ] || [ "$dir" = tests ] || [ "$dir" = bench ] || continue
    n=0
    while IFS= read -r line; do
        n=$((n + 1))
        [[ $line =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\"([a-z_]+)/(internal/)? ]] || continue
        to=${BASH_REMATCH[1]} internal=${BASH_REMATCH[2]}
        checked=$((checked + 1))
        if [ -n "$internal" ] && [ "$to" != "$dir" ] && [ "$dir" != tests ] && [ "$dir" != bench ]; then
            echo "$file:$n: $line  ($to/internal/ is not API: only $to/, tests/ and bench/ include it)"
            bad=$((bad + 1))
            continue
        fi
        [ "$to" = "$dir" ] || [ "$dir" = tests ] || [ "$dir" = bench ] && continue
        if [ -z "${floor[$to]+x}" ] || [ "${floor[$to]}" -ge "${floor[$dir]}" ]; then
            echo "$file:$n: $line  ($dir/ may not include $to/)"
            bad=$((bad + 1))
        fi
    done <"$file"
done < <(if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
             git ls-files -z --cached --others --exclude-standard -- '*.c' '*.h'
         else
             find . -path ./build\* -prune -o \( -name '*.c' -o -name '*.h' \) -printf '%P\0'
         fi)

if [ $bad -gt 0 ]; then
    echo "check_includes: $bad include(s) against the folder order core <- augment <- nn <- kaggle <- pipeline" \
         "or into another folder's internal/" >&2
    exit 1
fi
echo "check_includes: $checked project includes, all one way"

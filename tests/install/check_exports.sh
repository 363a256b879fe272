#!/bin/sh
# test_exports: libdurabletask.so exports exactly the functions of the public headers. Every
# function declared in runtime/include/durabletask/*.h (and the generated version.h) must carry
# DT_API and be in the dynamic symbol table (nm -D); nothing else may be there: no internal
# dt__ function, no module function of the broker adapter or the engine, no dependency's
# symbol. Catches a declaration added without DT_API (hidden, so missing for shared-library
# users) and a lost -fvisibility=hidden.
#
#   check_exports.sh <libdurabletask.so> <nm> <header dir> [<generated header dir>]
set -eu
lib=$1
nm=$2
shift 2

tmp=$(mktemp -d "${DT_TEST_TMPDIR:-${TMPDIR:-/tmp}}/dt-exports.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
status=0

headers=""
for d in "$@"; do
    for h in "$d"/durabletask/*.h; do
        [ -e "$h" ] && headers="$headers $h"
    done
done

# Declarations start at column 0 with their return type and name the function on that line
# (clang-format keeps them so); typedefs of function pointers and comment lines do not match.
# shellcheck disable=SC2086 # a list of files
grep -hE '^[A-Za-z_][A-Za-z0-9_ ]*[ *]dt_[a-z0-9_]+\(' $headers | grep -vE '^typedef ' \
    >"$tmp/decl_lines" || true
if grep -vE '^(DT_NORETURN )?DT_API ' "$tmp/decl_lines" >"$tmp/unmarked"; then
    echo "check_exports: public declarations without DT_API (hidden in the shared library):"
    cat "$tmp/unmarked"
    status=1
fi
grep -oE '\bdt_[a-z0-9_]+\(' "$tmp/decl_lines" | tr -d '(' | sort -u >"$tmp/declared"

"$nm" -D --defined-only "$lib" | awk 'NF >= 3 { print $3 }' | sed 's/@.*//' | sort -u \
    >"$tmp/exported"
if ! [ -s "$tmp/exported" ]; then
    echo "check_exports: $lib exports nothing"
    exit 1
fi
if comm -23 "$tmp/declared" "$tmp/exported" | grep .; then
    echo "check_exports: ^ declared in the public headers but not exported by $lib"
    status=1
fi
if comm -13 "$tmp/declared" "$tmp/exported" | grep .; then
    echo "check_exports: ^ exported by $lib but not declared in a public header"
    status=1
fi
echo "check_exports: $(wc -l <"$tmp/exported") symbols exported, $(wc -l <"$tmp/declared") declared"
exit $status

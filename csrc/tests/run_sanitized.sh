#!/usr/bin/env bash
# Build the C core with the unit tests under AddressSanitizer + UBSan (gcc) and run them.
# Used by `make sanitize` and `make test`; any sanitizer report aborts with a non-zero exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

CC=${CC:-gcc}
OUT=csrc/build/test_core_sanitized
mkdir -p csrc/build
shopt -s nullglob
sources=(csrc/src/*.c)
if [ ${#sources[@]} -eq 0 ]; then
    echo "error: no C sources in csrc/src" >&2
    exit 1
fi

"$CC" -std=c99 -O1 -g -pthread -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
    -Wall -Wextra -Werror -Icsrc/include -Icsrc/src \
    "${sources[@]}" csrc/tests/test_core.c -o "$OUT"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
time "$OUT"

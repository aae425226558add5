#!/usr/bin/env bash
# Build the C core with the unit tests under ThreadSanitizer (gcc) and run them: the stripe tests
# encode and decode on 2, 3, 8 and 300 threads, so any data race in the worker pool is reported.
# Used by `make tsan`; a race report aborts with a non-zero exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

CC=${CC:-gcc}
OUT=csrc/build/test_core_tsan
mkdir -p csrc/build
# -Wno-maybe-uninitialized: TSan instrumentation makes gcc 12 lose track of lms_input being written
# and read under the same condition (ref == NULL); the ASan/UBSan build keeps the warning as an error.
"$CC" -std=c99 -O1 -g -pthread -fsanitize=thread -Wall -Wextra -Werror -Wno-maybe-uninitialized \
    -Icsrc/include -Icsrc/src \
    csrc/src/*.c csrc/tests/test_core.c -o "$OUT"
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:abort_on_error=1}
time "$OUT"

#!/bin/sh
# test_install: installs the build into a temp prefix (cmake --install), then builds a program
# outside the project (consumer/) against the installed tree five ways: CMake find_package with
# durabletask::durabletask (shared) and durabletask::durabletask_static, pkg-config as C (shared
# and static), and pkg-config as C++ (which also proves the headers give the functions C
# linkage). Runs each. With
# DT_TEST_NATS_URL set the programs also connect a client.
#
#   test_install.sh <build dir> <source dir> <C compiler> <C++ compiler or ""> <extra flags>
#
# The extra flags (the sanitizer flags of a DT_SANITIZE build) go to every compile and link: a
# program linking an instrumented library must load the sanitizer runtimes first.
set -eu
build=$1
src=$2
cc=$3
cxx=$4
flags=$5

base=${DT_TEST_TMPDIR:-${TMPDIR:-/tmp}}
tmp=$(mktemp -d "$base/dt-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
prefix=$tmp/prefix

step() { printf 'test_install: %s\n' "$*"; }
die() {
    printf 'test_install: FAILED: %s\n' "$*" >&2
    exit 1
}

step "cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" || {
    cat "$tmp/install.log" >&2
    die "cmake --install"
}
libdir=$(find "$prefix" -name 'libdurabletask.so' | head -n 1 | xargs -r dirname)
[ -n "$libdir" ] || die "no libdurabletask.so under $prefix"
for f in "$prefix/include/durabletask/worker.h" "$prefix/include/durabletask/version.h" \
    "$prefix/include/durabletask/defs.h" "$libdir/libdurabletask.a" \
    "$libdir/cmake/durabletask/durabletask-config.cmake" "$libdir/pkgconfig/durabletask.pc" \
    "$prefix/bin/dtctl" "$prefix/bin/dt-samples-worker"; do
    [ -e "$f" ] || die "not installed: $f"
done
# Only public headers are installed: nothing internal (the _int.h files, the broker adapter).
if find "$prefix/include" -name '*_int.h' -o -name 'dt_broker.h' | grep -q .; then
    die "internal headers installed"
fi

# The installed tool runs from the prefix (it links the library statically).
step "$prefix/bin/dtctl --version"
"$prefix/bin/dtctl" --version || die "the installed dtctl does not run"

run() {
    step "run $1"
    mkdir -p "$tmp/data"
    "$@" "$tmp/data" || die "$1 exited with $?"
}

step "find_package(durabletask CONFIG)"
cmake -S "$src/tests/install/consumer" -B "$tmp/cmake-build" -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS="$flags" >"$tmp/cmake.log" 2>&1 || {
    cat "$tmp/cmake.log" >&2
    die "configuring the consumer with find_package"
}
cmake --build "$tmp/cmake-build" >"$tmp/cmake-build.log" 2>&1 || {
    cat "$tmp/cmake-build.log" >&2
    die "building the consumer with find_package"
}
run "$tmp/cmake-build/dt_consumer"
run "$tmp/cmake-build/dt_consumer_static"

step "pkg-config durabletask"
export PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
pc_version=$(pkg-config --modversion durabletask) || die "pkg-config does not find durabletask"
step "pkg-config: version $pc_version"
# shellcheck disable=SC2046,SC2086 # the flags are lists of words
$cc -std=c11 -Wall -Wextra -Werror $flags -o "$tmp/pc_consumer" \
    "$src/tests/install/consumer/main.c" $(pkg-config --cflags --libs durabletask) \
    -Wl,-rpath,"$libdir" || die "building with pkg-config"
run "$tmp/pc_consumer"

step "pkg-config: static library"
# The archive by name (-ldurabletask would pick the shared library), then the flags of the modules
# it requires and its own system libraries. (pkg-config --static would add every module's private
# dependencies too, down to static-only ones such as gnutls's, which a system of shared libraries
# need not have.)
# shellcheck disable=SC2046,SC2086 # lists of words
$cc -std=c11 -Wall -Wextra -Werror $flags -o "$tmp/pc_consumer_static" \
    "$src/tests/install/consumer/main.c" $(pkg-config --cflags durabletask) \
    "$libdir/libdurabletask.a" $(pkg-config --libs $(pkg-config --print-requires-private durabletask)) \
    $(pkg-config --variable=libs_private durabletask) || die "building with the static library"
run "$tmp/pc_consumer_static"

if [ -n "$cxx" ]; then
    step "pkg-config durabletask, C++"
    # shellcheck disable=SC2046,SC2086
    $cxx -std=c++17 -x c++ -Wall -Wextra -Werror $flags -o "$tmp/pc_consumer_cxx" \
        "$src/tests/install/consumer/main.c" -x none $(pkg-config --cflags --libs durabletask) \
        -Wl,-rpath,"$libdir" || die "building with pkg-config as C++"
    run "$tmp/pc_consumer_cxx"
fi
step "OK"

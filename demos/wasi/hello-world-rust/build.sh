#!/usr/bin/env bash
# Rebuilds hello-world-wasi-rust.wasm from main.c with Debian's clang, lld and wasi-libc:
#   apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32
set -euo pipefail
cd "$(dirname "$0")"
clang --target=wasm32-wasi --sysroot=/usr -O2 -Wall -Wextra -Wl,--strip-all -o hello-world-wasi-rust.wasm main.c
echo "built $(pwd)/hello-world-wasi-rust.wasm"

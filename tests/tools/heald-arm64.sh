#!/bin/sh
# build/arm64/heald under qemu-user, for HEALD_BIN: the integration tests run the Graviton
# build with it (tests/run-all.sh). qemu-user passes signals on to heald.
exec qemu-aarch64-static "$(dirname "$0")/../../build/arm64/heald" "$@"

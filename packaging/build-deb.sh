#!/usr/bin/env bash
# Builds the Debian package into target/debian/: the release binary, then the manual pages and
# shell completions the binary makes from its own command-line definitions, then
# `cargo deb --no-build` (installed from crates.io when absent). Extra arguments go to cargo deb,
# e.g. `--deb-version 0.1.1-1`. Prints the path of the .deb on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
cargo build --release --locked
target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
bin="$target/release/clipfeed"

# cargo-deb reads these paths relative to the repository (see Cargo.toml's assets).
out=target/packaging
rm -rf "$out"
mkdir -p "$out/man" "$out/completions"
"$bin" man --dir "$out/man"
"$bin" completions bash >"$out/completions/clipfeed.bash"
"$bin" completions zsh >"$out/completions/_clipfeed"
"$bin" completions fish >"$out/completions/clipfeed.fish"

cargo deb --no-build --locked "$@" | tail -n 1

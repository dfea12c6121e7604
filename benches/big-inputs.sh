#!/usr/bin/env bash
# Big manifests, timed: the work must grow linearly with the input.
#   1. `plan` of a crate with 100,000 `tags.extra` templates (~1 MB of Cargo.toml);
#   2. `lint` of a 1.4 MB manifest (40,000 labels, 10,000 env entries), once with hadolint on the
#      PATH and once without it, so that the tool's own share is shown apart from hadolint's;
#   3. hadolint alone on the Dockerfile that manifest renders to.
# Each is the median of three runs. Nothing here needs the Docker engine.
#
# usage: benches/big-inputs.sh            PROFILE=debug benches/big-inputs.sh (default: release)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
profile="${PROFILE:-release}"
flag=(); [ "$profile" = release ] && flag=(--release)
cargo build -q "${flag[@]}" --manifest-path "$root/Cargo.toml"
tool="$root/target/$profile/cargo-docker-release"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

fixture() { # name python-edit
  cp -r "$root/examples/hello" "$work/$1"
  rm -rf "$work/$1/target"
  (cd "$work/$1" && python3 -c "$2" && git init -q && git add -A \
    && git -c user.name=bench -c user.email=bench@example.com commit -qm bench)
}
median() { # command...: the median wall time of three runs, in seconds
  python3 - "$@" <<'PY'
import subprocess, sys, time
runs = []
for _ in range(3):
    start = time.monotonic()
    subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs.append(time.monotonic() - start)
print(f"{sorted(runs)[1]:.2f}")
PY
}

fixture tags "
s = open('Cargo.toml').read()
tags = ', '.join(f'\"t{i}-{{sha7}}\"' for i in range(100000))
s = s.replace('[package.metadata.docker.test]', '[package.metadata.docker.tags]\nextra = [' + tags + ']\n\n[package.metadata.docker.test]', 1)
open('Cargo.toml', 'w').write(s)"
fixture labels "
s = open('Cargo.toml').read()
labels = ', '.join(f'\"l{i}\" = \"value number {i}\"' for i in range(40000))
env = ', '.join(f'E{i} = \"v{i}\"' for i in range(10000))
s = s.replace('expose = [8080]', 'expose = [8080]\nlabels = { ' + labels + ' }\nenv = { ' + env + ' }', 1)
open('Cargo.toml', 'w').write(s)"

# A PATH with the tools the release needs but no hadolint.
mkdir -p "$work/bin"
for t in git cargo rustc; do ln -s "$(command -v "$t")" "$work/bin/$t"; done

printf 'plan, 100,000 tags.extra (%s KB):   %ss\n' "$(( $(wc -c <"$work/tags/Cargo.toml") / 1024 ))" \
  "$(cd "$work/tags" && median "$tool" docker-release plan --message-format json)"
printf 'lint, %s KB manifest, no hadolint: %ss\n' "$(( $(wc -c <"$work/labels/Cargo.toml") / 1024 ))" \
  "$(cd "$work/labels" && median env PATH="$work/bin" "$tool" docker-release lint)"
if command -v hadolint >/dev/null; then
  (cd "$work/labels" && "$tool" docker-release dockerfile >"$work/Dockerfile" 2>/dev/null)
  printf 'lint, same manifest, with hadolint:  %ss\n' "$(cd "$work/labels" && median "$tool" docker-release lint)"
  printf 'hadolint alone on its %s KB Dockerfile: %ss\n' "$(( $(wc -c <"$work/Dockerfile") / 1024 ))" \
    "$(median hadolint "$work/Dockerfile")"
fi

#!/usr/bin/env bash
# Plans a synthetic monorepo side by side in one run and compares:
#   1. the revision walk: `cargo docker-release plan --workspace` (one first-parent walk for every
#      service) against the per-service loop `git log -1 -- <inputs>` on the same repository;
#   2. the engine's cost: the same plan with the Docker engine reachable and with no engine
#      (`DOCKER_HOST` pointing at a socket that does not exist).
# The monorepo is written by `git fast-import` in seconds: SERVICES services under `services/`,
# then COMMITS commits that each change `docs/churn.txt` only, so every service last changed in
# the first commit, COMMITS commits ago (the worst case for a walk). It reports each wall time (the plans: the median of five runs),
# the ratios, and checks that the plan and `git log` agree on every revision.
#
# usage: benches/plan-monorepo.sh [SERVICES] [COMMITS]   (default: 100 20000)
#        PROFILE=debug benches/plan-monorepo.sh          (default: release)
#
# Needs: git, cargo, python3, jq, bc; a Docker engine and the docker CLI for the engine side
# (which gets two release tags of every service, on one empty imported image, removed at exit).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
services="${1:-100}"
commits="${2:-20000}"
profile="${PROFILE:-release}"
for tool in git cargo python3 jq bc; do
  command -v "$tool" >/dev/null || { echo "missing $tool: install it first" >&2; exit 2; }
done
work="$(mktemp -d)"
prefix="cdr-bench-$$-$(date +%s)"
cleanup() {
  if command -v docker >/dev/null; then
    docker images --format '{{.Repository}}:{{.Tag}}' | grep "^$prefix" | xargs -r docker rmi >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc -l | xargs printf '%.2f'; }
ratio() { echo "$1 / $2" | bc -l | xargs printf '%.3f'; }

echo "== building cargo-docker-release ($profile)"
if [[ "$profile" == release ]]; then
  (cd "$root" && cargo build --quiet --locked --release --bin cargo-docker-release)
else
  (cd "$root" && cargo build --quiet --locked --bin cargo-docker-release)
fi
tool="$root/target/$profile/cargo-docker-release"

echo "== writing $services services and $commits commits with git fast-import"
repo="$work/monorepo"
git init -q -b main "$repo"
started="$(now)"
python3 - "$services" "$commits" "$prefix" <<'PY' | git -C "$repo" fast-import --quiet --done
import sys
services, commits, prefix = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
out = sys.stdout
def data(text):
    b = text.encode()
    out.write(f"data {len(b)}\n{text}\n")
def file(path, text):
    out.write(f"M 100644 inline {path}\n")
    data(text)
def commit(mark, message):
    out.write(f"commit refs/heads/main\nmark :{mark}\n"
              f"committer Bench <bench@localhost> {1700000000 + mark * 60} +0000\n")
    data(message)
names = [f"svc-{i:03}" for i in range(services)]
commit(1, "initial")
file("Cargo.toml", "[workspace]\nresolver = \"2\"\nmembers = [%s]\n"
     % ", ".join(f'"services/{n}"' for n in names))
lock = "version = 4\n" + "".join(f'\n[[package]]\nname = "{n}"\nversion = "1.0.0"\n' for n in names)
file("Cargo.lock", lock)
file(".gitignore", "target/\n")
for n in names:
    file(f"services/{n}/Cargo.toml",
         f'[package]\nname = "{n}"\nversion = "1.0.0"\nedition = "2021"\n\n'
         f'[package.metadata.docker]\nimage = "{prefix}/{n}"\nbase = "scratch"\nstatic = true\n')
    file(f"services/{n}/src/main.rs", "fn main() {}\n")
for k in range(1, commits + 1):
    commit(k + 1, f"change {k}")
    file("docs/churn.txt", f"{k}\n")
out.write("done\n")
PY
git -C "$repo" checkout -q -f main
echo "   written in $(since "$started")s"

# The inputs `git log` gets for each service: what the plan itself reads for it.
inputs_of() {
  local dir="services/$1"
  echo "$dir" Cargo.lock Cargo.toml \
    "$dir/.cargo/config.toml" "$dir/.cargo/config" "$dir/rust-toolchain.toml" "$dir/rust-toolchain" \
    services/.cargo/config.toml services/.cargo/config services/rust-toolchain.toml services/rust-toolchain \
    .cargo/config.toml .cargo/config rust-toolchain.toml rust-toolchain
}

echo "== baseline: git log -1 per service"
cd "$repo"
started="$(now)"
: > "$work/git-log.txt"
for i in $(seq 0 $((services - 1))); do
  name="$(printf 'svc-%03d' "$i")"
  # shellcheck disable=SC2046
  echo "$name $(git log -1 --first-parent --format=%H -- $(inputs_of "$name"))" >> "$work/git-log.txt"
done
loop_s="$(since "$started")"
echo "== baseline: git log -1 -- services/<name> per service (the crate directory only)"
started="$(now)"
for i in $(seq 0 $((services - 1))); do
  git log -1 --format=%H -- "services/$(printf 'svc-%03d' "$i")" > /dev/null
done
dir_loop_s="$(since "$started")"

if command -v docker >/dev/null; then
  echo "== giving the engine two releases of every service (tags of one empty image)"
  tar -cf - -T /dev/null | docker import - "$prefix/empty:0" >/dev/null
  for i in $(seq 0 $((services - 1))); do
    for version in 0.9.0 2.0.0; do
      docker tag "$prefix/empty:0" "$prefix/$(printf 'svc-%03d' "$i"):$version"
    done
  done
fi

# The median wall time of five runs of a command (its output discarded).
median_of_5() {
  local times=() started
  for _ in 1 2 3 4 5; do
    started="$(now)"
    "$@" > /dev/null
    times+=("$(since "$started")")
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n 3p
}

plan() {
  "$tool" docker-release plan --workspace --message-format json 2>/dev/null
}
echo "== cargo docker-release plan --workspace, with the engine"
plan > /dev/null   # warm the file system cache for both sides alike
plan > "$work/plan.json"
plan_s="$(median_of_5 plan)"

echo "== cargo docker-release plan --workspace, without an engine"
no_engine_plan() { DOCKER_HOST="unix://$work/no-engine.sock" plan; }
plan_no_engine_s="$(median_of_5 no_engine_plan)"

jq -r '.images[] | "\(.package) \(.revision)"' "$work/plan.json" | sort > "$work/plan.txt"
# The engine's releases reached the plan: its 2.0.0 holds `latest` back for every service.
if command -v docker >/dev/null; then
  held="$(jq '[.images[].tags[] | select(.name == "latest" and (.applied | not))] | length' "$work/plan.json")"
  [[ "$held" == "$services" ]] || { echo "the plan did not see the engine's releases ($held held back)" >&2; exit 1; }
  echo "   the plan saw the engine's releases: latest held back for all $services services"
fi
sort "$work/git-log.txt" > "$work/git-log.sorted"
if ! diff -q "$work/plan.txt" "$work/git-log.sorted" >/dev/null; then
  echo "the plan and git log disagree:" >&2
  diff "$work/plan.txt" "$work/git-log.sorted" | head >&2
  exit 1
fi

echo
echo "$services services, $commits commits since their last change ($profile build)"
printf '  git log -1 -- <dir> each:      %6ss\n' "$dir_loop_s"
printf '  git log -1 -- <inputs> each:   %6ss\n' "$loop_s"
printf '  plan (one walk), engine:      %6ss   %s of the <dir> loop, %s of the <inputs> loop (target <= 0.1)\n' \
  "$plan_s" "$(ratio "$plan_s" "$dir_loop_s")" "$(ratio "$plan_s" "$loop_s")"
printf '  plan, no engine:              %6ss   engine/no engine = %s (target <= 1.5)\n' \
  "$plan_no_engine_s" "$(ratio "$plan_s" "$plan_no_engine_s")"
echo "  every revision agrees with git log"

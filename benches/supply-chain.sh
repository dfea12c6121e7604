#!/usr/bin/env bash
# What the supply chain adds to a pushed release: examples/hello (or the crate given) released
# with --push to a loopback registry on fresh commits, alternating PAIRS (5) times between
#   A. SBOM + provenance + a signature (the defaults, with --sign-key), and
#   B. `sbom = false`, `provenance = false`, no key;
# prints each release's wall time, A's attach step (the report's timings.attach_ms), the medians
# and the ratio A/B.
#
#   benches/supply-chain.sh [PAIRS] [CRATE_DIR]
#
# Needs: a Docker engine, docker-registry (Debian's package), openssl, cargo, jq, git, curl.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
pairs="${1:-5}"
crate="$(cd "${2:-$root/examples/hello}" && pwd)"
for tool in docker-registry openssl cargo jq git curl python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool: install it first" >&2; exit 2; }
done
work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
registry="127.0.0.1:$port"
image="$registry/cdr-bench/chain-$$"
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  docker images --format '{{.Repository}}:{{.Tag}}' "$image" | xargs -r docker rmi >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/registry.yml" <<EOF
version: 0.1
log: { level: error }
storage: { filesystem: { rootdirectory: $work/data } }
http: { addr: $registry, secret: bench }
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -fsS "http://$registry/v2/" >/dev/null 2>&1 && break; sleep 0.1; done

(cd "$root" && cargo build --release --locked --quiet)
tool="$root/target/release/cargo-docker-release"
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out "$work/key.pem"

svc="$work/svc"
cp -r "$crate" "$svc"
rm -rf "$svc/target"
manifest="$svc/Cargo.toml"
python3 - "$manifest" "$image" <<'EOF'
import re, sys
path, image = sys.argv[1:]
text = open(path).read()
text = re.sub(r'(?m)^image = .*$', f'image = "{image}"', text, count=1)
open(path, "w").write(text)
EOF
git -C "$svc" init -q && git -C "$svc" add -A && git -C "$svc" -c user.name=b -c user.email=b@b commit -qm base
export CARGO_TARGET_DIR="$svc/target" DOCKER_CONFIG="$work/docker" CI=1
mkdir -p "$DOCKER_CONFIG" && echo '{}' > "$DOCKER_CONFIG/config.json"

# release VARIANT N: a fresh commit (the version bumped, so every tag is new), one --push release.
release() {
  local variant=$1 n=$2
  python3 - "$manifest" "$variant" "$n" <<'EOF'
import re, sys
path, variant, n = sys.argv[1:]
text = open(path).read()
text = re.sub(r'(?m)^version = "[^"]*"', f'version = "0.{n}.0"', text, count=1)
text = re.sub(r'(?m)^(sbom|provenance) = false\n', '', text)
if variant == "B":
    text = text.replace("[package.metadata.docker]\n", "[package.metadata.docker]\nsbom = false\nprovenance = false\n", 1)
open(path, "w").write(text)
EOF
  (cd "$svc" && cargo update --workspace --offline --quiet)
  git -C "$svc" -c user.name=b -c user.email=b@b commit -qam "$variant $n"
  local key=()
  [ "$variant" = A ] && key=(--sign-key "$work/key.pem")
  "$tool" docker-release --manifest-path "$manifest" --push "${key[@]}" --message-format json -q > "$work/report.json"
  jq -r '[.duration_ms, .services[0].timings.attach_ms] | @tsv' "$work/report.json"
}

release A 0 >/dev/null  # warm-up: cargo's dependencies, the engine, the registry
a=() b=() att=()
for i in $(seq 1 "$pairs"); do
  read -r da aa < <(release A $((2 * i)))
  read -r db _ < <(release B $((2 * i + 1)))
  a+=("$da") b+=("$db") att+=("$aa")
  echo "pair $i: with the supply chain ${da} ms (attach ${aa} ms), without ${db} ms"
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
ma=$(median "${a[@]}") mb=$(median "${b[@]}") mt=$(median "${att[@]}")
echo "median: with ${ma} ms, without ${mb} ms, attach step ${mt} ms; ratio $(echo "$ma / $mb" | bc -l | xargs printf '%.2f')"

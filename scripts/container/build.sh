#!/usr/bin/env bash
# Build the workflow's image from ./Dockerfile with podman or docker (whichever is installed; see
# engine.sh), from a pulled python:3.11-slim (a user's normal case) or from a base image made of Debian
# packages with mmdebstrap (a machine that reaches no container registry). docs/environments.md.
#
#   scripts/container/build.sh [--target cpu|cuda] [--tag NAME] [--base auto|pull|debian|IMAGE]
#                              [--no-host-pip] [-- EXTRA ENGINE BUILD ARGUMENTS]
#
# --base auto (the default): python:3.11-slim if the engine has it or can pull it, else the Debian-made
#   base (made once, then reused: localhost/gift-python:3.11-bookworm; GIFT_REBUILD_BASE=1 remakes it;
#   DEBIAN_MIRROR / DEBIAN_SECURITY_MIRROR choose the mirrors).
# Host pip sources (podman only, off with --no-host-pip): the build's pip uses the index URLs, local
#   find-links folders and CA bundle of this host's pip configuration (`pip config list`, PIP_* variables),
#   mounted read-only for the build (the image keeps only their empty mount points). That is how a machine whose TLS is
#   intercepted reaches PyPI, and how a local +cpu torch wheel replaces an unreachable download.pytorch.org.
# TORCH_INDEX_URL (cpu target): the Dockerfile's default unless set; left out of the build when it does
#   not answer (the Dockerfile then refuses a CUDA torch, so a missing +cpu wheel is an error, not a 3 GB
#   surprise).
# The last line printed is the image name.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/container/engine.sh

target=cpu tag="" base=auto host_pip=1
while [ $# -gt 0 ]; do
    case $1 in
    --target) target=${2:?--target needs cpu or cuda}; shift 2 ;;
    --tag) tag=${2:?--tag needs a name}; shift 2 ;;
    --base) base=${2:?--base needs auto, pull, debian or an image}; shift 2 ;;
    --no-host-pip) host_pip=0; shift ;;
    --) shift; break ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) gift_die "unknown argument $1 (--help lists them)" ;;
    esac
done
case $target in cpu | cuda) ;; *) gift_die "--target must be cpu or cuda, not $target" ;; esac
gift_engine
version=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
tag=${tag:-ghcr.io/gift-pipeline/gift-pipeline:$version-$target}
args=(--target "$target" -t "$tag")

# ---- the base image
PULLED=docker.io/library/python:3.11-slim # the Dockerfile's python:3.11-slim, fully qualified for podman
DEBIAN_BASE=localhost/gift-python:3.11-bookworm
have() { "$ENGINE" image inspect "$1" >/dev/null 2>&1; }
debian_base() {
    if have "$DEBIAN_BASE" && [ -z "${GIFT_REBUILD_BASE:-}" ]; then
        echo "base: $DEBIAN_BASE (made earlier from Debian packages)"
        return
    fi
    command -v mmdebstrap >/dev/null 2>&1 || gift_die "no base image: cannot pull python:3.11-slim and mmdebstrap is not installed (apt-get install mmdebstrap)"
    local mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
    local security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
    local t0=$SECONDS
    gift_tmpdir
    # bookworm's python3 is 3.11, as in python:3.11-slim; pip may install into it (no EXTERNALLY-MANAGED)
    # shellcheck disable=SC2016 # $1 is the hook's argument (the new root), expanded by mmdebstrap
    mmdebstrap --quiet --variant=minbase \
        --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
        --customize-hook='rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED' \
        bookworm "$GIFT_TMP/rootfs.tar" \
        "deb $mirror bookworm main" "deb $mirror bookworm-updates main" "deb $security bookworm-security main"
    "$ENGINE" import --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' "$GIFT_TMP/rootfs.tar" "$DEBIAN_BASE" >/dev/null
    rm -rf "$GIFT_TMP"
    echo "base: $DEBIAN_BASE made from Debian bookworm packages ($mirror) in $((SECONDS - t0)) s"
}
case $base in
auto)
    if have "$PULLED" || timeout 600 "$ENGINE" pull "$PULLED" >/dev/null 2>&1; then
        echo "base: $PULLED"
        args+=(--build-arg "PYTHON_IMAGE=$PULLED")
    else
        debian_base
        args+=(--build-arg "PYTHON_IMAGE=$DEBIAN_BASE")
    fi
    ;;
pull) args+=(--build-arg "PYTHON_IMAGE=$PULLED") ;;
debian)
    debian_base
    args+=(--build-arg "PYTHON_IMAGE=$DEBIAN_BASE")
    ;;
*) args+=(--build-arg "PYTHON_IMAGE=$base") ;;
esac
if [ "$ENGINE" = podman ] && [ "$base" != pull ]; then
    args+=(--pull=never) # the base is here already (made, pulled or named); never ask a registry again
fi

# ---- the host's pip sources (its find-links only for the CPU image: a local torch wheel there is the
# +cpu build, which the CUDA image must not get)
if [ "$host_pip" = 1 ]; then
    gift_host_pip "$([ "$target" = cpu ] && echo find-links)"
    if [ ${#HOST_PIP_LINES[@]} -gt 0 ]; then
        if [ "$ENGINE" = podman ]; then
            args+=("${HOST_PIP_MOUNTS[@]}")
            printf 'pip in the build (from this host): %s\n' "${HOST_PIP_LINES[@]}"
        else
            echo "note: docker build cannot mount this host's pip sources (${HOST_PIP_LINES[*]}); the build uses the public indexes"
        fi
    fi
fi

# ---- torch's CPU wheel
if [ "$target" = cpu ]; then
    torch_index=${TORCH_INDEX_URL-$(sed -n 's/^ARG TORCH_INDEX_URL=//p' Dockerfile)}
    if [ -n "$torch_index" ]; then
        if command -v curl >/dev/null 2>&1; then
            probe=(curl -sSf --max-time 15 -o /dev/null "$torch_index/torch/")
        else
            probe=(python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=15)' "$torch_index/torch/")
        fi
        if ! "${probe[@]}" >/dev/null 2>&1; then
            echo "note: $torch_index does not answer: built without it, so torch's +cpu wheel must come from pip's sources"
            torch_index=
        fi
    fi
    args+=(--build-arg "TORCH_INDEX_URL=$torch_index")
fi

echo "+ $ENGINE build ${args[*]} $* ."
t0=$SECONDS
"$ENGINE" build "${args[@]}" "$@" .
size=$("$ENGINE" image inspect --format '{{.Size}}' "$tag")
echo "built $tag with $ENGINE in $((SECONDS - t0)) s: $((size / 1000000)) MB"
echo "$tag"

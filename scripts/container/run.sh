#!/usr/bin/env bash
# Run the workflow's image with podman or docker (see engine.sh), ./results mounted as the workflow's
# results/ (docs/environments.md). Without a command the image runs its default, `snakemake --cores all`.
#
#   scripts/container/run.sh [--image NAME] [--results DIR] [--sandbox-namespaces] [--host-pip]
#                            [-- COMMAND ...]
#
# --sandbox-namespaces: give the container CAP_SYS_ADMIN (and, for docker on an AppArmor host, no
#   AppArmor profile) so that the execution sandbox gets its net+pid+mount namespaces inside it; without
#   it the sandbox falls back (docs/execution.md) and each job that executes code logs a warning.
# --host-pip: the container's pip uses this host's index URLs and CA bundle (engine.sh, gift_host_pip),
#   e.g. to check that the CUDA target's pins resolve: -- pip install --dry-run --ignore-installed ...
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/container/engine.sh

version=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
image=ghcr.io/gift-pipeline/gift-pipeline:$version-cpu results=results namespaces=0 host_pip=0
while [ $# -gt 0 ]; do
    case $1 in
    --image) image=${2:?--image needs a name}; shift 2 ;;
    --results) results=${2:?--results needs a folder}; shift 2 ;;
    --sandbox-namespaces) namespaces=1; shift ;;
    --host-pip) host_pip=1; shift ;;
    --) shift; break ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) gift_die "unknown argument $1 (--help lists them)" ;;
    esac
done
gift_engine
mkdir -p "$results"
# --init: a small init as PID 1 forwards signals (stop, Ctrl-C) to snakemake and reaps orphans
args=(--rm --init -v "$(cd "$results" && pwd):/opt/gift/results")
if [ "$namespaces" = 1 ]; then
    args+=(--cap-add SYS_ADMIN)
    if [ "$ENGINE" = docker ] && [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ]; then
        args+=(--security-opt apparmor=unconfined) # docker's default AppArmor profile forbids mount
    fi
fi
if [ "$host_pip" = 1 ]; then
    gift_host_pip "" # no find-links: a local torch wheel is a build's business
    args+=("${HOST_PIP_MOUNTS[@]}")
fi
"$ENGINE" run "${args[@]}" "$image" "$@"

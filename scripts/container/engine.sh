# shellcheck shell=bash
# Sourced by build.sh and run.sh: which container engine runs, and what podman needs on this host.
# GIFT_CONTAINER_ENGINE=podman|docker picks one; otherwise podman if it is installed, else docker.

gift_die() {
    echo "error: $*" >&2
    exit 1
}

# A temporary folder (its path in GIFT_TMP), removed when the script exits.
GIFT_TMPS=()
trap 'rm -rf "${GIFT_TMPS[@]}"' EXIT
gift_tmpdir() {
    GIFT_TMP=$(mktemp -d)
    GIFT_TMPS+=("$GIFT_TMP")
}

gift_engine() {
    ENGINE=${GIFT_CONTAINER_ENGINE:-}
    if [ -z "$ENGINE" ]; then
        if command -v podman >/dev/null 2>&1; then
            ENGINE=podman
        elif command -v docker >/dev/null 2>&1; then
            ENGINE=docker
        else
            gift_die "neither podman nor docker is installed (Debian: apt-get install podman runc)"
        fi
    fi
    command -v "$ENGINE" >/dev/null 2>&1 || gift_die "GIFT_CONTAINER_ENGINE=$ENGINE is not installed"
    case $ENGINE in podman | docker) ;; *) gift_die "GIFT_CONTAINER_ENGINE must be podman or docker, not $ENGINE" ;; esac
    if [ "$ENGINE" = docker ] && ! docker info >/dev/null 2>&1; then
        gift_die "docker cannot reach its daemon (is dockerd running?); podman needs none"
    fi
    if [ "$ENGINE" = podman ] && [ -z "${CONTAINERS_CONF:-}" ]; then
        gift_podman_conf
    fi
}

# Rootful podman gives a container nofile=1048576 and nproc=4194304 by default and lowers its own
# process limit to 32768 when it starts (strace: setrlimit(RLIMIT_NPROC, 32768)). Without
# CAP_SYS_RESOURCE (a root that may not raise a hard limit, as on a VM like this project's) every
# container then fails to start ("error setting rlimits"). For that case this writes a containers.conf
# with limits the engine may set (the host's hard nofile, nproc at most 32768), the runc runtime (crun
# rejects a mixed cgroup v1/v2 host) and cgroupfs where systemd does not run, and names it in
# CONTAINERS_CONF for this script's podman commands only. A CONTAINERS_CONF of your own is left alone.
gift_podman_conf() {
    [ "$(id -u)" = 0 ] || return 0
    local caps nofile nproc
    caps=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status 2>/dev/null)
    if [ -n "$caps" ] && (((0x$caps >> 24) & 1)); then
        return 0 # CAP_SYS_RESOURCE: podman's defaults start
    fi
    nofile=$(ulimit -Hn)
    nproc=$(ulimit -Hu)
    if [ "$nofile" = unlimited ] || [ "$nofile" -gt 1048576 ]; then nofile=1048576; fi
    if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then nproc=32768; fi
    gift_tmpdir
    {
        echo "[containers]"
        echo "default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]"
        echo "[engine]"
        if command -v runc >/dev/null 2>&1; then echo 'runtime = "runc"'; fi
        if [ ! -d /run/systemd/system ]; then echo 'cgroup_manager = "cgroupfs"'; fi
    } >"$GIFT_TMP/containers.conf"
    export CONTAINERS_CONF=$GIFT_TMP/containers.conf
}

# This host's pip sources for a container's pip: HOST_PIP_LINES (the pip.conf lines) and HOST_PIP_MOUNTS
# (-v arguments: that pip.conf as /etc/pip.conf and, read-only under one neutral folder, the local
# find-links folders and the CA bundle it names). From `pip config list` and PIP_* variables: http(s)
# index URLs, the CA bundle (a machine whose TLS is intercepted reaches PyPI only with it), trusted
# hosts, the timeout, and with the argument find-links also local find-links folders. No path of this
# host is named inside the container; podman build leaves the empty mount points in the image.
gift_host_pip() {
    local with_links=${1:-} stage=/run/gift-build conf name value url loc keep mounts=()
    HOST_PIP_LINES=() HOST_PIP_MOUNTS=()
    command -v python3 >/dev/null 2>&1 || return 0
    # name=value for each setting pip would use here: a PIP_* variable first, then its config files
    conf=$(
        python3 - <<'EOF'
import subprocess, sys
out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
seen = {}
for line in out.splitlines():
    key, _, value = line.partition("=")
    scope, _, name = key.rpartition(".")
    value = value.strip().strip("'\"")
    rank = 0 if scope == ":env:" else 1 if scope == "install" else 2
    if name and value and rank <= seen.get(name, (9,))[0]:
        seen[name] = (rank, value)
for name in ("index-url", "extra-index-url", "find-links", "cert", "trusted-host", "default-timeout"):
    if name in seen:
        print(f"{name}={seen[name][1]}")
EOF
    )
    while IFS='=' read -r name value; do
        keep=()
        case $name in
        index-url | extra-index-url)
            for url in $value; do case $url in http://* | https://*) keep+=("$url") ;; esac; done
            ;;
        find-links)
            [ -n "$with_links" ] || continue
            for loc in $value; do
                loc=${loc#file://}
                case $loc in
                http://* | https://*) keep+=("$loc") ;;
                /*) if [ -d "$loc" ]; then
                    keep+=("$stage/links${#mounts[@]}")
                    mounts+=(-v "$loc:$stage/links${#mounts[@]}:ro")
                fi ;;
                esac
            done
            ;;
        cert)
            if [ -f "$value" ]; then
                keep+=("$stage/ca.crt")
                mounts+=(-v "$(readlink -f "$value"):$stage/ca.crt:ro")
            fi
            ;;
        trusted-host | default-timeout) keep+=("$value") ;;
        esac
        [ ${#keep[@]} -eq 0 ] || HOST_PIP_LINES+=("$name = ${keep[*]}")
    done <<<"$conf"
    [ ${#HOST_PIP_LINES[@]} -gt 0 ] || return 0
    gift_tmpdir
    printf '%s\n' "[global]" "${HOST_PIP_LINES[@]}" >"$GIFT_TMP/pip.conf"
    # shellcheck disable=SC2034 # read by the scripts that source this file
    HOST_PIP_MOUNTS=(-v "$GIFT_TMP/pip.conf:/etc/pip.conf:ro" "${mounts[@]}")
}

# Shared helpers for the peer build scripts; sourced, never run.
# Each peer lands in "$PEERS_DIR/<name>-<version>/" and is marked done by a
# ".complete" file, so a second run is a no-op. Builds happen in a
# "<dir>.partial" folder that is renamed only on success.

PEERS_DIR="${GATETRACE_PEERS_DIR:-$HOME/.cache/gatetrace-peers}"
PEERS_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.sh
source "$PEERS_SRC/versions.sh"
export GOTOOLCHAIN=local
mkdir -p "$PEERS_DIR"

log() { printf '[peers %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# peer_begin NAME VERSION: sets DEST and WORK; exits 0 at once if DEST is complete.
peer_begin() {
    DEST="$PEERS_DIR/$1-$2"
    WORK="$DEST.partial"
    if [[ -f "$DEST/.complete" ]]; then
        log "$1 $2: cached in $DEST"
        exit 0
    fi
    exec 9>"$DEST.lock"
    flock 9
    if [[ -f "$DEST/.complete" ]]; then
        log "$1 $2: built by another run in $DEST"
        exit 0
    fi
    rm -rf "$WORK"
    mkdir -p "$WORK"
    PEER_START=$(date +%s)
    log "$1 $2: building in $WORK"
}

# peer_end: records the cold build time and publishes WORK as DEST.
peer_end() {
    local seconds=$(($(date +%s) - PEER_START))
    echo "$seconds" >"$WORK/build-seconds"
    date -u +%Y-%m-%dT%H:%M:%SZ >"$WORK/.complete"
    rm -rf "$DEST"
    mv "$WORK" "$DEST"
    log "$(basename "$DEST"): done in ${seconds}s"
}

# heavy CMD...: runs a CPU-heavy step at the lowest priority.
heavy() { nice -n 19 "$@"; }

# kube_wrapper_module DIR: writes DIR/go.mod, a wrapper module that requires
# k8s.io/kubernetes@$KUBE_VERSION. k8s.io/kubernetes cannot be `go install`ed: its
# go.mod requires the staging modules at v0.0.0 and replaces them with local paths,
# so the wrapper replaces each of them with its published v0.<minor>.<patch>.
# Sets KUBE_LDFLAGS (version stamps) and exports the Go build flags.
kube_wrapper_module() {
    local mod="$1" ver="$KUBE_VERSION" gomod staging p
    local minor_patch="${KUBE_VERSION#v1.}"
    local minor="${minor_patch%%.*}"
    mkdir -p "$mod"
    gomod=$(cd "$mod" && go mod download -json "k8s.io/kubernetes@$ver" | sed -n 's/^\s*"GoMod": "\(.*\)",\?$/\1/p')
    staging=$(awk '$2 == "v0.0.0" && $1 ~ /^k8s\.io\// {print $1}' "$gomod" | sort -u)
    [[ -n "$staging" ]] || { log "no v0.0.0 staging modules found in $gomod"; return 1; }
    {
        echo "module gatetrace.local/peers/kube"
        echo
        echo "go 1.24.0"
        echo
        echo "require k8s.io/kubernetes $ver"
        echo
        echo "replace ("
        for m in $staging; do echo "    $m => $m v0.$minor_patch"; done
        echo ")"
    } >"$mod/go.mod"
    KUBE_LDFLAGS="-s -w"
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        KUBE_LDFLAGS+=" -X $p.gitVersion=$ver -X $p.gitMajor=1 -X $p.gitMinor=$minor"
        KUBE_LDFLAGS+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
    done
    export GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
}

# kube_build MOD OUTDIR CMD...: builds k8s.io/kubernetes/cmd/CMD from the wrapper
# module MOD into OUTDIR, recording each binary's build time.
kube_build() {
    local mod="$1" out="$2" cmd t0
    shift 2
    for cmd in "$@"; do
        t0=$(date +%s)
        (cd "$mod" && heavy go build -trimpath -ldflags "$KUBE_LDFLAGS" -o "$out/$cmd" "k8s.io/kubernetes/cmd/$cmd")
        echo "$cmd $(($(date +%s) - t0))" >>"$WORK/build-seconds-per-binary"
    done
}

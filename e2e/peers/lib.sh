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

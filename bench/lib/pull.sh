# shellcheck shell=bash
# Figure module `pull` (issue 5's benchmark): pulling a multi-layer image of over 100 MB from a
# local registry (Debian's docker-registry, inside the sandbox host on 127.0.0.1:5000, started
# and killed by this module) with `berth pull`, beside
#   skopeo        `skopeo copy docker://... dir:D`: download and verify, no unpacking (the
#                 issue's peer; goal: berth at most 1.0x of it)
#   skopeo+tar    the same then `tar -xzf` of every layer in order: download and unpack, what
#                 `berth pull` does (it unpacks while downloading and verifies the diff_ids)
#   podman        `podman pull` (downloads and unpacks into its storage), when installed
# Every run starts from an empty destination (prepare: remove the previous one, untimed), on
# tmpfs (/dev/shm): on ext4, creating thousands of files right after deleting thousands makes
# inode allocation scan recently deleted inodes (ext4 `recently_deleted`), which swamps the
# figure with noise that depends on the previous run, not on the engine.
# The image (bench/pull_image.py: one gzip layer per host directory, real binaries and text)
# is built once and cached under target/bench-fixtures/pull-{full,quick}; quick mode uses a
# small one (one ~17 MB layer) so `make bench-quick` stays short.
# Sourced by bench/bench.sh; defines pull_figures, which writes pull-ENGINE hyperfine JSON into
# $BENCH_JSON_DIR and pull-image.json (layer sizes) into $BENCH_WORK.

PULL_PORT=5000
PULL_REF=127.0.0.1:$PULL_PORT/bench/pull:latest

pull_layout() {
    local dirs out
    if [ "$mode" = full ]; then
        dirs="/usr/lib/gcc /usr/share/locale /usr/lib/python3.11 /usr/share/doc"
        out=$PWD/target/bench-fixtures/pull-full
    else
        dirs="/usr/lib/python3.11"
        out=$PWD/target/bench-fixtures/pull-quick
    fi
    if [ ! -f "$out/index.json" ]; then
        rm -rf "$out"
        # shellcheck disable=SC2086
        /usr/bin/python3 "$here/pull_image.py" "$out" $dirs >&2
    fi
    echo "$out"
}

pull_registry_start() {
    local d=$BENCH_WORK/registry
    mkdir -p "$d/data"
    cat >"$d/config.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $d/data
http:
  addr: 127.0.0.1:$PULL_PORT
log:
  level: error
  accesslog:
    disabled: true
YML
    in_ns docker-registry serve "$d/config.yml" >"$d/log" 2>&1 &
    bench_track_pid $!
    local i
    for i in $(seq 50); do
        in_ns ss -Htln "sport = :$PULL_PORT" | grep -q . && return 0
        sleep 0.1
    done
    echo "bench: docker-registry did not start: $(cat "$d/log")" >&2
    return 1
}

pull_cleanup() {
    [ -z "${PULL_DIR:-}" ] || rm -rf "$PULL_DIR"
    return 0
}

pull_figures() {
    command -v docker-registry >/dev/null || { skip_note "pull: $(absent_reason docker-registry)"; return 0; }
    local layout d
    layout=$(pull_layout)
    d=$(mktemp -d /dev/shm/berth-bench-pull.XXXXXX)
    PULL_DIR=$d
    BENCH_CLEANUP_HOOKS+=(pull_cleanup)
    pull_registry_start
    in_ns skopeo copy -q --dest-tls-verify=false "oci:$layout:latest" "docker://$PULL_REF" >&2
    jq '[.layers[] | {digest, size}]' "$layout/blobs/sha256/$(jq -r '.manifests[0].digest' "$layout/index.json" | cut -d: -f2)" \
        >"$BENCH_WORK/pull-image.json"
    measure_prepared pull-berth "rm -rf $d/berth" \
        "nsenter --net=/run/netns/$BENCH_NS $berth_bin --root $d/berth --runroot $BENCH_RUNROOT/pull pull -q --tls-verify=false $PULL_REF >/dev/null"
    measure_prepared pull-skopeo "rm -rf $d/skopeo" \
        "nsenter --net=/run/netns/$BENCH_NS skopeo copy -q --src-tls-verify=false docker://$PULL_REF dir:$d/skopeo"
    measure_prepared pull-skopeo-tar "rm -rf $d/skopeo-tar $d/rootfs" \
        "nsenter --net=/run/netns/$BENCH_NS skopeo copy -q --src-tls-verify=false docker://$PULL_REF dir:$d/skopeo-tar && mkdir $d/rootfs && for l in \$(jq -r '.layers[].digest' $d/skopeo-tar/manifest.json); do tar -xzf $d/skopeo-tar/\${l#sha256:} -C $d/rootfs || exit 1; done"
    if command -v podman >/dev/null; then
        podman_setup "$BENCH_WORK/fixtures/web.docker.tar"
        peer_runs measure_prepared pull-podman "$(podman_line rmi -f "$PULL_REF") >/dev/null 2>&1 || true" \
            "$(podman_line pull -q --tls-verify=false "$PULL_REF") >/dev/null"
    else
        skip_note "pull: $(absent_reason podman)"
    fi
    rm -rf "$d"
}

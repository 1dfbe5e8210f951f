# shellcheck shell=bash
# Wall-time measurement of one command line, written as hyperfine's --export-json shape
# ({"results":[{"command","times":[s...],"median","min","max","mean",...}]}, seconds) so the
# report reads one format. Sourced by bench/bench.sh; defines:
#   measure NAME CMDLINE      writes $BENCH_JSON_DIR/NAME.json (and NAME.cmd, the command
#                             line); needs BENCH_RUNS, BENCH_WARMUP
#   measure_prepared NAME PREPARE CMDLINE
#                             the same, with PREPARE run (untimed) before every run, warmups
#                             included (hyperfine --prepare); e.g. `rm -f` before a timed `run`
# hyperfine is used when installed; otherwise a bash loop timed with `date +%s%N` (same
# warmup/runs, no shell-spawn correction, so it reads ~1 ms high per run).

measure() {
    measure_prepared "$1" "" "$2"
}

measure_prepared() {
    local name=$1 prepare=$2 cmdline=$3 out=$BENCH_JSON_DIR/$1.json
    echo "bench: measuring $name ($BENCH_RUNS runs): $cmdline${prepare:+ (prepared by: $prepare)}" >&2
    echo "$cmdline" >"$BENCH_JSON_DIR/$name.cmd"
    # bench.sh fails a run that timed no berth command (peers may skip, berth never).
    case $cmdline in *"$berth_bin"*) BENCH_BERTH_TIMED=$((${BENCH_BERTH_TIMED:-0} + 1)) ;; esac
    # One visible run first, so a failing command shows its own error (hyperfine hides it).
    [ -z "$prepare" ] || bash -c "$prepare" </dev/null >/dev/null 2>&1
    bash -c "$cmdline" </dev/null >&2 || {
        echo "bench: $name failed (exit $?): $cmdline" >&2; return 1; }
    if command -v hyperfine >/dev/null; then
        hyperfine --style basic --warmup "$BENCH_WARMUP" --runs "$BENCH_RUNS" \
            ${prepare:+--prepare "$prepare"} \
            --command-name "$name" --export-json "$out" "$cmdline" >&2
    else
        BENCH_PREPARE=$prepare measure_loop "$name" "$cmdline" >"$out"
    fi
}

# The fallback: every run must exit 0 (as hyperfine requires); prints the JSON on stdout.
# BENCH_PREPARE, when set, runs untimed before every run (its failure is ignored).
measure_loop() {
    local name=$1 cmdline=$2 i t0 t1 times=() prepare=${BENCH_PREPARE:-true}
    for ((i = 0; i < BENCH_WARMUP; i++)); do
        bash -c "$prepare" </dev/null >/dev/null 2>&1
        bash -c "$cmdline" </dev/null >/dev/null 2>&1 || {
            echo "bench: warmup of $name failed: $cmdline" >&2; return 1; }
    done
    for ((i = 0; i < BENCH_RUNS; i++)); do
        bash -c "$prepare" </dev/null >/dev/null 2>&1
        t0=$(date +%s%N)
        bash -c "$cmdline" </dev/null >/dev/null 2>&1 || {
            echo "bench: run $i of $name failed: $cmdline" >&2; return 1; }
        t1=$(date +%s%N)
        times+=("$((t1 - t0))")
    done
    printf '%s\n' "${times[@]}" | jq -s --arg name "$name" --arg cmd "$cmdline" '
        map(. / 1e9) as $t | ($t | sort) as $s | ($s | length) as $n |
        {results: [{command: $name, command_line: $cmd, times: $t,
            mean: ($t | add / $n), min: $s[0], max: $s[-1],
            median: (if $n % 2 == 1 then $s[($n - 1) / 2]
                     else ($s[$n / 2 - 1] + $s[$n / 2]) / 2 end),
            fallback: "bash loop, date +%s%N"}]}'
}

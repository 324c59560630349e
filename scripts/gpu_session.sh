#!/usr/bin/env bash
# A GPU lease's work, from the repo root (see DEVELOPERS.md):
#   source .devbundle/setup.sh && bash scripts/gpu_session.sh STEP [ARGS]
# Steps:
#   all [SECONDS]          the whole session in one call, ending by itself before SECONDS (default 540):
#                          tests, bench, then learning runs (start) for every second but RESERVE, then
#                          finish; each step in a process of its own under `timeout`, a line with its
#                          time in session.log, its stderr in stderr.log
#   tests                  CUDA tests (pytest -m gpu)
#   bench                  `mdpo bench` of each algorithm of BENCH against the simple configuration and, for
#                          MDPO, of each lever of COMPARE, in one process (tables on stdout, bench.jsonl)
#   check                  tests and bench (check.log)
#   start STEPS [FLAGS]    train ALGOS x SEEDS on GAME in the background, side by side, STEPS env steps
#                          per agent, FLAGS passed to `mdpo train`; a run that exists (or was restored from
#                          RESTORE_DIR) is resumed up to STEPS
#   poll [SECONDS]         wait (so the machine stays held), then one line per run: steps, returns, state
#   finish [SECONDS]       stop the runs (each writes a checkpoint), give the unfinished ones their final
#                          evaluation at the steps they reached, write `mdpo report` (of every run, the
#                          unfinished ones with their curves only), and pack into $OUT:
#                          results.tar.gz (run folders without checkpoints, logs, report) and
#                          checkpoints.tar.part-* (15 MB parts; carry them back as RESTORE_DIR to extend);
#                          with SECONDS, within that time (an evaluation that would overrun is cut short)
# Settings (environment variables; defaults in the lines below): GAME, PRESET, ALGOS, SEEDS, TRAIN_FLAGS and
# RUN_STEPS for the learning runs; BENCH_GAME, BENCH_PRESET, BENCH, BENCH_FLAGS (KEY=VALUE ...) and COMPARE
# (levers, e.g. "perf.micro_batch=128 perf.tf32=true perf.amp=bf16 perf.compile=true") for the bench; TESTS
# and TESTS_SKIP (a -k expression left out) for pytest; RESERVE, the seconds `all` keeps for finish; PYTHON;
# BUNDLE_SITE, where setup.sh unpacked the bundle (/tmp/site). An empty TESTS, or BENCH and COMPARE, leaves
# that step's work out.
set -euo pipefail

PY=${PYTHON:-python3}
# The envpool bundle that .devbundle/setup.sh unpacked on this machine in an earlier call, so that a
# call may carry .gpu-runs instead of the bundle (both together are over the 64 MB a call carries).
# Only for a Python without envpool of its own: a bundle unpacked for a rehearsal here is for 3.12.
SITE=${BUNDLE_SITE:-/tmp/site}
if [[ -d $SITE/envpool && ":${PYTHONPATH:-}:" != *:$SITE:* ]] &&
  ! "$PY" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("envpool") is None)' 2>/dev/null; then
  export PYTHONPATH=$SITE:$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
  export LD_LIBRARY_PATH=$SITE/qtlibs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi

GAME=${GAME:-starpilot}
PRESET=${PRESET:-cleanrl}
SEEDS=${SEEDS:-1}
ALGOS=${ALGOS:-ppo mdpo}
TRAIN_FLAGS=${TRAIN_FLAGS---eval.every 20}
RUN_STEPS=${RUN_STEPS:-25000000}  # what the learning runs of `all` aim at; the time is up long before
BENCH_GAME=${BENCH_GAME:-bigfish}
BENCH_PRESET=${BENCH_PRESET:-paper}
BENCH=${BENCH-ppo mdpo}
BENCH_FLAGS=${BENCH_FLAGS:-}
COMPARE=${COMPARE:-}
TESTS=${TESTS-tests/test_gpu.py}
TESTS_SKIP=${TESTS_SKIP-compiled}  # compiling takes 1-2 minutes; TESTS_SKIP= runs every test
RESERVE=${RESERVE:-100}
RUNS_DIR=${RUNS_DIR:-/tmp/mdpo-gpu/runs}
RESTORE_DIR=${RESTORE_DIR:-.gpu-runs}
OUT=${OUT:-/tmp/mdpo-gpu/out}
mkdir -p "$RUNS_DIR" "$OUT"

runs() {  # the run names, one per algorithm and seed
  for algo in $ALGOS; do for seed in $SEEDS; do echo "$GAME-$algo-s$seed"; done; done
}

alive() { [[ -f "$RUNS_DIR/$1.pid" ]] && kill -0 "$(cat "$RUNS_DIR/$1.pid")" 2>/dev/null; }

any_alive() {
  local name
  for name in $(runs); do alive "$name" && return 0; done
  return 1
}

wait_for_runs() {  # until every run has exited, or for $1 seconds at most
  local until=$((SECONDS + $1))
  while any_alive && ((SECONDS < until)); do sleep 1; done
}

tests() {
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())'
  [[ -z $TESTS ]] && return
  # shellcheck disable=SC2086  # TESTS: pytest arguments
  "$PY" -m pytest -q -m gpu -p no:cacheprovider ${TESTS_SKIP:+-k "not ($TESTS_SKIP)"} $TESTS 2>&1
}

bench() {  # one process for all configurations: a fresh one costs a minute of start-up and warm-up
  [[ -z $BENCH$COMPARE ]] && return
  "$PY" - "$OUT/bench.jsonl" "$BENCH_GAME" "$BENCH_PRESET" "$BENCH" "$COMPARE" "$BENCH_FLAGS" <<'EOF'
import json, sys, traceback
from mdpo.bench import bench, format_table, with_overrides
from mdpo.resolve import resolve
path, game, preset, algos, levers, flags = sys.argv[1:]
runs = [(algo, None) for algo in algos.split()] + [("mdpo", [lever]) for lever in levers.split()]
for algo, compare in runs:
    try:
        result = bench(with_overrides(resolve(preset, algo, {"env.game": game}), flags.split()), compare=compare)
    except Exception:
        print(f"mdpo bench of {algo} {' '.join(compare or [])} failed", flush=True)
        traceback.print_exc()
        continue
    with open(path, "a") as out:
        out.write(json.dumps(result) + "\n")
    print(format_table(result) + "\n", flush=True)
EOF
}

check() {
  { tests; bench; } | tee "$OUT/check.log"
}

start() {
  local steps=${1:?start needs STEPS, the env steps per agent}; shift
  # runs carried back from an earlier session, unpacked once: a second start must not overwrite live runs
  if compgen -G "$RESTORE_DIR/checkpoints.tar.part-*" >/dev/null && ! compgen -G "$RUNS_DIR/*/config.json" >/dev/null
  then
    tar xzf "$RESTORE_DIR/results.tar.gz" -C "$RUNS_DIR" --exclude report
    cat "$RESTORE_DIR"/checkpoints.tar.part-* | tar xf - -C "$RUNS_DIR"
  fi
  local names agents=0 name algo seed
  names=$(runs)
  for name in $names; do [[ $name == *-md* ]] && agents=$((agents + 2)) || agents=$((agents + 1)); done
  local threads=$(( $(nproc) / agents )); (( threads >= 1 )) || threads=1
  local extra=("$@") args
  for name in $names; do
    alive "$name" && { echo "$name: already running"; continue; }
    algo=${name#"$GAME"-}; algo=${algo%-s*}; seed=${name##*-s}
    if [[ -f "$RUNS_DIR/$name/checkpoint.pt" ]]; then
      args=(--resume "$RUNS_DIR/$name")
    else
      args=(--preset "$PRESET" --algo "$algo" --game "$GAME" --seed "$seed" --out_dir "$RUNS_DIR" --run_name "$name"
            --torch_threads 1)
    fi
    setsid nohup "$PY" -m mdpo.cli train "${args[@]}" --total_steps "$steps" --env.num_threads "$threads" --quiet \
      "${extra[@]}" >>"$RUNS_DIR/$name.log" 2>&1 </dev/null &
    echo $! >"$RUNS_DIR/$name.pid"
    echo "$name: started ($threads env threads per agent)"
  done
}

poll() {
  sleep "${1:-0}"
  local name states=()
  for name in $(runs); do states+=("$RUNS_DIR/$name" "$(alive "$name" && echo running || echo stopped)"); done
  "$PY" - "${states[@]}" <<'EOF'
import sys
from pathlib import Path
from mdpo.logger import read_metrics
for run, state in zip(map(Path, sys.argv[1::2]), sys.argv[2::2]):
    lines = read_metrics(run) if run.is_dir() else []
    last = lambda key: next((m[key] for m in reversed(lines) if m.get(key) is not None), None)
    fmt = lambda v: "-" if v is None else f"{v:.2f}"
    step = lines[-1]["global_step"] if lines else 0
    done = "finished" if (run / "eval.json").exists() else state
    print(f"{run.name}: {step:,} steps, SPS {fmt(last('charts/SPS'))}, train return {fmt(last('charts/episodic_return'))}, "
          f"eval train {fmt(last('eval/train_return'))} test {fmt(last('eval/test_return'))}, {done}")
EOF
  for name in $(runs); do
    alive "$name" || [[ -f "$RUNS_DIR/$name/eval.json" ]] || tail -n 2 "$RUNS_DIR/$name.log" 2>/dev/null || true
  done
}

stop_runs() {  # SIGTERM (a run finishes its update and writes a checkpoint), SIGKILL after $1 seconds
  local name
  for name in $(runs); do alive "$name" && kill -TERM "$(cat "$RUNS_DIR/$name.pid")"; done
  wait_for_runs "$1"
  for name in $(runs); do alive "$name" && kill -KILL "$(cat "$RUNS_DIR/$name.pid")"; done
  return 0
}

finish() {
  local limit=${1:-3600} begun=$SECONDS name reached
  left() { echo $((limit - (SECONDS - begun))); }
  at() { echo "finish: $* at $((SECONDS - begun)) s"; }
  stop_runs $((limit / 4))
  at "runs stopped"
  # final evaluation where the run was stopped before its end, at the steps it reached
  "$PY" - "$RUNS_DIR" $(runs) <<'EOF' | while read -r name reached; do
import sys
from pathlib import Path
from mdpo.runs import load_checkpoint
for name in sys.argv[2:]:
    run = Path(sys.argv[1], name)
    if (run / "checkpoint.pt").exists() and not (run / "eval.json").exists():
        print(name, load_checkpoint(run)["global_step"])
EOF
    "$PY" -m mdpo.cli train --resume "$RUNS_DIR/$name" --total_steps "$reached" --quiet >>"$RUNS_DIR/$name.log" 2>&1 &
    echo $! >"$RUNS_DIR/$name.pid"
  done
  local tail=$((limit / 5 > 12 ? limit / 5 : 12))  # for the report (and a poll beside it) and the packing
  wait_for_runs $(($(left) - tail))
  stop_runs 5
  at "final evaluations done"
  poll 0 >"$RUNS_DIR/poll.txt" &
  local kept=() report=$(($(left) - 5))  # the packing takes a second or two
  for name in $(runs); do [[ -f "$RUNS_DIR/$name/config.json" ]] && kept+=("$name"); done
  # the report takes unfinished runs too (their curves, no final returns)
  (( ${#kept[@]} )) && (cd "$RUNS_DIR" && timeout -k 5 $((report > 5 ? report : 5)) "$PY" -m mdpo.cli report \
    "${kept[@]}" --out report) || echo "no report: no run, or the report ran out of time"
  wait
  cat "$RUNS_DIR/poll.txt"
  at "report written"
  (cd "$RUNS_DIR" && tar czf "$OUT/results.tar.gz" --exclude checkpoint.pt --exclude '*.pid' --exclude .lock \
    "${kept[@]}" $(ls -d ./*.log report 2>/dev/null))
  local checkpoints
  checkpoints=$(cd "$RUNS_DIR" && for name in "${kept[@]}"; do ls "$name/checkpoint.pt" 2>/dev/null || true; done)
  [[ -n $checkpoints ]] && (cd "$RUNS_DIR" && tar cf - $checkpoints | split -b 15m - "$OUT/checkpoints.tar.part-")
  ls -l "$OUT"
}

all() {
  local budget=${1:-540} begun=$SECONDS
  SESSION_LOG=$OUT/session.log
  left() { echo $((budget - (SECONDS - begun))); }
  log() { echo "[$(date +%T)] $*" | tee -a "$SESSION_LOG"; }
  timed() {  # STEP LIMIT [ARGS]: STEP of this script, a process of its own, under `timeout LIMIT`
    local step=$1 limit=$2 started=$SECONDS code; shift 2
    if (( limit < 5 )); then log "$step: skipped, no time left"; return; fi
    echo "== $step, $(date +%T) ==" >>"$OUT/stderr.log"
    if timeout -k 10 "$limit" bash "$0" "$step" "$@" 2>>"$OUT/stderr.log" | tee -a "$SESSION_LOG"
    then code=0; else code=${PIPESTATUS[0]}; fi
    log "$step: $((SECONDS - started)) s (limit $limit s, exit $code$( ((code == 124)) && echo ', timed out'));" \
      "$((SECONDS - begun)) of $budget s used"
  }
  log "session of $budget s: tests, bench, learning runs ($ALGOS on $GAME, $PRESET preset), finish ($RESERVE s)"
  trap 'stop_runs 0' EXIT
  # tests, then bench, take at most 150 s, a third, then two thirds, of what the finish leaves: learning keeps the rest
  timed tests $(( ($(left) - RESERVE) / 3 < 150 ? ($(left) - RESERVE) / 3 : 150 ))
  timed bench $(( ($(left) - RESERVE) * 2 / 3 < 150 ? ($(left) - RESERVE) * 2 / 3 : 150 ))
  # shellcheck disable=SC2086  # TRAIN_FLAGS: flags
  timed start 30 "$RUN_STEPS" $TRAIN_FLAGS
  local learning=$SECONDS
  while any_alive && (( $(left) > RESERVE )); do
    sleep $(( $(left) - RESERVE < 60 ? $(left) - RESERVE : 60 ))
    if (( $(left) > RESERVE + 20 )); then poll 0 | tee -a "$SESSION_LOG"; fi
  done
  log "learning: $((SECONDS - learning)) s; $((SECONDS - begun)) of $budget s used"
  # finish runs whatever is left: the runs must stop and what they did come back
  timed finish $(( $(left) - 5 > 15 ? $(left) - 5 : 15 )) $(( $(left) - 15 > 10 ? $(left) - 15 : 10 ))
  log "session: $((SECONDS - begun)) of $budget s"
}

step=${1:?usage: gpu_session.sh all [SECONDS] | tests | bench | check | start STEPS [FLAGS] | poll [SECONDS] | finish [SECONDS]}
shift
case $step in
  all | tests | bench | check | start | poll | finish) "$step" "$@" ;;
  *) echo "unknown step $step; choose all, tests, bench, check, start, poll or finish" >&2; exit 2 ;;
esac

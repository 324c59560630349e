#!/usr/bin/env bash
# One GPU lease, in a few `device` runs of under 10 minutes each (see DEVELOPERS.md). From the repo root:
#   source .devbundle/setup.sh; bash scripts/gpu_session.sh STEP [ARGS]
# Steps:
#   check                  CUDA tests (pytest -m gpu), then `mdpo bench` of each of BENCH and, for MDPO,
#                          each lever of COMPARE against the default configuration (bench.log, bench.jsonl)
#   start STEPS [FLAGS]    train ALGOS x SEEDS on GAME in the background, side by side, STEPS env steps
#                          per agent, FLAGS passed to `mdpo train`; a run that exists (or was restored from
#                          RESTORE_DIR) is resumed up to STEPS
#   poll [SECONDS]         wait (so the machine stays held), then one line per run: steps, returns, state
#   finish                 stop the runs (each writes a checkpoint), give the unfinished ones their final
#                          evaluation at the steps they reached, write `mdpo report`, and pack into $OUT:
#                          results.tar.gz (run folders without checkpoints, logs, report) and
#                          checkpoints.tar.part-* (15 MB parts; carry them back as RESTORE_DIR to extend)
# The machine is given back 30 s after a call ends: issue the next call at once, or the runs are lost.
set -euo pipefail

# The envpool bundle that .devbundle/setup.sh unpacked on this machine in an earlier call, so that a
# call may carry .gpu-runs instead of the bundle (both together are over the 64 MB a call carries).
if [[ -d /tmp/site/envpool && ":${PYTHONPATH:-}:" != *:/tmp/site:* ]]; then
  export PYTHONPATH=/tmp/site:$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
  export LD_LIBRARY_PATH=/tmp/site/qtlibs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi

GAME=${GAME:-bigfish}
SEEDS=${SEEDS:-1 2}
ALGOS=${ALGOS:-ppo mdpo}
PRESET=${PRESET:-paper}
BENCH=${BENCH:-ppo mdpo}
COMPARE=${COMPARE:-perf.micro_batch=0 perf.batched_inference=false perf.tf32=true perf.amp=bf16 perf.compile=true}
RUNS_DIR=${RUNS_DIR:-/tmp/mdpo-gpu/runs}
RESTORE_DIR=${RESTORE_DIR:-.gpu-runs}
OUT=${OUT:-/tmp/mdpo-gpu/out}
PY=${PYTHON:-python3}
mdpo() { "$PY" -m mdpo.cli "$@"; }
mkdir -p "$RUNS_DIR" "$OUT"

runs() {  # the run names, one per algorithm and seed
  for algo in $ALGOS; do for seed in $SEEDS; do echo "$GAME-$algo-s$seed"; done; done
}

alive() { [[ -f "$RUNS_DIR/$1.pid" ]] && kill -0 "$(cat "$RUNS_DIR/$1.pid")" 2>/dev/null; }

check() {
  { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())'
    "$PY" -m pytest -q -m gpu -p no:cacheprovider tests/test_gpu.py 2>&1 || true
  } | tee "$OUT/check.log"
  local algo lever
  for algo in $BENCH; do
    mdpo bench --preset "$PRESET" --algo "$algo" --game "$GAME" --json >>"$OUT/bench.jsonl.tmp" ||
      echo "mdpo bench of $algo failed" | tee -a "$OUT/check.log"
  done
  for lever in $COMPARE; do
    mdpo bench --preset "$PRESET" --algo mdpo --game "$GAME" --compare "$lever" --json >>"$OUT/bench.jsonl.tmp" ||
      echo "mdpo bench of mdpo with $lever failed" | tee -a "$OUT/check.log"
  done
  # one JSON object per line, and the tables for people
  "$PY" - "$OUT/bench.jsonl.tmp" "$OUT/bench.jsonl" <<'EOF' | tee "$OUT/bench.log"
import json, sys
from mdpo.bench import format_table
text, decoder, pos, results = open(sys.argv[1]).read(), json.JSONDecoder(), 0, []
while text[pos:].strip():
    result, pos = decoder.raw_decode(text, text.index("{", pos))
    results.append(result)
with open(sys.argv[2], "w") as out:
    out.writelines(json.dumps(r) + "\n" for r in results)
print("\n\n".join(format_table(r) for r in results))
EOF
  rm -f "$OUT/bench.jsonl.tmp"
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
  local name
  for name in $(runs); do
    "$PY" - "$RUNS_DIR/$name" "$(alive "$name" && echo running || echo stopped)" <<'EOF'
import sys
from pathlib import Path
from mdpo.logger import read_metrics
run, state = Path(sys.argv[1]), sys.argv[2]
lines = read_metrics(run)
last = lambda key: next((m[key] for m in reversed(lines) if m.get(key) is not None), None)
fmt = lambda v: "-" if v is None else f"{v:.2f}"
step = lines[-1]["global_step"] if lines else 0
done = "finished" if (run / "eval.json").exists() else state
print(f"{run.name}: {step:,} steps, SPS {fmt(last('charts/SPS'))}, train return {fmt(last('charts/episodic_return'))}, "
      f"eval train {fmt(last('eval/train_return'))} test {fmt(last('eval/test_return'))}, {done}")
EOF
    alive "$name" || [[ -f "$RUNS_DIR/$name/eval.json" ]] || tail -n 2 "$RUNS_DIR/$name.log" 2>/dev/null || true
  done
}

finish() {
  local name
  for name in $(runs); do alive "$name" && kill -TERM "$(cat "$RUNS_DIR/$name.pid")"; done
  for name in $(runs); do while alive "$name"; do sleep 1; done; done
  for name in $(runs); do  # final evaluation where the run was stopped before its end
    [[ -f "$RUNS_DIR/$name/eval.json" || ! -f "$RUNS_DIR/$name/checkpoint.pt" ]] && continue
    local reached
    reached=$("$PY" -c 'import sys; from mdpo.runs import load_checkpoint; print(load_checkpoint(sys.argv[1])["global_step"])' \
      "$RUNS_DIR/$name")
    mdpo train --resume "$RUNS_DIR/$name" --total_steps "$reached" --quiet >>"$RUNS_DIR/$name.log" 2>&1 &
    echo $! >"$RUNS_DIR/$name.pid"
  done
  for name in $(runs); do while alive "$name"; do sleep 1; done; done
  poll 0
  local finished=() kept=()
  for name in $(runs); do
    [[ -d "$RUNS_DIR/$name" ]] && kept+=("$name")
    [[ -f "$RUNS_DIR/$name/eval.json" ]] && finished+=("$RUNS_DIR/$name")
  done
  (( ${#finished[@]} )) && mdpo report "${finished[@]}" --out "$RUNS_DIR/report"
  (cd "$RUNS_DIR" && tar czf "$OUT/results.tar.gz" --exclude checkpoint.pt --exclude '*.pid' --exclude .lock \
    "${kept[@]}" $(ls -d ./*.log report 2>/dev/null))
  local checkpoints
  checkpoints=$(cd "$RUNS_DIR" && for name in "${kept[@]}"; do ls "$name/checkpoint.pt" 2>/dev/null || true; done)
  [[ -n $checkpoints ]] && (cd "$RUNS_DIR" && tar cf - $checkpoints | split -b 15m - "$OUT/checkpoints.tar.part-")
  ls -l "$OUT"
}

step=${1:?usage: gpu_session.sh check | start STEPS [FLAGS] | poll [SECONDS] | finish}; shift
case $step in
  check | start | poll | finish) "$step" "$@" ;;
  *) echo "unknown step $step; choose check, start, poll or finish" >&2; exit 2 ;;
esac

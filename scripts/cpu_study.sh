#!/usr/bin/env bash
# The CPU learning studies of docs/results/cpu/, one run list per study:
#   minatar    PPO and MDPO on MinAtar's five games (the `minatar` preset), 1M env steps per agent
#   minigrid   PPO and MDPO on a MiniGrid train/test split (the `minigrid` preset)
#   pilot      PPO on MiniGrid tasks ($PILOT_TASKS) with few training layouts ($PILOT_LEVELS), tested on unseen
#              ones: where does PPO overfit (issue 28)?
#   generalization  PPO, PPO at 2x width (seeds $GEN_WIDE_SEEDS), MDPO, and MDPO with summed agent losses on
#              the pilot's task ($GEN_TASK, $GEN_LEVELS training layouts, $GEN_STEPS env steps per agent),
#              tested on unseen layouts (issue 28; report: `mdpo report`)
#   clip       why MDPO (mean of the agents' losses, the authors') learned slower there: PPO with the gradient
#              clip at 0.5 and at 1.0, and two-agent cohorts without distillation (alpha 0), mean and sum,
#              $CLIP_STEPS env steps per agent
#   reduce     MDPO with summed agent losses (`--cohort.reduce sum`) on the MinAtar games ($REDUCE_GAMES) where
#              the authors' MDPO (losses averaged) lags PPO: is it the looser gradient clip there too? With, on
#              seeds $REDUCE_CONTROL_SEEDS, the same cohort without distillation (alpha 0): two PPO agents
#   precision  PPO on MinAtar's Breakout and SpaceInvaders in bf16 (`--perf.amp bf16`), beside the minatar
#              study's float32 runs: does bf16 learn the same?
#   procgen    PPO and MDPO on StarPilot, easy mode, full distribution, the Procgen paper's settings (`--preset
#              cleanrl`), 1M env steps per agent, in bf16 (docs/results/cpu: what bf16 buys and whether it learns
#              the same), a checkpoint every 5 updates (~80k env steps)
#   gap        why that PPO lies above the Procgen authors' curve at 1M: the same runs with their network's
#              initialisation (TensorFlow 1's Glorot-uniform encoder, `--net.init glorot`), and in float32 as
#              they trained; ~2 and ~3 hours of one core per seed (start with SEEDS=1)
#
#   STUDY=minatar bash scripts/cpu_study.sh start [JOBS]   runs every run of the study, JOBS at a time (default
#                                            2, $THREADS torch threads each, default 1), in the background
#                                            (setsid: it outlives the shell)
#   STUDY=minatar bash scripts/cpu_study.sh list   its runs, a line each: name, then `mdpo train`'s flags
#   bash scripts/cpu_study.sh status         one line per run: steps logged, last training return, and whether it
#                                            trains now, stopped or finished, with the checkpoint's step (where a
#                                            resume starts: updates logged after it are trained again)
#   STUDY=minatar bash scripts/cpu_study.sh stop   SIGTERM: each run finishes its update and writes a checkpoint
#
# Run folders live in $OUT_DIR (default runs/cpu); several studies can run at once there. A run that has a
# checkpoint is resumed and a finished one (eval.json) is skipped, so `start` after a stop (or in a later
# session, with the run folders copied back) continues where the runs left off; a second `start` of the same
# study (more JOBS, other SEEDS) leaves the runs the first one is training to it.
set -euo pipefail
cd "$(dirname "$0")/.."
STUDY=${STUDY:-minatar}
OUT_DIR=${OUT_DIR:-runs/cpu}
STEPS=${STEPS:-1000000}
SEEDS=${SEEDS:-"1 2 3"}
THREADS=${THREADS:-1}  # torch threads per run
GAMES=${GAMES:-"Breakout SpaceInvaders Asterix Freeway Seaquest"}
MINIGRID_STEPS=${MINIGRID_STEPS:-300000}
PILOT_TASKS=${PILOT_TASKS:-"FourRooms DoorKey-8x8"}
PILOT_LEVELS=${PILOT_LEVELS:-"10 50 200"}
PILOT_STEPS=${PILOT_STEPS:-500000}
GEN_TASK=${GEN_TASK:-FourRooms}
GEN_LEVELS=${GEN_LEVELS:-10}
GEN_STEPS=${GEN_STEPS:-1000000}
GEN_WIDE_SEEDS=${GEN_WIDE_SEEDS:-"1 2 3"}  # the 2x-width control's seeds (of $SEEDS)
CLIP_STEPS=${CLIP_STEPS:-300000}
REDUCE_GAMES=${REDUCE_GAMES:-"Freeway Breakout"}
REDUCE_CONTROL_SEEDS=${REDUCE_CONTROL_SEEDS:-"1 2 3"}  # the alpha-0 control's seeds (of $SEEDS)

# one line per run: name, then its `mdpo train` flags (a later --total_steps wins); seeds outermost,
# so that every game and algorithm has a first seed before any has a second
runs() {
    for seed in $SEEDS; do
        for algo in ppo mdpo; do
            case $STUDY in
                minatar)
                    for game in $GAMES; do
                        echo "minatar-$game-$algo-s$seed --preset minatar --env.game MinAtar/$game-v1 --algo $algo --seed $seed"
                    done ;;
                minigrid)
                    echo "minigrid-multiroom-$algo-s$seed --preset minigrid --algo $algo --seed $seed --total_steps $MINIGRID_STEPS" ;;
                pilot)  # PPO only: which task and number of training layouts make PPO overfit?
                    if [[ $algo == ppo ]]; then
                        for task in $PILOT_TASKS; do
                            for levels in $PILOT_LEVELS; do
                                echo "pilot-$task-n$levels-ppo-s$seed --preset minigrid --env.game MiniGrid-$task-v0 --env.num_levels $levels --algo ppo --seed $seed --total_steps $PILOT_STEPS"
                            done
                        done
                    fi ;;
                generalization)  # issue 28: PPO, MDPO, PPO at 2x width (the paper's "just a bigger model" control),
                    # and MDPO whose agents each take PPO's update plus distillation (cohort.reduce sum)
                    flags="--preset minigrid --env.game MiniGrid-$GEN_TASK-v0 --env.num_levels $GEN_LEVELS --seed $seed --total_steps $GEN_STEPS"
                    echo "gen-$GEN_TASK-n$GEN_LEVELS-$algo-s$seed $flags --algo $algo"
                    if [[ $algo == ppo && " $GEN_WIDE_SEEDS " == *" $seed "* ]]; then
                        echo "gen-$GEN_TASK-n$GEN_LEVELS-ppo-wide-s$seed $flags --algo ppo --net.width 2"
                    elif [[ $algo == mdpo ]]; then
                        echo "gen-$GEN_TASK-n$GEN_LEVELS-mdpo-sum-s$seed $flags --algo mdpo --cohort.reduce sum"
                    fi ;;
                clip)  # the gradient clip, not distillation? PPO at clip 0.5 and 1.0; cohorts at alpha 0
                    flags="--preset minigrid --env.game MiniGrid-$GEN_TASK-v0 --env.num_levels $GEN_LEVELS --seed $seed --total_steps $CLIP_STEPS"
                    if [[ $algo == ppo ]]; then
                        echo "clip-ppo-clip0.5-s$seed $flags --algo ppo"
                        echo "clip-ppo-clip1-s$seed $flags --algo ppo --ppo.max_grad_norm 1.0"
                    else
                        echo "clip-cohort-alpha0-mean-s$seed $flags --algo mdpo --cohort.alpha 0"
                        echo "clip-cohort-alpha0-sum-s$seed $flags --algo mdpo --cohort.alpha 0 --cohort.reduce sum"
                    fi ;;
                reduce)  # beside the minatar study's PPO and MDPO (mean) runs of the same games and seeds
                    if [[ $algo == mdpo ]]; then
                        for game in $REDUCE_GAMES; do
                            flags="--preset minatar --env.game MinAtar/$game-v1 --algo mdpo --cohort.reduce sum --seed $seed"
                            echo "reduce-$game-mdpo-sum-s$seed $flags"
                            if [[ " $REDUCE_CONTROL_SEEDS " == *" $seed "* ]]; then
                                echo "reduce-$game-cohort-alpha0-sum-s$seed $flags --cohort.alpha 0"
                            fi
                        done
                    fi ;;
                precision)  # the minatar study's PPO runs of Breakout and SpaceInvaders are its float32 side
                    if [[ $algo == ppo ]]; then
                        for game in Breakout SpaceInvaders; do
                            echo "precision-$game-ppo-bf16-s$seed --preset minatar --env.game MinAtar/$game-v1 --algo ppo --seed $seed --perf.amp bf16"
                        done
                    fi ;;
                procgen)
                    echo "procgen-starpilot-$algo-s$seed --preset cleanrl --env.game starpilot --algo $algo --seed $seed --perf.amp bf16 --checkpoint_every 5" ;;
                gap)  # beside the procgen study's PPO runs of the same seeds
                    if [[ $algo == ppo ]]; then
                        flags="--preset cleanrl --env.game starpilot --algo ppo --seed $seed --checkpoint_every 5"
                        echo "gap-starpilot-ppo-glorot-s$seed $flags --perf.amp bf16 --net.init glorot"
                        echo "gap-starpilot-ppo-float32-s$seed $flags"
                    fi ;;
                *) echo "unknown STUDY=$STUDY (minatar, minigrid, pilot, generalization, clip, reduce, precision, procgen or gap)" >&2; exit 2 ;;
            esac
        done
    done
}

one() {  # NAME FLAGS...: train the run, or resume it if it has a checkpoint
    local name=$1; shift
    local dir="$OUT_DIR/$name"
    exec 9> "$OUT_DIR/$name.lock"
    if ! flock -n 9; then
        return  # another `start` of the same study trains it now
    elif [[ -f "$dir/eval.json" ]]; then
        return  # finished (`mdpo train --resume DIR --total_steps N` extends it)
    elif [[ -f "$dir/checkpoint.pt" ]]; then
        mdpo train --resume "$dir" --torch_threads "$THREADS" --quiet
    else
        mdpo train --total_steps "$STEPS" "$@" --out_dir "$OUT_DIR" --run_name "$name" --torch_threads "$THREADS" --quiet
    fi > "$OUT_DIR/$name.log" 2>&1 || echo "$name: exit $? (see $OUT_DIR/$name.log)"
}

case "${1:-}" in
    start)
        mkdir -p "$OUT_DIR"
        runs > /dev/null  # an unknown STUDY stops here
        export -f one; export OUT_DIR STEPS THREADS
        runs | setsid xargs -r -P "${2:-2}" -L 1 bash -c 'one "$@"' _ >> "$OUT_DIR/$STUDY.log" 2>&1 &
        echo $! > "$OUT_DIR/$STUDY.pid"  # the leader of the study's process group
        echo "started $STUDY: $(runs | wc -l) runs, ${2:-2} at a time, in $OUT_DIR (progress: bash $0 status)"
        ;;
    list)  # the study's runs, a line each: name, then the flags `start` gives `mdpo train`
        runs
        ;;
    status)
        python3 - "$OUT_DIR" <<'PY'
import os
import sys
from pathlib import Path
from mdpo.errors import MdpoError
from mdpo.logger import read_metrics
from mdpo.runs import CHECKPOINT, LOCK, load_checkpoint

def locked(path: Path) -> bool | None:
    """Whether a process holds an flock on ``path`` (mdpo holds its run folder's while it trains), read from
    /proc/locks rather than by trying the lock, which could turn away a run starting at that moment."""
    try:
        held = Path("/proc/locks").read_text().split()
    except OSError:
        return None  # not Linux
    inode = os.stat(path).st_ino if path.exists() else None
    return inode is not None and any(f.endswith(f":{inode}") for f in held)

for run in sorted(p for p in Path(sys.argv[1]).iterdir() if p.is_dir()):
    rows = [r for r in read_metrics(run) if "charts/episodic_return" in r] if (run / "metrics.jsonl").exists() else []
    last = rows[-1] if rows else {}
    if (run / "eval.json").exists():
        state = "finished"
    else:
        try:
            saved = f"checkpoint at {load_checkpoint(run)['global_step']:,}" if (run / CHECKPOINT).exists() else "no checkpoint"
        except MdpoError as exc:
            saved = str(exc)
        state = {True: "training", False: "stopped", None: "training or stopped"}[locked(run / LOCK)] + f" ({saved})"
    print(f"{run.name:<40} {last.get('global_step', 0):>9,} steps  return {last.get('charts/episodic_return', float('nan')):7.2f}  {state}")
PY
        ;;
    stop)  # no new runs, and every run of the group finishes its update and writes a checkpoint
        kill -TERM -- "-$(cat "$OUT_DIR/$STUDY.pid")" 2>/dev/null || true
        ;;
    *)
        sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 2
        ;;
esac

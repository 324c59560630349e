#!/usr/bin/env bash
# The CPU learning studies of docs/results/cpu/, one run list per study:
#   minatar    PPO and MDPO on MinAtar's five games (the `minatar` preset), 1M env steps per agent
#   minigrid   PPO and MDPO on a MiniGrid train/test split (the `minigrid` preset)
#
#   STUDY=minatar bash scripts/cpu_study.sh start [JOBS]   runs every run of the study, JOBS at a time (default
#                                            2, one torch thread each), in the background (setsid: it outlives
#                                            the shell)
#   bash scripts/cpu_study.sh status         one line per run: steps reached, last training return
#   bash scripts/cpu_study.sh stop           SIGTERM: each run finishes its update and writes a checkpoint
#
# Run folders live in $OUT_DIR (default runs/cpu). A run that has a checkpoint is resumed, so `start` after a
# stop (or in a later session, with the run folders copied back) continues where the runs left off.
set -euo pipefail
cd "$(dirname "$0")/.."
STUDY=${STUDY:-minatar}
OUT_DIR=${OUT_DIR:-runs/cpu}
STEPS=${STEPS:-1000000}
SEEDS=${SEEDS:-"1 2 3"}
GAMES=${GAMES:-"Breakout SpaceInvaders Asterix Freeway Seaquest"}
MINIGRID_STEPS=${MINIGRID_STEPS:-300000}

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
                *) echo "unknown STUDY=$STUDY (minatar or minigrid)" >&2; exit 2 ;;
            esac
        done
    done
}

one() {  # NAME FLAGS...: train the run, or resume it if it has a checkpoint
    local name=$1; shift
    local dir="$OUT_DIR/$name"
    if [[ -f "$dir/checkpoint.pt" ]]; then
        mdpo train --resume "$dir" --torch_threads 1 --quiet
    else
        mdpo train --total_steps "$STEPS" "$@" --out_dir "$OUT_DIR" --run_name "$name" --torch_threads 1 --quiet
    fi > "$OUT_DIR/$name.log" 2>&1 || echo "$name: exit $? (see $OUT_DIR/$name.log)" >> "$OUT_DIR/study.log"
}

case "${1:-}" in
    start)
        mkdir -p "$OUT_DIR"
        runs > /dev/null  # an unknown STUDY stops here
        export -f one; export OUT_DIR STEPS
        runs | setsid xargs -r -P "${2:-2}" -L 1 bash -c 'one "$@"' _ >> "$OUT_DIR/study.log" 2>&1 &
        echo $! > "$OUT_DIR/study.pid"  # the leader of the study's process group
        echo "started $STUDY: $(runs | wc -l) runs, ${2:-2} at a time, in $OUT_DIR (progress: bash $0 status)"
        ;;
    status)
        python3 - "$OUT_DIR" <<'PY'
import sys
from pathlib import Path
from mdpo.logger import read_metrics
for run in sorted(p for p in Path(sys.argv[1]).iterdir() if p.is_dir()):
    rows = [r for r in read_metrics(run) if "charts/episodic_return" in r] if (run / "metrics.jsonl").exists() else []
    last = rows[-1] if rows else {}
    state = "finished" if (run / "eval.json").exists() else "running or stopped"
    print(f"{run.name:<40} {last.get('global_step', 0):>9,} steps  return {last.get('charts/episodic_return', float('nan')):7.2f}  {state}")
PY
        ;;
    stop)  # no new runs, and every run of the group finishes its update and writes a checkpoint
        kill -TERM -- "-$(cat "$OUT_DIR/study.pid")" 2>/dev/null || true
        ;;
    *)
        sed -n '2,14p' "$0"; exit 2
        ;;
esac

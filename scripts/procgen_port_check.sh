#!/usr/bin/env bash
# Is envpool's StarPilot the Procgen authors' game? Replays a trained agent's StarPilot episodes from envpool
# (what mdpo trains on) in the `procgen` package, 0.10.7 and 0.9.4 (the Procgen authors' runs used 0.9), and
# compares rewards, episode ends and frames (scripts/procgen_port_check.py); the tables go to $RESULTS/tables.md.
#
#   bash scripts/procgen_port_check.sh                   the committed episodes ($RESULTS/episodes.npz)
#   bash scripts/procgen_port_check.sh RUN_DIR [LEVELS]  record new ones first, with RUN_DIR's agent (e.g.
#                                                        runs/cpu/procgen-starpilot-ppo-s2, 20 levels)
#
# `procgen` has no wheel for Python 3.11: 0.10.7 comes from its re-upload `procgen-mirror` (installed without
# its dependencies into .procgen-check/py311, beside mdpo's own Python; its `numpy<2` pin is not needed to
# run), and 0.9.4 needs a Python 3.7 or 3.8 ($PY38, else the first python3.8 or 3.7 that runs, pyenv's
# included), where it gets a virtual environment in .procgen-check/py3x. Tables go to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR=${1:-}
LEVELS=${2:-20}
RESULTS=docs/results/cpu/procgen-port
HERE=.procgen-check
mkdir -p "$HERE" "$RESULTS"
[[ -z $RUN_DIR || -d $RUN_DIR ]] || { echo "no run folder $RUN_DIR" >&2; exit 2; }

if [[ ! -d $HERE/py311/procgen ]]; then
    python -m pip install -q --no-deps --target "$HERE/py311" "procgen-mirror==0.10.7" "gym3==0.3.3" \
        "gym==0.26.2" gym-notices cloudpickle imageio imageio-ffmpeg glfw moderngl glcontext
fi
if [[ ! -x $HERE/py3x/bin/python ]]; then
    for candidate in ${PY38:-} python3.8 python3.7 ~/.pyenv/versions/3.[87]*/bin/python; do
        if "$candidate" -c 'import sys; assert (3, 7) <= sys.version_info[:2] <= (3, 8)' 2>/dev/null; then
            PY38=$candidate
            break
        fi
    done
    [[ -n ${PY38:-} ]] || { echo "procgen 0.9 needs a Python 3.7 or 3.8: set PY38=/path/to/python3.8" >&2; exit 2; }
    "$PY38" -m venv "$HERE/py3x"
    "$HERE/py3x/bin/python" -m pip install -q "procgen==0.9.4"
fi

if [[ -n $RUN_DIR ]]; then
    python scripts/procgen_port_check.py record "$RUN_DIR" "$RESULTS/episodes.npz" --levels "$LEVELS"
fi
python scripts/procgen_port_check.py frames "$RESULTS/episodes.npz" "$HERE/with-frames.npz"
{
    status=0
    PYTHONPATH=$HERE/py311 python -W ignore scripts/procgen_port_check.py replay "$HERE/with-frames.npz" || status=$?
    echo
    "$HERE/py3x/bin/python" -W ignore scripts/procgen_port_check.py replay "$HERE/with-frames.npz" || status=$?
    exit $status  # 1 where a reward or an episode's end differs
} | tee "$RESULTS/tables.md"

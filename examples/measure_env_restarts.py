"""What restarting the environments at every checkpoint (mdpo before issue 13) costs, against an
uninterrupted run that keeps its environments (mdpo now, and the authors' loop).

Both runs share seed and settings; "restarts" calls ``Trainer.start_envs()`` after every
``checkpoint_every``-th update, exactly where the old loop did. Reported per run: episodes that
ended, episodes cut short by a restart (in progress when it happened), the fraction cut short,
and the mean length of the episodes that ended.

    python examples/measure_env_restarts.py --updates 50 --env.num_envs 8
"""

from __future__ import annotations

import argparse
import tempfile

import torch

from mdpo.resolve import resolve
from mdpo.trainer import Trainer


def measure(cfg, updates: int, restart: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(cfg, run_dir)
        ended, cut, lengths = 0, 0, []
        for _ in range(updates):
            trainer.update()
            r = trainer.rollout
            ended += int(r.episode_ends.sum())
            lengths += r.episode_lengths[r.episode_ends].tolist()
            if restart and trainer.update_idx % cfg.checkpoint_every == 0:
                cut += sum(int((m._length > 0).sum()) for m in trainer.monitors)
                trainer.start_envs()
        trainer.close()
    return {"ended": ended, "cut": cut, "cut_fraction": cut / max(ended + cut, 1),
            "mean_length": sum(lengths) / max(len(lengths), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=50)
    parser.add_argument("--game", default="bigfish")
    parser.add_argument("--env.num_envs", dest="num_envs", type=int, default=8)
    parser.add_argument("--checkpoint_every", type=int, default=25)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)  # robust to other work on the machine; the counts do not depend on it
    cfg = resolve("paper", "ppo", {"env.game": args.game, "env.num_envs": args.num_envs, "seed": args.seed,
                                   "checkpoint_every": args.checkpoint_every, "device": "cpu",
                                   "env.num_threads": 1})
    print(f"{args.game} {cfg.env.mode}, {cfg.env.num_levels} levels, {args.num_envs} envs x {cfg.ppo.num_steps} "
          f"steps, {args.updates} updates, checkpoint every {args.checkpoint_every}, seed {args.seed}")
    print(f"{'envs':<34}{'episodes ended':>15}{'cut short':>11}{'fraction cut':>14}{'mean length':>13}")
    for name, restart in (("restart at checkpoints (before)", True), ("persist (after)", False)):
        m = measure(cfg, args.updates, restart)
        print(f"{name:<34}{m['ended']:>15}{m['cut']:>11}{m['cut_fraction']:>14.3f}{m['mean_length']:>13.1f}",
              flush=True)


if __name__ == "__main__":
    main()

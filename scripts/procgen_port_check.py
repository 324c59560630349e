"""Is envpool's Procgen (what mdpo trains on) the game the Procgen authors' runs played?

    python scripts/procgen_port_check.py record RUN_DIR EPISODES.npz [--levels 20]
    python scripts/procgen_port_check.py frames EPISODES.npz WITH_FRAMES.npz
    python scripts/procgen_port_check.py replay WITH_FRAMES.npz     # under any Python that has `procgen`

``record`` plays a trained run's first agent (actions sampled, torch seed 0) on mdpo's StarPilot (envpool), one
episode on each of levels 0 to N-1 (easy mode, ``num_levels 1``), and saves its actions, rewards and episode
lengths (a few kB: docs/results/cpu/procgen-port/ keeps them). ``frames`` plays them again on envpool and adds
the frames (20 MB for 20 levels). ``replay`` feeds the same actions to the `procgen` package on the same levels
and compares, step by step: the game is the same where every reward and the episode's end agree; frames are
compared pixel by pixel. A Procgen level plays out the same for the same actions (its randomness is seeded by
the level), so any difference is the implementation's. ``replay`` runs under Python 3.7 too (procgen 0.9, the
version of the authors' runs, has wheels for Python 3.6 to 3.8 only): it imports neither mdpo nor torch.
scripts/procgen_port_check.sh sets up both versions of `procgen` and runs the whole check.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

GAME, MODE = "starpilot", "easy"


def play(levels: int, choose) -> dict:
    """One episode on each of envpool's StarPilot levels 0 to ``levels``-1, ``choose(obs, level, t)`` giving each
    action: the actions, rewards, episode lengths and frames (each level's first, then one after each step)."""
    import torch

    from mdpo.envs.procgen import ProcgenEnv

    actions, rewards, frames, lengths = [], [], [], []
    for level in range(levels):
        env = ProcgenEnv(GAME, MODE, 1, 1, level, 0, torch.device("cpu"), num_threads=1)
        obs, done, steps = env.reset(), False, 0
        frames.append(obs[0].numpy().transpose(1, 2, 0))
        while not done:
            action = choose(obs, level, steps)
            step = env.step(torch.tensor([action], dtype=torch.int32))
            obs, done, steps = step.obs, bool(step.done[0]), steps + 1
            actions.append(action)
            rewards.append(float(step.reward[0]))
            frames.append(obs[0].numpy().transpose(1, 2, 0))  # at the end: the last (envpool resets a step later)
        env.close()
        lengths.append(steps)
    return {"actions": np.array(actions, np.int32), "rewards": np.array(rewards, np.float32),
            "lengths": np.array(lengths), "frames": np.stack(frames)}


def starts(lengths: np.ndarray) -> np.ndarray:
    """Where each episode's steps begin in the concatenated per-step arrays."""
    return np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int)


def record(run_dir: str, out: str, levels: int) -> None:
    """The run's first agent, actions sampled (torch seed 0): its episodes' actions, rewards and lengths."""
    import torch

    from mdpo.runs import load_agents

    torch.set_num_threads(1)
    _, agents, _ = load_agents(run_dir, torch.device("cpu"))
    sampler = torch.Generator().manual_seed(0)

    def sample(obs, level, t):
        with torch.no_grad():
            logits, _ = agents[0](obs)
        return int(torch.multinomial(torch.softmax(logits.float(), -1), 1, generator=sampler)[0, 0])

    episodes = play(levels, sample)
    np.savez_compressed(out, **{k: v for k, v in episodes.items() if k != "frames"})
    for level, (start, length) in enumerate(zip(starts(episodes["lengths"]), episodes["lengths"])):
        print(f"level {level}: {length} steps, return {episodes['rewards'][start:start + length].sum():g}")


def frames(path: str, out: str) -> None:
    """The recorded actions played again on envpool, which must give the recorded rewards and lengths: the
    episodes with their frames, for ``replay``."""
    data = np.load(path)
    first = starts(data["lengths"])
    episodes = play(len(data["lengths"]), lambda obs, level, t: int(data["actions"][first[level] + t]))
    for key in ("actions", "rewards", "lengths"):
        if not np.array_equal(episodes[key], data[key]):
            sys.exit(f"envpool played {path}'s actions to other {key} than recorded: not deterministic here")
    np.savez_compressed(out, **episodes)


def replay(path: str) -> int:
    """Prints a row per level and a summary; exit status 1 where any reward or episode end differs."""
    import procgen

    data = np.load(path)
    lengths = data["lengths"]
    version = getattr(procgen, "__version__", "?").strip()
    print(f"procgen {version} against envpool, {GAME} ({MODE}), {len(lengths)} levels of the recorded agent\n")
    print("| level | steps | return: envpool | procgen | first step whose reward or end differs | "
          "frames that differ | most pixels differing in one frame |")
    print("|---|---|---|---|---|---|---|")
    start = differing_levels = 0
    for level, length in enumerate(lengths):
        env = procgen.ProcgenEnv(num_envs=1, env_name=GAME, num_levels=1, start_level=level, distribution_mode=MODE)
        frame = env.reset()["rgb"][0]
        theirs = data["frames"][start + level]  # each level keeps its first frame, then one per step
        pixels = [int((frame != theirs).any(-1).sum())]
        returns, first_difference = [0.0, 0.0], None
        for t in range(length):
            obs, reward, done, _ = env.step(data["actions"][start + t:start + t + 1])
            ended = bool(done[0])
            returns[0] += float(data["rewards"][start + t])
            returns[1] += float(reward[0])
            if first_difference is None and (reward[0] != data["rewards"][start + t] or ended != (t == length - 1)):
                first_difference = t + 1
            if not ended:  # procgen's frame after the end is the next level's
                pixels.append(int((obs["rgb"][0] != data["frames"][start + level + t + 1]).any(-1).sum()))
            if ended:
                break
        env.close()
        differing_levels += first_difference is not None
        print(f"| {level} | {length} | {returns[0]:g} | {returns[1]:g} | {first_difference or '-'} | "
              f"{sum(p > 0 for p in pixels)} of {len(pixels)} | {max(pixels)} |")
        start += length
    print(f"\n{differing_levels} of {len(lengths)} levels differ in a reward or in where the episode ends")
    return int(differing_levels > 0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    rec = commands.add_parser("record", help="play a run's agent on envpool's StarPilot, save the episodes")
    rec.add_argument("run_dir")
    rec.add_argument("out")
    rec.add_argument("--levels", type=int, default=20, help="levels 0 to N-1, one episode each")
    fra = commands.add_parser("frames", help="play recorded episodes again on envpool, with their frames")
    fra.add_argument("episodes")
    fra.add_argument("out")
    rep = commands.add_parser("replay", help="replay episodes with frames in `procgen` and compare")
    rep.add_argument("episodes")
    args = parser.parse_args()
    if args.command == "record":
        record(args.run_dir, args.out, args.levels)
    elif args.command == "frames":
        frames(args.episodes, args.out)
    else:
        sys.exit(replay(args.episodes))

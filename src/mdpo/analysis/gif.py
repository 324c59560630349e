"""Animated GIFs of held-out episodes (``mdpo eval RUN_DIR --gif N``): one GIF per agent, its N
episodes tiled side by side, each tile showing the episode's return so far and, once it has ended,
its final return (the tile then holds its last frame)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn
from tqdm import tqdm

from mdpo.config import Config, EnvConfig
from mdpo.envs import EpisodeMonitor, make_env
from mdpo.errors import MdpoError
from mdpo.nets import sample_actions
from mdpo.runtime import derive_seed

# every STRIDE-th env step, shown in real time (Procgen renders at 15 steps/s); STRIDE keeps a
# 1000-step (timed-out) episode's GIF at a few MB
SCALE, BANNER, COLUMNS, STRIDE = 2, 14, 4, 2
FRAME_MS = round(1000 * STRIDE / 15)


@torch.no_grad()
def record_episodes(agent: nn.Module, env_cfg: EnvConfig, episodes: int, seed: int, device: torch.device,
                    greedy: bool = False, progress: str | None = None
                    ) -> tuple[list[list[np.ndarray]], list[list[float]]]:
    """Per test-level episode: its frames (H, W, C uint8, the first observation included) and the
    raw return so far at each frame. Like ``evaluate.play``, each env's first episode only; with
    ``progress`` (a label), a bar counts finished episodes."""
    env = make_env(env_cfg, episodes, seed, device, "test")
    obs = env.reset()
    monitor = EpisodeMonitor(env, obs.device)
    generator = torch.Generator(device).manual_seed(seed)
    frames = [[f] for f in obs.permute(0, 2, 3, 1).cpu().numpy()]
    returns = [[0.0] for _ in range(episodes)]
    finished = torch.zeros(episodes, dtype=torch.bool, device=device)
    bar = tqdm(total=episodes, desc=progress, unit="episode", disable=progress is None, leave=False)
    while not bool(finished.all()):
        logits, _ = agent(obs)
        actions, _ = sample_actions(logits, generator, greedy)
        step = monitor.step(actions)
        keep = (step.valid & ~finished).cpu().tolist()
        images = step.obs.permute(0, 2, 3, 1).cpu().numpy()
        rewards = step.reward.cpu().tolist()
        for i in (i for i, k in enumerate(keep) if k):
            frames[i].append(images[i])
            returns[i].append(returns[i][-1] + rewards[i])
        finished |= step.episode_end
        obs = step.obs
        bar.update(int(finished.sum()) - bar.n)
    bar.close()
    env.close()
    return frames, returns


def _tile(frame: np.ndarray, text: str) -> Image.Image:
    image = Image.fromarray(frame).resize((frame.shape[1] * SCALE, frame.shape[0] * SCALE), Image.NEAREST)
    tile = Image.new("RGB", (image.width, image.height + BANNER), "black")
    tile.paste(image, (0, BANNER))
    ImageDraw.Draw(tile).text((3, 1), text, fill="white")
    return tile


def render_gif(frames: list[list[np.ndarray]], returns: list[list[float]], path: Path) -> None:
    """Tile the episodes (up to COLUMNS per row) into one looping GIF; the last frame is always in."""
    length = max(len(f) for f in frames)
    rows = math.ceil(len(frames) / COLUMNS)
    columns = min(len(frames), COLUMNS)
    sheets = []
    for t in sorted({*range(0, length, STRIDE), length - 1}):
        tiles = []
        for i, (episode, ret) in enumerate(zip(frames, returns)):
            j = min(t, len(episode) - 1)
            ended = t >= len(episode) - 1
            tiles.append(_tile(episode[j], f"#{i}  return {ret[j]:g}" + ("  end" if ended else "")))
        sheet = Image.new("RGB", (columns * tiles[0].width, rows * tiles[0].height), "black")
        for i, tile in enumerate(tiles):
            sheet.paste(tile, ((i % COLUMNS) * tile.width, (i // COLUMNS) * tile.height))
        sheets.append(sheet)
    sheets[0].save(path, save_all=True, append_images=sheets[1:], duration=FRAME_MS, loop=0, optimize=True)


def write_gifs(agents: nn.ModuleList, cfg: Config, episodes: int, run_dir: Path, device: torch.device,
               greedy: bool = False) -> list[Path]:
    """RUN_DIR/episodes-agentI.gif for every agent; all agents meet the same held-out levels."""
    if episodes < 1:
        raise MdpoError(f"--gif needs at least 1 episode, got {episodes}")
    seed = derive_seed(cfg.seed, "gif", episodes)
    paths = []
    for i, agent in enumerate(agents):
        path = Path(run_dir) / f"episodes-agent{i}.gif"
        render_gif(*record_episodes(agent, cfg.env, episodes, seed, device, greedy, f"recording agent {i}"), path)
        paths.append(path)
    return paths

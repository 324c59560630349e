"""Named starting points of a config: presets (the paper's settings first, then published settings for
other environments), algorithm aliases, and defaults that follow the device. Each is a mapping of
``section.field`` to a value, applied by ``mdpo.resolve.resolve``."""

from __future__ import annotations

from typing import Any

DEFAULT_PRESET = "paper"  # where a config starts when no preset is named

PRESETS: dict[str, dict[str, Any]] = {
    # The paper's Table 2: hard mode, 500 training levels, 50M steps per agent.
    "paper": {},
    # CleanRL's ppo_procgen.py: easy mode, the full level distribution, 25M steps.
    "cleanrl": {"env.mode": "easy", "env.num_levels": 0, "total_steps": 25_000_000},
    # Figure 6: PPO with 2x width, 2x batch (envs) and 2x steps.
    "ppo-scaled": {"net.width": 2, "env.num_envs": 128, "total_steps": 100_000_000},
    # A few seconds of CPU per update: checks the whole pipeline, learns little.
    "smoke": {
        # every output file in under 30 s on 2 CPU cores: one final evaluation, since an evaluation
        # lasts as long as its longest episode (often Procgen's 1,000-step limit)
        "env.num_envs": 4, "ppo.num_steps": 32, "ppo.num_minibatches": 2, "ppo.epochs": 1,
        "total_steps": 1024, "checkpoint_every": 4, "eval.every": 0, "eval.episodes": 2,
        "eval.final_episodes": 2, "device": "cpu",
    },
    # rl-baselines3-zoo's PPO for CartPole-v1 (500 at 100k steps); the clip range is not annealed here.
    "cartpole": {
        "env.game": "CartPole-v1", "env.num_levels": 0, "env.num_envs": 8, "ppo.num_steps": 32,
        "ppo.num_minibatches": 1, "ppo.epochs": 20, "ppo.lr": 1e-3, "ppo.anneal_lr": True, "ppo.gamma": 0.98,
        "ppo.gae_lambda": 0.8, "ppo.ent_coef": 0.0, "ppo.norm_reward": False, "net.hidden": 64,
        "total_steps": 100_000, "checkpoint_every": 100, "eval.every": 0, "eval.bound": False,
        "eval.final_episodes": 20, "perf.micro_batch": 0, "device": "cpu",
    },
    # PPO for MinAtar as Pgx's MinAtar example runs it (PureJaxRL's PPO; its network: a 2x2 convolution, 2x2
    # average pooling, 64 units, separate 2x64 tanh actor and critic branches, Haiku's init; constant lr), with
    # gymnax-blines' batch (64 envs x 128, 4 epochs x 8 minibatches, gamma 0.999); minatar's gymnasium envs
    # (sticky actions 0.1). With MinAtar's one-convolution network, CleanRL's init and an annealed lr, Breakout
    # and SpaceInvaders reached half (docs/results/cpu: the search, one change at a time).
    "minatar": {
        "env.game": "MinAtar/Breakout-v1", "env.num_levels": 0, "env.num_envs": 64, "ppo.num_steps": 128,
        "ppo.num_minibatches": 8, "ppo.epochs": 4, "ppo.lr": 5e-4, "ppo.gamma": 0.999, "ppo.norm_reward": False,
        "net.encoder": "pooled", "net.hidden": 64, "net.head_layers": 2, "net.init": "lecun", "total_steps": 1_000_000,
        "checkpoint_every": 10, "eval.every": 20, "eval.episodes": 16, "eval.final_episodes": 64, "eval.bound": False,
        "perf.micro_batch": 0,
    },
    # A generalization split on MiniGrid: PPO with rl-baselines3-zoo's MiniGrid settings (8 envs x 128 there,
    # 16 here), trained on the layouts of 10 seeds of MultiRoom-N2-S4 (every seed a distinct layout),
    # tested on the layouts of all other seeds.
    "minigrid": {
        "env.game": "MiniGrid-MultiRoom-N2-S4-v0", "env.num_levels": 10, "env.num_envs": 16, "ppo.num_steps": 128,
        "ppo.num_minibatches": 8, "ppo.epochs": 4, "ppo.lr": 2.5e-4, "ppo.gamma": 0.99, "ppo.norm_reward": False,
        "total_steps": 300_000, "checkpoint_every": 20, "eval.every": 10, "eval.episodes": 32,
        "eval.final_episodes": 100, "eval.bound": False, "perf.micro_batch": 0,
    },
    # CleanRL's ppo_atari_envpool.py: 8 envs x 128, 4 epochs x 4 minibatches, clip 0.1, Nature CNN, 10M steps.
    "atari": {
        "env.game": "Breakout-v5", "env.num_levels": 0, "env.num_envs": 8, "ppo.num_steps": 128,
        "ppo.num_minibatches": 4, "ppo.epochs": 4, "ppo.lr": 2.5e-4, "ppo.anneal_lr": True, "ppo.gamma": 0.99,
        "ppo.clip_coef": 0.1, "ppo.norm_reward": False, "net.hidden": 512, "total_steps": 10_000_000,
        "eval.bound": False,
    },
}

# Defaults that follow the device a config resolves to; a preset or a flag that sets the field wins.
DEVICE_DEFAULTS: dict[str, dict[str, Any]] = {
    # A GPU holds the whole minibatch, and chunks of 128 frames would make an update hundreds of small,
    # launch-bound forward and backward passes. The best chunk on a GPU, if any, is to be measured.
    "cuda": {"perf.micro_batch": 0},
}

ALGOS: dict[str, dict[str, Any]] = {
    "ppo": {"cohort.num_agents": 1, "ppo.base_loss": "ppo"},
    "mdpo": {"cohort.num_agents": 2, "ppo.base_loss": "ppo", "cohort.alpha": 1.0},
    "spo": {"cohort.num_agents": 1, "ppo.base_loss": "spo"},
    "mdspo": {"cohort.num_agents": 2, "ppo.base_loss": "spo", "cohort.alpha": 1.0},
    "drac": {"cohort.num_agents": 1, "ppo.base_loss": "ppo", "drac.coef": 0.1},
}

"""Analyses of trained runs: robustness to perturbations, t-SNE of encoder features, frozen-encoder
ablation, episode GIFs (paper sections 5.3-5.4), and the report over runs with its aggregate statistics.
Only the commands (``mdpo.cli``, ``mdpo.demo``, ``mdpo.sweep``) import them, never the training stack."""

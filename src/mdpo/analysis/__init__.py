"""Analyses of trained runs: robustness to perturbations, t-SNE of encoder features, frozen-encoder
ablation, episode GIFs (paper sections 5.3-5.4)."""

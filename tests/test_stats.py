import numpy as np
import pytest

from mdpo.analysis.stats import (
    aggregate_iqm,
    aggregate_mean,
    aggregate_median,
    bootstrap_mean,
    probability_of_improvement,
    stratified_bootstrap,
)


def test_iqm_is_the_mean_of_the_middle_half_of_pooled_runs():
    # pooled: -50 0 0 1 | 2 3 4 100 -> middle half {0, 1, 2, 3} -> 1.5
    tasks = [np.array([0.0, 100.0, -50.0, 4.0]), np.array([1.0, 2.0, 3.0, 0.0])]
    assert aggregate_iqm(tasks) == pytest.approx(1.5)


def test_mean_and_median_are_over_task_means():
    tasks = [np.array([0.0, 2.0]), np.array([10.0]), np.array([3.0, 3.0, 6.0])]  # task means 1, 10, 4
    assert aggregate_mean(tasks) == pytest.approx(5.0)
    assert aggregate_median(tasks) == pytest.approx(4.0)


def test_probability_of_improvement_by_hand():
    assert probability_of_improvement([np.array([1.0, 2.0, 3.0])], [np.array([2.0, 2.0, 2.0])]) == 0.5
    assert probability_of_improvement([np.array([3.0, 4.0])], [np.array([1.0, 5.0])]) == 0.5
    # task 1: X always wins (1); task 2: identical runs (1/2) -> 0.75
    x = [np.array([3.0, 4.0]), np.array([7.0])]
    y = [np.array([1.0, 2.0]), np.array([7.0])]
    assert probability_of_improvement(x, y) == 0.75
    assert probability_of_improvement(y, x) == 0.25


def test_bootstrap_never_mixes_tasks():
    # each task is constant, so a stratified resample always has mean 0.5; pooling would not
    tasks = [np.zeros(3), np.ones(3)]
    assert stratified_bootstrap(aggregate_mean, tasks, reps=500) == (0.5, 0.5)


def test_bootstrap_percentiles_by_hand():
    # the mean of two draws from {0, 1} is 0, 1/2, 1 with probabilities 1/4, 1/2, 1/4
    tasks = [np.array([0.0, 1.0])]
    assert stratified_bootstrap(aggregate_mean, tasks, reps=4000) == (0.0, 1.0)
    assert stratified_bootstrap(aggregate_mean, tasks, reps=4000, confidence=0.4) == (0.5, 0.5)


def test_bootstrap_is_seeded_and_covers_the_point_estimate():
    rng = np.random.default_rng(1)
    tasks = [rng.normal(size=5), rng.normal(size=4) + 1]
    a = stratified_bootstrap(aggregate_iqm, tasks, seed=3)
    assert a == stratified_bootstrap(aggregate_iqm, tasks, seed=3)
    assert a[0] < aggregate_iqm(tasks) < a[1]


def test_probability_of_improvement_bootstrap_takes_two_samples():
    x, y = [np.array([3.0, 4.0, 5.0])], [np.array([1.0, 2.0, 3.5])]
    low, high = stratified_bootstrap(probability_of_improvement, x, y, reps=1000)
    assert 0.5 <= low <= probability_of_improvement(x, y) <= high == 1.0


def test_bootstrap_mean_by_hand():
    # the mean of two draws from {0, 1} is 0, 1/2, 1 with probabilities 1/4, 1/2, 1/4
    assert bootstrap_mean([0.0, 1.0], reps=4000) == (0.5, 0.0, 1.0)
    assert bootstrap_mean([0.0, 1.0], reps=4000, confidence=0.4) == (0.5, 0.5, 0.5)
    assert bootstrap_mean([0.3, 0.3, 0.3]) == pytest.approx((0.3, 0.3, 0.3))
    mean, low, high = bootstrap_mean([5.0])
    assert mean == 5.0 and np.isnan(low) and np.isnan(high)


def test_bootstrap_mean_stays_in_the_observed_range_and_is_seeded():
    # a 95% t-interval over these seeds of a quantity in [0, 1] reaches 1.19
    values = [0.1, 0.2, 0.9, 1.0, 1.0]
    mean, low, high = bootstrap_mean(values)
    assert 0.1 < low < mean < high <= 1.0
    assert bootstrap_mean(values) == (mean, low, high)


def test_bootstrap_mean_carries_further_axes():
    curves = np.array([[0.0, 10.0], [1.0, 10.0], [2.0, 10.0]])  # 3 seeds x 2 steps
    mean, low, high = bootstrap_mean(curves)
    assert mean.tolist() == [1.0, 10.0] and low[1] == high[1] == 10.0
    assert (mean[0], low[0], high[0]) == bootstrap_mean(curves[:, 0])

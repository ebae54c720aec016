"""Extrapolated RBO: identities, a hand computation, and a brute-force reference."""
import itertools

import numpy as np
import pytest

from sparsetopo.analysis.rbo import rbo, rbo_ext
from sparsetopo.errors import ValidationError


def brute_rbo_ext(a, b, alpha):
    k = len(a)
    x = [len(set(a[:d]) & set(b[:d])) for d in range(1, k + 1)]
    return (1 - alpha) * sum(alpha ** (d - 1) * x[d - 1] / d for d in range(1, k + 1)) + x[-1] / k * alpha ** k


def test_identical_lists_give_one():
    for k in (1, 3, 7):
        items = list("abcdefg"[:k])
        assert rbo(items, items) == pytest.approx(1.0)
        for alpha in (0.1, 0.25, 0.9):
            assert rbo_ext(items, items, alpha) == pytest.approx(1.0)


def test_reversed_three_items_by_hand():
    # X_1 = 0, X_2 = 1 ({a,b} ∩ {c,b}), X_3 = 3:  (1-α)(0 + α/2 + α²) + α³
    a, b = ["a", "b", "c"], ["c", "b", "a"]
    hand = {al: (1 - al) * (al / 2 + al ** 2) + al ** 3 for al in (0.25, 0.5, 0.75)}
    assert hand[0.5] == pytest.approx(0.375)
    for alpha, value in hand.items():
        assert rbo_ext(a, b, alpha) == pytest.approx(value)
    assert rbo(a, b) == pytest.approx(np.mean(list(hand.values())))


def test_matches_brute_force_on_all_permutations_of_five():
    base = list("abcde")
    for perm in itertools.permutations(base):
        for alpha in (0.25, 0.5, 0.75):
            assert rbo_ext(base, list(perm), alpha) == pytest.approx(brute_rbo_ext(base, list(perm), alpha))


def test_rejects_bad_input():
    with pytest.raises(ValidationError, match="alpha"):
        rbo_ext(["a"], ["a"], 1.0)
    with pytest.raises(ValidationError, match="same distinct items"):
        rbo(["a", "b"], ["a", "c"])

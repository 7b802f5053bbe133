"""Random processes the models share: autocorrelated noise, smooth deterministic noise over
time, and Poisson counts.

Smooth noise is a pure function of (seed, key, time), so city-wide episodes and weather are
the same whatever period a run starts at; per-device AR(1) noise carries state.
"""

from __future__ import annotations

import math
import random
from functools import lru_cache


class AR1:
    """A first-order autoregressive process with unit stationary variance.

    Args:
        rng: the generator to draw from.
        phi: correlation between one step and the next (0 to 1).
    """

    def __init__(self, rng: random.Random, phi: float) -> None:
        self._rng = rng
        self._phi = phi
        self._innovation = math.sqrt(1.0 - phi * phi)
        self.value = rng.gauss(0.0, 1.0)  # start in the stationary distribution

    def step(self) -> float:
        """Advance one step.

        Returns:
            The new value, standard normal in distribution.
        """
        self.value = self._phi * self.value + self._innovation * self._rng.gauss(0.0, 1.0)
        return self.value


@lru_cache(maxsize=65_536)
def _knot(seed: int, key: str, index: int) -> float:
    return random.Random(f"{seed}:{key}:{index}").gauss(0.0, 1.0)


def smooth_noise(seed: int, key: str, epoch: float, period_s: float) -> float:
    """Standard-normal-ish noise that varies smoothly over `period_s` seconds.

    Values at multiples of the period are independent standard normal draws, fixed by
    (seed, key); between them the value follows a cosine blend.

    Args:
        seed: the run's seed.
        key: names the process, so that different processes are independent.
        epoch: the time, seconds since the epoch.
        period_s: the spacing of the independent values.

    Returns:
        The noise at `epoch`.
    """
    position = epoch / period_s
    index = math.floor(position)
    weight = (1.0 - math.cos(math.pi * (position - index))) / 2.0
    before, after = _knot(seed, key, index), _knot(seed, key, index + 1)
    # A cosine blend of two unit normals has variance below one mid-way; rescale it back.
    spread = math.sqrt((1.0 - weight) ** 2 + weight**2)
    return ((1.0 - weight) * before + weight * after) / spread


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson-distributed count.

    Args:
        rng: the generator to draw from.
        mean: the expected count.

    Returns:
        The count; exact below a mean of 30, a rounded normal approximation above.
    """
    if mean <= 0.0:
        return 0
    if mean > 30.0:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, product, count = math.exp(-mean), rng.random(), 0
    while product > limit:
        count += 1
        product *= rng.random()
    return count

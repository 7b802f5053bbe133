"""The pace at which the supervisor starts a crashed service again."""

from deploy.process import RestartPolicy


def test_delays_double_with_each_crash_within_the_window_and_stay_jittered() -> None:
    policy = RestartPolicy(max_crashes=5, window_s=120, first_delay_s=1, max_delay_s=30)
    delays = [policy.crashed(now=t) for t in (0, 1, 2, 3)]
    for delay, nominal in zip(delays, (1, 2, 4, 8), strict=True):
        assert delay is not None
        assert 0.5 * nominal <= delay <= 1.5 * nominal


def test_the_fifth_crash_within_the_window_gives_up() -> None:
    policy = RestartPolicy(max_crashes=5, window_s=120)
    assert all(policy.crashed(now=t) is not None for t in (0, 10, 20, 30))
    assert policy.crashed(now=40) is None
    assert policy.recent == 5


def test_crashes_older_than_the_window_are_forgotten() -> None:
    policy = RestartPolicy(max_crashes=3, window_s=60, first_delay_s=1)
    assert policy.crashed(now=0) is not None
    policy.came_back()
    assert policy.crashed(now=30) is not None
    policy.came_back()
    delay = policy.crashed(now=100)  # the first two are out of the window
    assert delay is not None and delay <= 1.5
    assert policy.recent == 1


def test_the_delay_is_capped() -> None:
    policy = RestartPolicy(max_crashes=100, window_s=1e9, first_delay_s=1, max_delay_s=30)
    for t in range(20):
        delay = policy.crashed(now=t)
    assert delay is not None and delay <= 45


def test_a_start_that_hangs_until_its_timeout_every_time_is_given_up_at_the_fifth() -> None:
    # Each failed restart is a crash, 60 s of readiness wait after the last: never five
    # within the window, but five in a row without coming back.
    policy = RestartPolicy(max_crashes=5, window_s=120)
    assert all(policy.crashed(now=t) is not None for t in (0, 61, 123, 186))
    assert policy.recent < 5
    assert policy.crashed(now=250) is None
    assert policy.describe() == "5 crashes in a row without coming back"


def test_a_restart_that_came_back_starts_the_count_in_a_row_again() -> None:
    policy = RestartPolicy(max_crashes=3, window_s=10)
    assert policy.crashed(now=0) is not None
    assert policy.crashed(now=20) is not None
    policy.came_back()
    assert policy.crashed(now=40) is not None
    assert policy.crashed(now=60) is not None
    assert policy.in_a_row == 2

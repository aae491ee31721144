import pytest

from lab.delays import Delays


def test_scaled_multiplies_every_duration_and_records_the_scale() -> None:
    real = Delays.realistic()
    fast = real.scaled(0.01)
    assert fast.robot.post == pytest.approx(real.robot.post * 0.01)
    assert fast.cloud.rescue_boot == pytest.approx(real.cloud.rescue_boot * 0.01)
    assert fast.action == pytest.approx(real.action * 0.01)
    assert fast.scale == pytest.approx(0.01)
    assert fast.bandwidth == real.bandwidth


def test_unavoidable_install_counts_boots_transfer_and_shutdown() -> None:
    delays = Delays.realistic().scaled(1.0, bandwidth=100.0)
    t = delays.robot
    expected = t.post + t.rescue_boot + 10.0 + t.shutdown + t.post + t.os_boot
    assert delays.unavoidable_install("robot", 1000) == pytest.approx(expected)


def test_unavoidable_cloud_install_also_counts_the_enable_rescue_action() -> None:
    delays = Delays.realistic().scaled(1.0, bandwidth=100.0)
    t = delays.cloud
    expected = delays.action + t.post + t.rescue_boot + 10.0 + t.shutdown + t.post + t.os_boot
    assert delays.unavoidable_install("cloud", 1000) == pytest.approx(expected)


def test_non_positive_scale_is_refused() -> None:
    with pytest.raises(ValueError, match="scale must be > 0"):
        Delays.realistic().scaled(0)

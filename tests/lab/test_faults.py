import pytest

from lab.faults import Fault, Faults


def test_armed_once_fires_once() -> None:
    faults = Faults()
    faults.arm(Fault.CLOUD_LOCKED)
    assert faults.take(Fault.CLOUD_LOCKED) is not None
    assert faults.take(Fault.CLOUD_LOCKED) is None
    assert faults.fired(Fault.CLOUD_LOCKED) == 1


def test_target_limits_fault_to_matching_prefix() -> None:
    faults = Faults()
    faults.arm("robot.rate_limit", times=None, target="/reset")
    assert faults.take(Fault.ROBOT_RATE_LIMIT, "/server") is None
    assert faults.take(Fault.ROBOT_RATE_LIMIT, "/reset/1") is not None
    assert faults.take(Fault.ROBOT_RATE_LIMIT, "/reset/2") is not None


def test_peek_does_not_consume_and_carries_params() -> None:
    faults = Faults()
    faults.arm(Fault.SSH_DROP_MID_WRITE, after=0.5)
    arm = faults.peek(Fault.SSH_DROP_MID_WRITE)
    assert arm is not None and arm.params == {"after": 0.5}
    assert faults.take(Fault.SSH_DROP_MID_WRITE) is not None


def test_clear_disarms_and_forgets_counts() -> None:
    faults = Faults()
    faults.arm(Fault.BOOT_SLOW, times=None)
    faults.take(Fault.BOOT_SLOW)
    faults.clear()
    assert faults.take(Fault.BOOT_SLOW) is None
    assert faults.fired(Fault.BOOT_SLOW) == 0


def test_unknown_fault_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown fault 'disk\.melt'.*rescue\.not_coming_up"):
        Faults().arm("disk.melt")


def test_zero_times_is_refused() -> None:
    with pytest.raises(ValueError, match="times must be >= 1"):
        Faults().arm(Fault.BOOT_SLOW, times=0)

"""Robot objects from the documented JSON, including its type flips."""

from __future__ import annotations

from hetzner.robot import HostKey, Rescue, ResetOptions


def test_rescue_inactive_lists_available_os() -> None:
    rescue = Rescue.from_dict({"server_number": 1, "os": ["linux", "vkvm"], "active": False, "password": None})

    assert rescue.os is None and rescue.available_os == ("linux", "vkvm") and rescue.password is None


def test_rescue_host_keys_in_order_shape_and_as_strings() -> None:
    keys = [{"key": {"fingerprint": "c1:e4", "type": "ED25519", "size": 256}}, "SHA256:abc", {}, None]

    rescue = Rescue.from_dict({"server_number": 1, "os": "linux", "active": True, "host_key": keys})

    assert rescue.host_keys == (HostKey("c1:e4", "ED25519", 256), HostKey("SHA256:abc"))


def test_reset_options_single_type_string() -> None:
    options = ResetOptions.from_dict({"server_number": 1, "type": "hw"})

    assert options.types == ("hw",) and options.operating_status is None and not options.is_off

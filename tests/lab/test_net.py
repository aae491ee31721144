import pytest

from lab.net import LabNetwork, claim_network


def test_addresses_are_distinct_per_service_and_server() -> None:
    net = LabNetwork(42)
    addresses = {net.service(s) for s in ("robot", "cloud", "factory", "cdn")}
    addresses |= {net.robot_server(i) for i in range(3)} | {net.cloud_server(i) for i in range(3)}
    assert len(addresses) == 10
    assert all(a.startswith("127.42.") for a in addresses)


def test_robot_servers_share_a_26_with_its_gateway() -> None:
    net = LabNetwork(42)
    assert net.robot_gateway == "127.42.1.1"
    assert net.robot_server(0) == "127.42.1.10"
    with pytest.raises(ValueError, match="does not fit"):
        net.robot_server(60)


def test_claimed_network_cannot_be_claimed_twice() -> None:
    network, marker = claim_network()
    try:
        with pytest.raises(RuntimeError, match="taken by another lab"):
            claim_network(network.net)
    finally:
        marker.close()


def test_net_outside_range_is_refused() -> None:
    with pytest.raises(ValueError, match=r"outside 1\.\.254"):
        LabNetwork(0)

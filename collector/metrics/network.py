"""cAdvisor's ``network``, ``tcp`` and ``udp`` families.

tcp/udp are gauges whose names end in ``_total``, as cAdvisor names them; ``promtool
check metrics`` objects to that and cAdvisor's names win (the test says so).
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter

from cgroupstats.model import Sample
from collector.metrics.base import COUNTER, GAUGE, Family, Values, fams, per_key


def _net(field: str) -> Callable[[Sample], Values]:
    get = attrgetter(field)
    return lambda s: [((n,), get(v)) for n, v in s.network.items()] if s.network else []


def families() -> dict[str, list[Family]]:
    c = COUNTER
    return {
        "network": fams(
            ("container_network_receive_bytes_total", c, "Cumulative count of bytes received",
             ("interface",), _net("rx_bytes")),
            ("container_network_receive_packets_total", c,
             "Cumulative count of packets received", ("interface",), _net("rx_packets")),
            ("container_network_receive_packets_dropped_total", c,
             "Cumulative count of packets dropped while receiving", ("interface",),
             _net("rx_dropped")),
            ("container_network_receive_errors_total", c,
             "Cumulative count of errors encountered while receiving", ("interface",),
             _net("rx_errors")),
            ("container_network_transmit_bytes_total", c,
             "Cumulative count of bytes transmitted", ("interface",), _net("tx_bytes")),
            ("container_network_transmit_packets_total", c,
             "Cumulative count of packets transmitted", ("interface",), _net("tx_packets")),
            ("container_network_transmit_packets_dropped_total", c,
             "Cumulative count of packets dropped while transmitting", ("interface",),
             _net("tx_dropped")),
            ("container_network_transmit_errors_total", c,
             "Cumulative count of errors encountered while transmitting", ("interface",),
             _net("tx_errors")),
        ),
        "tcp": fams(
            ("container_network_tcp_usage_total", GAUGE,
             "tcp connection usage statistic for container", ("tcp_state",), per_key("tcp")),
            ("container_network_tcp6_usage_total", GAUGE,
             "tcp6 connection usage statistic for container", ("tcp_state",), per_key("tcp6")),
        ),
        "udp": fams(
            ("container_network_udp6_usage_total", GAUGE,
             "udp6 connection usage statistic for container", ("udp_state",), per_key("udp6")),
            ("container_network_udp_usage_total", GAUGE,
             "udp connection usage statistic for container", ("udp_state",), per_key("udp")),
        ),
    }

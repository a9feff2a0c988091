"""Cluster mode: a client quota set through one broker is in force on every broker within a second
(stored in ZooKeeper's /config/clients, seen through each broker's watches)."""

from __future__ import annotations

from logq.protocol import messages as m
from tests.broker.test_client_quotas import alter, describe, listed, part
from tests.cluster.conftest import Cluster
from tests.cluster.test_cluster_configs import everywhere_within_a_second
from tests.wire_client import WireClient


def test_a_quota_set_through_one_broker_is_described_by_every_broker(cluster: Cluster) -> None:
    with WireClient(cluster.brokers[1].bootstrap) as client:
        result = alter(client, [part("client-id", "everywhere")], {"producer_byte_rate": 4096})
        assert result.error_code == 0, result.error_message

    def sees(i: int) -> bool:
        with WireClient(cluster.brokers[i].bootstrap) as client:
            exact = m.ClientQuotaFilterComponent(entity_type="client-id", match_type=0, match="everywhere")
            return listed(describe(client, [exact])) == {
                (("client-id", "everywhere"),): {"producer_byte_rate": 4096.0}
            }

    everywhere_within_a_second(cluster, sees, "the quota")

"""Message dataclasses, one module per API family; every name is re-exported here.

Import them from this package: ``from logq.protocol.messages import ProduceRequest, FetchResponse``.
Each submodule lists its names in ``__all__`` (kept out of this file so there is one list per family).
"""

from logq.protocol.messages.acls import *  # noqa: F403
from logq.protocol.messages.alter_configs import *  # noqa: F403
from logq.protocol.messages.configs import *  # noqa: F403
from logq.protocol.messages.epochs import *  # noqa: F403
from logq.protocol.messages.fetch import *  # noqa: F403
from logq.protocol.messages.group_deletion import *  # noqa: F403
from logq.protocol.messages.groups import *  # noqa: F403
from logq.protocol.messages.log_dirs import *  # noqa: F403
from logq.protocol.messages.metadata import *  # noqa: F403
from logq.protocol.messages.offsets import *  # noqa: F403
from logq.protocol.messages.partitions import *  # noqa: F403
from logq.protocol.messages.produce import *  # noqa: F403
from logq.protocol.messages.quotas import *  # noqa: F403
from logq.protocol.messages.records import *  # noqa: F403
from logq.protocol.messages.sasl import *  # noqa: F403
from logq.protocol.messages.topics import *  # noqa: F403
from logq.protocol.messages.users import *  # noqa: F403

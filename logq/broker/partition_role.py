"""The role of a hosted partition on this broker, as a table (no I/O, no clock, no log).

Rule 1: every role change of a partition happens through ``transition()``, which consults
``TRANSITIONS``; a pair missing from the table is a bug and raises ``InvalidRoleTransition``. Rule 2: the
table knows nothing of epochs or of which broker leads: whether an event applies (a newer leader epoch,
a state written after this broker registered) is decided before the event is sent.

Roles (Kafka's ``Partition``: leader, follower, or neither):

    UNHOSTED --host--> NO_LEADER --lead--> LEADER --fence--> FENCED
                          |   ^              |  ^              |
                        follow |          follow lead        lead (a newer epoch) / follow
                          v   |              v  |              v
                         FOLLOWER <----------+--+------------ ...
    any role but DELETED ---delete---> DELETED

- UNHOSTED: assigned here, its log not open yet (a creation under way); nothing is served.
- NO_LEADER: the log is open, but the partition has no leader, or this broker may not lead it yet.
- LEADER: this broker leads it in one leader epoch: it appends, serves consumers, tracks followers.
- FOLLOWER: another broker leads it; the replica fetcher copies its log.
- FENCED: this broker led it when its coordinator session was lost: it stops at once, and leads again
  only in a newer leader epoch (the controller may already have given the partition to another broker).
- DELETED: its queue was deleted (terminal).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType


class Role(enum.Enum):
    UNHOSTED = "unhosted"
    NO_LEADER = "no-leader"
    LEADER = "leader"
    FOLLOWER = "follower"
    FENCED = "fenced"
    DELETED = "deleted"


class RoleEvent(enum.Enum):
    HOST = "host"  # the partition's log is open
    LEAD = "lead"  # the metadata names this broker leader (in a leader epoch it may lead)
    FOLLOW = "follow"  # the metadata names another live broker leader
    NO_LEADER = "no-leader"  # the metadata names no leader (or a leader this broker does not follow)
    FENCE = "fence"  # this broker's coordinator session was lost
    DELETE = "delete"  # the queue was deleted


class InvalidRoleTransition(Exception):  # noqa: N818 - the name says what happened, as in h2
    pass


R, E = Role, RoleEvent

TRANSITIONS: Mapping[tuple[Role, RoleEvent], Role] = MappingProxyType(
    {
        # Until its log is open a partition serves nothing; the wanted role is taken once hosted.
        (R.UNHOSTED, E.HOST): R.NO_LEADER,
        (R.UNHOSTED, E.LEAD): R.UNHOSTED,
        (R.UNHOSTED, E.FOLLOW): R.UNHOSTED,
        (R.UNHOSTED, E.NO_LEADER): R.UNHOSTED,
        (R.UNHOSTED, E.FENCE): R.UNHOSTED,
        (R.UNHOSTED, E.DELETE): R.DELETED,
        (R.NO_LEADER, E.LEAD): R.LEADER,
        (R.NO_LEADER, E.FOLLOW): R.FOLLOWER,
        (R.NO_LEADER, E.NO_LEADER): R.NO_LEADER,
        (R.NO_LEADER, E.FENCE): R.NO_LEADER,
        (R.NO_LEADER, E.DELETE): R.DELETED,
        # A new leader epoch of the same leader is a LEAD from LEADER: a new leadership.
        (R.LEADER, E.LEAD): R.LEADER,
        (R.LEADER, E.FOLLOW): R.FOLLOWER,
        (R.LEADER, E.NO_LEADER): R.NO_LEADER,
        (R.LEADER, E.FENCE): R.FENCED,
        (R.LEADER, E.DELETE): R.DELETED,
        # A follower keeps copying when the session is lost: it acknowledges nothing itself.
        (R.FOLLOWER, E.LEAD): R.LEADER,
        (R.FOLLOWER, E.FOLLOW): R.FOLLOWER,
        (R.FOLLOWER, E.NO_LEADER): R.NO_LEADER,
        (R.FOLLOWER, E.FENCE): R.FOLLOWER,
        (R.FOLLOWER, E.DELETE): R.DELETED,
        (R.FENCED, E.LEAD): R.LEADER,
        (R.FENCED, E.FOLLOW): R.FOLLOWER,
        (R.FENCED, E.NO_LEADER): R.FENCED,
        (R.FENCED, E.FENCE): R.FENCED,
        (R.FENCED, E.DELETE): R.DELETED,
        (R.DELETED, E.DELETE): R.DELETED,
    }
)


def transition(role: Role, event: RoleEvent) -> Role:
    try:
        return TRANSITIONS[(role, event)]
    except KeyError:
        raise InvalidRoleTransition(
            f"invalid event {event.value} for a partition in role {role.value}"
        ) from None

"""Roles and what each may do.

Reads are open to every staff role (an inspector, an editor checking a plan and an approver
reviewing slogans all need them); the audit log is the admin's alone. Writes follow the
office's division of labour: editors (Văn phòng Sở) draft slogans and run campaigns,
approvers (lãnh đạo Sở) approve and retire, admins set up boards and keys (list, create,
revoke) and read the audit log. The emergency stop (every board blank at once) is for the
people who answer for what boards show: approvers and admins.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    EDITOR = "editor"
    APPROVER = "approver"
    OPERATOR = "operator"


class Permission(StrEnum):
    READ = "read"
    SLOGAN_WRITE = "slogan.write"
    SLOGAN_APPROVE = "slogan.approve"
    CAMPAIGN_WRITE = "campaign.write"
    BOARD_WRITE = "board.write"
    AUDIT_READ = "audit.read"
    KEY_MANAGE = "key.manage"
    EMERGENCY_STOP = "emergency.stop"


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.EDITOR: frozenset({Permission.READ, Permission.SLOGAN_WRITE, Permission.CAMPAIGN_WRITE}),
    Role.APPROVER: frozenset({Permission.READ, Permission.SLOGAN_APPROVE, Permission.EMERGENCY_STOP}),
    Role.OPERATOR: frozenset({Permission.READ}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is acting: a staff key (`key_id` set), a board (`board_id` set) or the command line.

    `name` is the person: four-eyes and the audit log go by it.
    """

    name: str
    role: str
    board_id: str | None = None
    key_id: int | None = None

    def may(self, permission: Permission) -> bool:
        try:
            return permission in GRANTS[Role(self.role)]
        except ValueError:
            return False


def cli_principal(name: str) -> Principal:
    """The command line acts with admin rights under the name of whoever ran it."""
    return Principal(name=name, role=Role.ADMIN.value)

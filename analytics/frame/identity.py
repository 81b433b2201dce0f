"""Who the user is: roles, the users file, and the access scope a user gets.

Roles decide the page list and blinding; the users file (``.streamlit/users.toml``) assigns each
user a role and the sponsors/studies they may see. The frame resolves the signed-in user (OIDC
``st.user`` when configured, else ``$CRO_USER``, else the ``default_user`` secret, else ``local``).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from analytics.core.scope import AccessScope

USERS_FILE = Path(__file__).resolve().parents[2] / ".streamlit" / "users.toml"
DEFAULT_USER = "local"

# What a role may do. Pages need ``view:<page key>`` (see analytics/frame/pages.py); ``view:*`` opens all.
PERMISSIONS = frozenset({"view:*", "load_data", "review_quality", "manage_capa", "approve_document", "administer"})
_MONITORING_VIEWS = frozenset({"view:overview", "view:enrollment", "view:site_performance", "view:data_quality",
                               "view:rbm", "view:recruitment"})


@dataclass(frozen=True)
class Role:
    """A role: whether it is blinded and the permissions it grants."""

    name: str
    label: str
    blinded: bool
    permissions: frozenset[str]

    def allows(self, permission: str) -> bool:
        """True when the role grants ``permission`` (``view:*`` grants every page)."""
        return permission in self.permissions or (permission.startswith("view:") and "view:*" in self.permissions)

    @property
    def can_load_data(self) -> bool:
        return self.allows("load_data")


ROLES: dict[str, Role] = {
    r.name: r
    for r in (
        # Roles that cannot load data still open the Data page to see where each study came from.
        Role("clinops_lead", "Clinical operations lead", True, frozenset({"view:*"})),
        Role("cra", "Clinical research associate (monitor)", True, _MONITORING_VIEWS),
        Role("sponsor", "Sponsor reviewer", True, _MONITORING_VIEWS | {"view:capa"}),
        Role("data_manager", "Data manager", True,
             frozenset({"view:overview", "view:data_quality", "view:rbm", "view:data", "load_data", "review_quality"})),
        Role("unblinded_statistician", "Unblinded statistician", False, frozenset({"view:*"})),
        Role("admin", "Administrator", False, PERMISSIONS),
    )
}


class IdentityError(ValueError):
    """The users file is malformed or names an unknown user or role."""


@dataclass(frozen=True)
class User:
    """A resolved user with their role and access scope."""

    user_id: str
    name: str
    role: Role
    scope: AccessScope


def _as_set(value: object, field: str, user_id: str) -> frozenset[str] | None:
    if value in (None, "*"):
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return frozenset(value)
    raise IdentityError(f"users file: user {user_id!r} field {field!r} must be \"*\" or a list of ids, got {value!r}")


def load_users(path: Path = USERS_FILE) -> dict[str, User]:
    """Parse the users file into users with their scopes."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IdentityError(f"users file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise IdentityError(f"users file {path} is not valid TOML: {exc}") from None
    users: dict[str, User] = {}
    for user_id, entry in data.get("users", {}).items():
        role_name = entry.get("role")
        if role_name not in ROLES:
            raise IdentityError(
                f"users file {path}: user {user_id!r} has unknown role {role_name!r}; known: {', '.join(ROLES)}"
            )
        role = ROLES[role_name]
        scope = AccessScope(
            sponsor_ids=_as_set(entry.get("sponsors", "*"), "sponsors", user_id),
            study_ids=_as_set(entry.get("studies", "*"), "studies", user_id),
            blinded=role.blinded,
        )
        users[user_id] = User(user_id, entry.get("name", user_id), role, scope)
    return users


def resolve_user(user_id: str | None, path: Path = USERS_FILE) -> User:
    """The user called ``user_id`` (or the default local user) from the users file."""
    users = load_users(path)
    key = user_id or DEFAULT_USER
    if key not in users:
        raise IdentityError(f"user {key!r} is not in the users file {path}")
    return users[key]

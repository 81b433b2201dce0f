"""Who the user is: roles, the users file, and the access scope each user gets.

Roles decide the page list, blinding, whether subject-level records may be seen, and what else a
user may do (load data, lock a presentation, ...). The users file (``.streamlit/users.toml``, or
``$CRO_USERS_FILE``) assigns each user a role and the sponsors, studies and sites they may see. The
file is checked whole: a typo anywhere (an unknown field, a missing restriction, a sponsor viewer
with two sponsors, invalid TOML) raises :class:`IdentityError` naming the file and line, and the
frame opens nothing until it is fixed. Restrictions are never implied: every user states
``sponsors`` (``"*"`` for all), so a forgotten line can never open the portfolio wide.

How the signed-in person is matched to an entry (OIDC e-mail, SSO header, local mode) is
:mod:`analytics.frame.signin`; this module is pure (no Streamlit).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from analytics.core.scope import AccessScope
from analytics.core.settings import DEFAULT_LOCAL_USER, DEFAULT_USERS_FILE

USERS_FILE = DEFAULT_USERS_FILE
DEFAULT_USER = DEFAULT_LOCAL_USER

# What a role may do. Pages need ``view:<page key>`` (see analytics/frame/pages.py); ``view:*`` opens all.
PERMISSIONS = frozenset({"view:*", "load_data", "review_quality", "manage_capa", "approve_document", "administer",
                         "present", "view_subject_data"})
# One subject's whole record (visits, events, results) for roles that work with subjects, on top of
# the role's subject-level access.
SUBJECT_DATA = "view_subject_data"
_MONITORING_VIEWS = frozenset({"view:overview", "view:enrollment", "view:site_performance", "view:data_quality",
                               "view:rbm", "view:recruitment"})
_SPONSOR_VIEWS = frozenset({"view:overview", "view:enrollment", "view:site_performance", "view:rbm", "view:capa"})


@dataclass(frozen=True)
class Role:
    """A role: its blinding, whether it sees subject-level records, and the permissions it grants."""

    name: str
    label: str
    blinded: bool
    permissions: frozenset[str]
    subject_level: bool = True

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
        Role("clinops_lead", "Clinical operations lead", True, frozenset({"view:*", "present"})),
        Role("monitor", "Monitor (CRA)", True, _MONITORING_VIEWS | {"view:drafting", SUBJECT_DATA}),
        # A sponsor sees its own studies as site and study aggregates: no subject-level record.
        Role("sponsor_viewer", "Sponsor viewer", True, _SPONSOR_VIEWS, subject_level=False),
        Role("data_manager", "Data manager", True,
             frozenset({"view:overview", "view:data_quality", "view:rbm", "view:data", "load_data", "review_quality",
                        SUBJECT_DATA})),
        Role("quality_manager", "Quality manager", True,
             frozenset({"view:overview", "view:data_quality", "view:capa", "view:rbm", "review_quality",
                        "manage_capa", "approve_document", SUBJECT_DATA})),
        Role("medical_writer", "Medical writer", True,
             frozenset({"view:overview", "view:enrollment", "view:site_performance", "view:drafting"})),
        Role("unblinded_statistician", "Unblinded statistician", False, frozenset({"view:*", SUBJECT_DATA})),
        Role("admin", "Administrator", False, PERMISSIONS),
    )
}
SPONSOR_VIEWER = ROLES["sponsor_viewer"]

USER_FIELDS = ("name", "email", "role", "sponsors", "studies", "sites", "disabled")
ALL = "*"


class IdentityError(ValueError):
    """The users file is malformed, or names an unknown user or role."""


@dataclass(frozen=True)
class User:
    """A user from the users file with their role and access scope."""

    user_id: str
    name: str
    role: Role
    scope: AccessScope
    email: str | None = None
    disabled: bool = False
    presenting_sponsor: str | None = None  # set while the user's sessions are locked to one sponsor


# --- locating a problem in the file ----------------------------------------------------------------

_HEADER = re.compile(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$")


def _section_lines(text: str) -> dict[tuple[str, ...], int]:
    """Table path (e.g. ``("users", "jane")``) -> 1-based line of its ``[header]``."""
    found: dict[tuple[str, ...], int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = _HEADER.match(line)
        if not match:
            continue
        try:  # let TOML itself read the dotted, possibly quoted, key
            parsed = tomllib.loads(f"[{match.group(1)}]\n")
        except tomllib.TOMLDecodeError:
            continue
        path: list[str] = []
        while isinstance(parsed, dict) and len(parsed) == 1:
            key = next(iter(parsed))
            path.append(key)
            parsed = parsed[key]
        found.setdefault(tuple(path), number)
    return found


def _field_line(text: str, header_line: int, field: str) -> int:
    """The line setting ``field`` in the table starting at ``header_line`` (the header when not found)."""
    lines = text.splitlines()
    pattern = re.compile(rf"^\s*(\"{re.escape(field)}\"|'{re.escape(field)}'|{re.escape(field)})\s*=")
    for number in range(header_line, len(lines)):
        line = lines[number]
        if _HEADER.match(line):
            break
        if pattern.match(line):
            return number + 1
    return header_line


class _Locator:
    def __init__(self, path: Path, text: str) -> None:
        self.path, self.text, self.sections = path, text, _section_lines(text)

    def error(self, user_id: str | None, field: str | None, message: str) -> IdentityError:
        line = self.sections.get(("users", user_id)) if user_id is not None else None
        if line is not None and field is not None:
            line = _field_line(self.text, line, field)
        where = f"{self.path}, line {line}" if line else str(self.path)
        return IdentityError(f"users file {where}: {message}")


# --- parsing -----------------------------------------------------------------------------------


def _id_set(value: object, field: str, user_id: str, where: _Locator) -> frozenset[str] | None:
    if value == ALL:
        return None
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        return frozenset(v.strip() for v in value)
    raise where.error(user_id, field, f"user {user_id!r}: {field} must be \"*\" or a non-empty list of ids, "
                                      f"not {value!r}")


def _user(user_id: str, entry: object, where: _Locator) -> User:
    if not isinstance(entry, dict):
        raise where.error(user_id, None, f"user {user_id!r} must be a table ([users.{user_id}])")
    unknown = sorted(set(entry) - set(USER_FIELDS))
    if unknown:
        raise where.error(user_id, unknown[0], f"user {user_id!r} has unknown field {unknown[0]!r}; "
                                               f"the fields are {', '.join(USER_FIELDS)}")
    role_name = entry.get("role")
    if role_name not in ROLES:
        raise where.error(user_id, "role", f"user {user_id!r} has unknown role {role_name!r}; "
                                           f"the roles are {', '.join(ROLES)}")
    role = ROLES[role_name]
    if "sponsors" not in entry:
        raise where.error(user_id, None, f"user {user_id!r} does not say which sponsors they may see: add "
                                         "sponsors = \"*\" or a list of sponsor ids")
    sponsors = _id_set(entry["sponsors"], "sponsors", user_id, where)
    studies = _id_set(entry.get("studies", ALL), "studies", user_id, where)
    sites = _id_set(entry.get("sites", ALL), "sites", user_id, where)
    if role is SPONSOR_VIEWER and (sponsors is None or len(sponsors) != 1):
        raise where.error(user_id, "sponsors", f"user {user_id!r} is a sponsor viewer and must see exactly one "
                                               f"sponsor, e.g. sponsors = [\"SP01\"]")
    if role.name == "monitor" and (studies is None or "sites" not in entry):
        raise where.error(user_id, "studies" if studies is None else None,
                          f"user {user_id!r} is a monitor and needs the assigned studies (a list) and sites "
                          "(a list of study-site ids, or \"*\" for every site of those studies)")
    for field in ("name", "email"):
        if field in entry and not (isinstance(entry[field], str) and entry[field].strip()):
            raise where.error(user_id, field, f"user {user_id!r}: {field} must be a non-empty string")
    disabled = entry.get("disabled", False)
    if not isinstance(disabled, bool):
        raise where.error(user_id, "disabled", f"user {user_id!r}: disabled must be true or false")
    scope = AccessScope(sponsor_ids=sponsors, study_ids=studies, study_site_ids=sites, blinded=role.blinded,
                        subject_level=role.subject_level)
    email = entry.get("email")
    return User(user_id, entry.get("name", user_id), role, scope, email.strip() if email else None, disabled)


def load_users(path: Path | None = None) -> dict[str, User]:
    """Parse and check the whole users file.

    Raises:
        IdentityError: the file is missing, not valid TOML, or any entry is malformed; the message
            names the file and the line at fault.
    """
    path = Path(path) if path is not None else USERS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise IdentityError(f"users file {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise IdentityError(f"users file {path} cannot be read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message says "(at line N, column M)"
        raise IdentityError(f"users file {path} is not valid TOML: {exc}") from None
    where = _Locator(path, text)
    unknown = sorted(set(data) - {"users"})
    if unknown:
        raise IdentityError(f"users file {path}: unknown section {unknown[0]!r}; users are [users.<id>] tables")
    entries = data.get("users", {})
    if not isinstance(entries, dict) or not entries:
        raise IdentityError(f"users file {path} lists no user ([users.<id>] tables)")
    users = {user_id: _user(user_id, entry, where) for user_id, entry in entries.items()}
    seen: dict[str, str] = {}
    for user in users.values():
        for name in {user.user_id.lower(), (user.email or "").lower()} - {""}:
            if seen.get(name, user.user_id) != user.user_id:
                raise where.error(user.user_id, "email" if user.email else None,
                                  f"{name!r} names two users ({seen[name]!r} and {user.user_id!r})")
            seen[name] = user.user_id
    return users


def find_user(users: dict[str, User], sign_in_id: str) -> User | None:
    """The user a sign-in id (users-file id or e-mail, any case) names, or None."""
    if sign_in_id in users:
        return users[sign_in_id]
    wanted = sign_in_id.strip().lower()
    for user in users.values():
        if wanted in (user.user_id.lower(), (user.email or "").lower()):
            return user
    return None


def resolve_user(user_id: str | None, path: Path | None = None) -> User:
    """The user called ``user_id`` (or the default local user) from the users file.

    Raises:
        IdentityError: the file is malformed, the user is not in it, or the user is disabled.
    """
    key = user_id or DEFAULT_USER
    user = find_user(load_users(path), key)
    if user is None:
        raise IdentityError(f"The user {key!r} is not in the users file; ask an administrator to add you.")
    if user.disabled:
        raise IdentityError(f"The user {key!r} is disabled; ask an administrator if you need access again.")
    return user


def presenting(user: User, sponsor_id: str) -> User:
    """``user`` as a presentation to one sponsor: what that sponsor's viewer would see, within ``user``'s own
    rights (the sponsor's studies and the user's sites; blinded; no subject-level record; only the pages a
    sponsor viewer may open that ``user`` may open too)."""
    from analytics.frame.pages import PAGES

    views = {p.needs for p in PAGES if user.role.allows(p.needs) and SPONSOR_VIEWER.allows(p.needs)}
    others = (user.role.permissions & SPONSOR_VIEWER.permissions) - {"view:*"}
    role = Role(user.role.name, f"{user.role.label}, presenting", True, frozenset(views | others),
                subject_level=False)
    if user.scope.sponsor_ids is not None and sponsor_id not in user.scope.sponsor_ids:
        raise IdentityError("that sponsor is not in your scope")
    scope = AccessScope(sponsor_ids=frozenset({sponsor_id}), study_ids=user.scope.study_ids,
                        study_site_ids=user.scope.study_site_ids, blinded=True, subject_level=False)
    return User(user.user_id, user.name, role, scope, user.email, presenting_sponsor=sponsor_id)

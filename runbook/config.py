"""The pydantic models of ``migration.toml`` and the checks that span several keys.

Everything here is something an admin typed, so every model forbids unknown keys and every
error is reported with its key path and line, all at once (see :func:`load_config`).
"""

from __future__ import annotations

import difflib
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from .addresses import AddressError, normalize_domain, validate_address
from .errors import InputError, Problem
from .tomlsource import TomlSource, load_toml

MAX_BATCH_SIZE = 2000
"""Microsoft's limit of mailboxes in one cross-tenant migration batch."""

MAX_NAME_LENGTH = 64
"""Exchange limit for organization relationship and migration endpoint names."""


class Cloud(StrEnum):
    GLOBAL = "global"
    GCC_HIGH = "gcc-high"
    DOD = "dod"


@dataclass(frozen=True)
class CloudProfile:
    """Service hosts and names that differ between Microsoft 365 clouds."""

    login_host: str
    exo_remote_server: str
    initial_domain_suffix: str
    exchange_environment: str
    graph_environment: str


CLOUDS: Mapping[Cloud, CloudProfile] = {
    Cloud.GLOBAL: CloudProfile(
        "login.microsoftonline.com", "outlook.office.com", ".onmicrosoft.com", "O365Default", "Global"
    ),
    Cloud.GCC_HIGH: CloudProfile(
        "login.microsoftonline.us", "outlook.office365.us", ".onmicrosoft.us", "O365USGovGCCHigh", "USGov"
    ),
    Cloud.DOD: CloudProfile(
        "login.microsoftonline.us", "dod-outlook.office365.us", ".onmicrosoft.us", "O365USGovDoD", "USGovDoD"
    ),
}


# --- field types -------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _no_control(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (tabs, line breaks, NUL)")
    if value != value.strip():
        raise ValueError("must not start or end with white space")
    return value


def _domain(value: str) -> str:
    try:
        return normalize_domain(value)
    except AddressError as exc:
        raise ValueError(str(exc)) from None


def _address(value: str) -> str:
    try:
        return validate_address(value)
    except AddressError as exc:
        raise ValueError(str(exc)) from None


_ALIAS = re.compile(r"^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*$")


def _alias(value: str) -> str:
    if not _ALIAS.match(value):
        raise ValueError(
            "an Exchange alias takes letters, digits and !#$%&'*+-/=?^_`{|}~ with single dots between them"
        )
    return value


_SECRET_REF = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|prompt|vault:[A-Za-z0-9_.\-]+)$")
SECRET_HELP = (
    'reference the secret instead of writing it here: secret = "env:MIGRATION_APP_SECRET" '
    '(an environment variable on the machine that runs the script), "prompt" (asked for at '
    'run time) or "vault:NAME" (PowerShell SecretManagement)'
)


def _secret_ref(value: str) -> str:
    # Never echo the value: it may be the secret itself.
    if not _SECRET_REF.match(value):
        raise ValueError(f"a literal secret is not allowed; {SECRET_HELP}")
    return value


Text = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(_no_control)]
ExchangeName = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH), AfterValidator(_no_control)]
Domain = Annotated[str, AfterValidator(_domain)]
Address = Annotated[str, AfterValidator(_address)]
Alias = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_alias)]
SecretRef = Annotated[
    str,
    Field(json_schema_extra={"pattern": _SECRET_REF.pattern}, description="env:NAME | prompt | vault:NAME"),
    AfterValidator(_secret_ref),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- sections ----------------------------------------------------------------------------


class Tenant(_Model):
    """One of the two tenants."""

    name: Text = Field(description="Display name, used in headings and messages")
    tenant_id: uuid.UUID = Field(description="Entra tenant id (GUID)")
    initial_domain: Domain = Field(description="The tenant's initial domain, e.g. contoso.onmicrosoft.com")
    accepted_domains: tuple[Domain, ...] = Field(
        default=(), description="Domains the tenant owns; used to check the domain map offline"
    )


class App(_Model):
    """The migration app registered in the target tenant."""

    app_id: uuid.UUID = Field(description="Application (client) id of the migration app")
    secret: SecretRef = Field(description="Where the app's client secret comes from at run time")
    display_name: Text = Field(default="Cross-tenant mailbox migration", description="App registration name")

    @property
    def secret_kind(self) -> Literal["env", "prompt", "vault"]:
        return self.secret.split(":", 1)[0]  # type: ignore[return-value]

    @property
    def secret_name(self) -> str:
        return self.secret.split(":", 1)[1] if ":" in self.secret else ""


class Endpoint(_Model):
    name: ExchangeName = Field(description="Migration endpoint name in the target tenant")


class OrganizationRelationships(_Model):
    target_name: ExchangeName = Field(description="Relationship in the target tenant (points at the source)")
    source_name: ExchangeName = Field(description="Relationship in the source tenant (points at the target)")


class ScopeGroup(_Model):
    name: ExchangeName = Field(description="Mail-enabled security group in the source tenant")
    alias: Alias
    max_members: int = Field(
        default=10000, ge=1, le=100000,
        description="Members per scope group; a larger move gets more groups, named NAME-2, NAME-3, ...",
    )

    def names(self, count: int) -> list[tuple[str, str]]:
        """(name, alias) of ``count`` groups: the configured one, then numbered ones."""
        return [(self.name, self.alias)] + [(f"{self.name}-{i}", f"{self.alias}-{i}") for i in range(2, count + 1)]


class Mailboxes(_Model):
    export: Annotated[str, Field(min_length=1)] = Field(description="Source export, relative to the config file")
    target_delivery_domain: Domain | None = Field(default=None, description="Default: target.initial_domain")
    batch_size: int = Field(default=MAX_BATCH_SIZE, ge=1, le=MAX_BATCH_SIZE)
    chunk_size: int = Field(default=500, ge=1, le=5000, description="Users per MailUser script file")
    external_email_address: Literal["primary", "source_initial_domain"] = Field(
        default="primary",
        description="Source address used as the MailUser's ExternalEmailAddress",
    )
    batch_prefix: ExchangeName | None = Field(default=None, description="Name prefix of automatic batches")


class Batch(_Model):
    """A migration batch chosen by the admin (a wave)."""

    name: ExchangeName
    users: tuple[Address, ...] = Field(default=(), description="Source primary SMTP addresses")
    column: Text | None = Field(default=None, description="Select users by this export column ...")
    values: tuple[str, ...] = Field(default=(), description="... having one of these values")
    auto_start: bool = False
    auto_complete: bool = False
    start_after: AwareDatetime | None = None
    complete_after: AwareDatetime | None = None
    notification_emails: tuple[Address, ...] = ()

    @model_validator(mode="after")
    def _one_selector(self) -> Batch:
        if bool(self.users) == bool(self.column):
            raise ValueError("give either users = [...] or column = \"...\" with values = [...]")
        if self.column and not self.values:
            raise ValueError("column needs values = [...] to select by")
        if self.start_after and self.complete_after and self.complete_after <= self.start_after:
            raise ValueError("complete_after must be later than start_after")
        return self


class Sync(_Model):
    """Entra cross-tenant synchronization from the source to the target (GAL sync)."""

    configuration_name: Text | None = Field(
        default=None, description="Name of the synchronization configuration in the source (default: the target's name)")
    users: tuple[Text, ...] = Field(default=(), description="Users in scope: UPNs or object ids, resolved at run time")
    groups: tuple[Text, ...] = Field(default=(), description="Groups in scope: display names or object ids")
    test_user: Text | None = Field(default=None, description="A user to provision on demand before the job starts")
    start: bool = Field(default=True, description="Start the provisioning job")

    @model_validator(mode="after")
    def _someone_in_scope(self) -> Sync:
        if not self.users and not self.groups:
            raise ValueError("give users = [...] and/or groups = [...]: at least one must be in scope")
        return self


NOTICE_PLACEHOLDERS = ("display_name", "old_address", "new_address", "batch", "cutover")


class Notify(_Model):
    """Notices to users before their mailbox moves, sent with Microsoft Graph."""

    sender: Address = Field(description="Mailbox that sends the notices (in the source tenant)")
    subject: Text = Field(description="Subject; placeholders: " + ", ".join(f"{{{p}}}" for p in NOTICE_PLACEHOLDERS))
    body: Annotated[str, Field(min_length=1)] = Field(description="Body template file (.html or .txt), relative to the config")
    cutover: AwareDatetime | None = Field(
        default=None, description="Cut-over time for {cutover} when a batch has no complete_after")
    app_id: uuid.UUID | None = Field(
        default=None, description="App that sends the notices, for the application access policy")

    @property
    def is_html(self) -> bool:
        return self.body.lower().endswith((".html", ".htm"))


class Licensing(_Model):
    """The Cross Tenant User Data Migration add-on: one per moving user, on the source or the target."""

    side: Literal["source", "target"] = Field(default="target", description="Which user object gets the add-on")
    usage_location: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = Field(
        default=None, description="ISO country code set on users without one (a licence needs it)")
    sku_part_number: Text | None = Field(
        default=None, description="The add-on's SKU part number; default: found by its name at run time")


class Snapshots(_Model):
    """Folder snapshots of each mailbox before and after the move."""

    newest_subjects: int = Field(default=0, ge=0, le=50,
                                 description="Subjects of the newest N messages per folder, for spot checks")


class TenantSignIn(_Model):
    """App-only sign-in the runner uses on the jump host for one tenant (no secret: a certificate)."""

    app_id: uuid.UUID = Field(description="App with Exchange.ManageAsApp and the Graph permissions of the steps")
    certificate_thumbprint: Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{40}$")] = Field(
        description="Thumbprint of the app's certificate in the jump host's certificate store")


class Runner(_Model):
    """How ``runbook run`` reaches PowerShell; every key can be overridden on the command line."""

    transport: Literal["psrp", "local"] = "psrp"
    host: Text | None = Field(default=None, description="Windows jump host for PowerShell Remoting")
    port: int | None = Field(default=None, ge=1, le=65535, description="Default 5986 (HTTPS) or 5985 (HTTP)")
    https: bool = True
    cert_validation: bool = True
    ca_bundle: Text | None = Field(default=None, description="CA bundle for the jump host's certificate")
    auth: Literal["negotiate", "kerberos", "ntlm", "credssp", "certificate", "basic"] = "negotiate"
    username_env: Text = Field(default="RUNBOOK_PSRP_USERNAME", description="Environment variable with the user")
    password_env: Text = Field(default="RUNBOOK_PSRP_PASSWORD",
                               description="Environment variable with the password (else it is asked for)")
    allow_unencrypted_http: bool = Field(
        default=False, description="Allow plain HTTP without message encryption (never for production)")
    parallel: int = Field(default=3, ge=1, le=16, description="Runspaces for MailUser chunk scripts")
    pwsh: Text = Field(default="pwsh", description="The PowerShell 7 executable of the local transport")
    source: TenantSignIn | None = None
    target: TenantSignIn | None = None


class Config(_Model):
    """The whole of ``migration.toml``."""

    cloud: Cloud = Cloud.GLOBAL
    source: Tenant
    target: Tenant
    app: App
    endpoint: Endpoint
    organization_relationships: OrganizationRelationships
    scope_group: ScopeGroup
    domains: dict[Domain, Domain] = Field(min_length=1, description="Source SMTP domain -> target SMTP domain")
    mailboxes: Mailboxes
    batches: tuple[Batch, ...] = ()
    sync: Sync | None = None
    notify: Notify | None = None
    snapshots: Snapshots = Snapshots()
    licensing: Licensing | None = None
    runner: Runner = Runner()

    @property
    def sync_name(self) -> str:
        return (self.sync.configuration_name if self.sync else None) or self.target.name

    @property
    def hosts(self) -> CloudProfile:
        return CLOUDS[self.cloud]

    @property
    def target_delivery_domain(self) -> str:
        return self.mailboxes.target_delivery_domain or self.target.initial_domain

    @property
    def batch_prefix(self) -> str:
        return self.mailboxes.batch_prefix or self.endpoint.name

    def tenant(self, side: str) -> Tenant:
        """The tenant of one side of the move (``"source"`` or ``"target"``)."""
        return self.source if side == "source" else self.target

    def consent_url(self) -> str:
        """The admin-consent URL the source tenant's admin opens (DESIGN §4 step 2)."""
        return (
            f"https://{self.hosts.login_host}/{self.source.initial_domain}/adminconsent"
            f"?client_id={self.app.app_id}&redirect_uri=https://office.com"
        )


@dataclass(frozen=True)
class LoadedConfig:
    """A valid config and where it came from, for resolving paths and locating keys."""

    config: Config
    path: Path
    display: str
    source: TomlSource

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def line_of(self, *loc: str | int) -> int | None:
        return self.source.line_of(loc)

    def export_path(self) -> Path:
        return (self.base_dir / self.config.mailboxes.export).resolve()


# --- loading -----------------------------------------------------------------------------


def load_config(path: Path, *, display: str | None = None) -> LoadedConfig:
    """Read and validate ``path``; raise :class:`InputError` with every problem found."""
    shown = display or str(path)
    doc = load_toml(path, display=shown)
    problems: list[Problem] = []
    config: Config | None = None
    try:
        config = Config.model_validate(doc.data)
    except ValidationError as exc:
        problems.extend(_pydantic_problems(exc, doc, shown, Config))
    problems.extend(cross_checks(doc, shown, config))
    if problems:
        raise InputError(problems)
    assert config is not None
    return LoadedConfig(config=config, path=path, display=shown, source=doc)


def format_loc(loc: Iterable[str | int]) -> str:
    """``('batches', 0, 'users', 2)`` -> ``batches[0].users[2]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _pydantic_problems(
    exc: ValidationError, doc: TomlSource, shown: str, model: type[BaseModel]
) -> list[Problem]:
    problems = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        # pydantic reports dict-key errors as (..., key, "[key]"); keep the key only.
        loc = tuple(p for p in loc if p != "[key]")
        message = _message(err, loc, model)
        problems.append(Problem(shown, doc.line_of(loc), format_loc(loc), message))
    return problems


def _message(err: Mapping[str, Any], loc: tuple[str | int, ...], model: type[BaseModel]) -> str:
    kind = err["type"]
    msg: str = err["msg"]
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        known = _known_keys(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f"; known keys: {', '.join(sorted(known))}"
        return f"unknown key{hint}"
    if kind == "uuid_parsing" or kind == "uuid_type":
        return "not a GUID (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
    if kind == "timezone_aware":
        return "needs a time zone, e.g. 2026-12-20T22:00:00Z"
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    return msg[:1].lower() + msg[1:]


def _known_keys(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """The field names of the model found by walking ``loc`` down from ``model``."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part) if isinstance(current, type) else None
        if field is None:
            return []
        current = _model_in(field.annotation)
        if current is None:
            return []
    return list(current.model_fields) if isinstance(current, type) else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


_M = TypeVar("_M", bound=BaseModel)


def _section(data: Mapping[str, Any], key: str, model: type[_M]) -> _M | None:
    try:
        return model.model_validate(data.get(key))
    except ValidationError:
        return None


def cross_checks(doc: TomlSource, shown: str, config: Config | None) -> list[Problem]:
    """Checks that involve several keys; run on whatever sections are valid on their own."""
    data = doc.data
    problems: list[Problem] = []

    def add(loc: tuple[str | int, ...], message: str) -> None:
        problems.append(Problem(shown, doc.line_of(loc), format_loc(loc), message))

    try:
        cloud = Cloud(data.get("cloud", "global"))
    except ValueError:
        cloud = None
    source = config.source if config else _section(data, "source", Tenant)
    target = config.target if config else _section(data, "target", Tenant)
    suffix = CLOUDS[cloud].initial_domain_suffix if cloud else None

    for side, tenant in (("source", source), ("target", target)):
        if tenant and suffix and not tenant.initial_domain.endswith(suffix):
            add((side, "initial_domain"), f"must be the tenant's initial domain, ending in {suffix} for cloud {cloud}")
    if source and target:
        if source.tenant_id == target.tenant_id:
            add(("target", "tenant_id"), "source and target tenant ids are the same; a move needs two tenants")
        if source.initial_domain == target.initial_domain:
            add(("target", "initial_domain"), "source and target initial domains are the same")

    domains = _domain_map(data.get("domains"))
    if target and domains is not None:
        owned = {target.initial_domain, *target.accepted_domains}
        source_owned = set(domains) | ({source.initial_domain, *source.accepted_domains} if source else set())
        for src, dst in domains.items():
            loc = ("domains", src)
            if dst in source_owned:
                add(loc, f"maps to {dst}, a source domain; every target must be a domain of the target tenant")
            elif target.accepted_domains and dst not in owned:
                add(loc, f"maps to {dst}, which is not in target.accepted_domains or the target initial domain")
            elif suffix and dst.endswith(suffix) and dst != target.initial_domain:
                add(loc, f"maps to {dst}, the initial domain of another tenant")
            if src in owned:
                add(loc, f"{src} is a target domain; the map goes from source domains to target domains")

    mailboxes = config.mailboxes if config else _section(data, "mailboxes", Mailboxes)
    if target and mailboxes and mailboxes.target_delivery_domain:
        tdd = mailboxes.target_delivery_domain
        mail_variant = target.initial_domain.replace(suffix, ".mail" + suffix) if suffix else None
        allowed = {target.initial_domain, mail_variant, *target.accepted_domains}
        if tdd not in allowed:
            add(
                ("mailboxes", "target_delivery_domain"),
                f"must be a domain of the target tenant (usually {target.initial_domain})",
            )

    _batch_checks(data, add)
    return problems


def _domain_map(raw: Any) -> dict[str, str] | None:
    if not isinstance(raw, dict):
        return None
    out: dict[str, str] = {}
    for key, value in raw.items():
        try:
            out[normalize_domain(str(key))] = normalize_domain(str(value))
        except AddressError:
            continue
    return out


def _batch_checks(data: Mapping[str, Any], add: Callable[[tuple[str | int, ...], str], None]) -> None:
    raw = data.get("batches")
    if not isinstance(raw, list):
        return
    names: dict[str, int] = {}
    owners: dict[str, tuple[int, int]] = {}
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            continue
        name = entry.get("name")
        if isinstance(name, str):
            folded = name.casefold()
            if folded in names:
                add(("batches", i, "name"), f"batch name {name!r} is already used by batches[{names[folded]}]")
            else:
                names[folded] = i
        users = entry.get("users")
        if not isinstance(users, list):
            continue
        for j, user in enumerate(users):
            if not isinstance(user, str):
                continue
            key = user.strip().casefold()
            if key in owners:
                bi, bj = owners[key]
                where = "earlier in this batch" if bi == i else f"in batches[{bi}]"
                add(("batches", i, "users", j), f"{user} is already {where} (users[{bj}]); a mailbox moves in one batch")
            else:
                owners[key] = (i, j)

"""The admin UI's views: SQLAdmin lists and forms, with every change made by Bazaar's services.

SQLAdmin reads (lists, details, the forms' first values) through its own sessions.
Its writes are replaced here: each goes through the service the API uses (the
users' rules, the items' version check, the audit trail), in one transaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ValidationError
from sqladmin import ModelView, action, expose
from sqladmin.filters import BooleanFilter, OperationColumnFilter, StaticValuesFilter
from sqlalchemy import Select, func, select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from wtforms import BooleanField, FloatField, Form, IntegerField, PasswordField, StringField
from wtforms.validators import InputRequired, Length
from wtforms.widgets import HiddenInput

from bazaar.admin.auth import signed_in
from bazaar.audit.models import AuditEvent
from bazaar.auth import changes as sessions
from bazaar.auth.models import LoginSession
from bazaar.db.unit_of_work import transaction
from bazaar.errors import NotFound, PreconditionFailed
from bazaar.fields import MAX_ID
from bazaar.items import changes as items
from bazaar.items.models import Item
from bazaar.items.schemas import ItemUpdate
from bazaar.mail import changes as mail
from bazaar.mail.models import OutboxMail
from bazaar.services import Services
from bazaar.users import changes as users
from bazaar.users.models import USER_COLUMNS, User
from bazaar.users.schemas import UserAdminUpdate, UserCreate

Model = TypeVar("Model", bound=BaseModel)

# Pages counted past the one shown, for the pager's links to the pages that follow.
LOOKAHEAD_PAGES = 7


class FormProblem(Exception):
    """What is wrong with a submitted form, in words SQLAdmin shows above it."""


class AtLeast(int):
    """A count that stopped early: more rows than this follow (the pager says so)."""

    def __str__(self) -> str:
        return f"more than {int(self)}"


def _valid(schema: type[Model], values: Mapping[str, Any]) -> Model:
    """`values` checked by the API's own schema: the UI accepts what the API accepts."""
    try:
        return schema.model_validate(dict(values))
    except ValidationError as exc:
        problems = (f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise FormProblem("; ".join(problems)) from None


def _row_id(pk: Any) -> int:
    text = str(pk)
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_ID:
        raise NotFound("No such row")
    return int(text)


class BazaarView(ModelView):
    """A view whose list pages never count a whole table, with Bazaar's services at hand.

    SQLAdmin counts every row the list's filters match, for its pager: a full
    `count(*)` of 100,000 items on every first page. Here it counts only as far as the
    pager's links reach, and says "more than" beyond.
    """

    can_export = False
    page_size = 25
    page_size_options: ClassVar[list[int]] = [25, 50, 100]

    def services(self) -> Services:
        found: Services = self._admin_ref.app.state.services
        return found

    def _stmt_by_identifier(self, identifier: str) -> Select[Any]:
        # An id outside the column's range is no row (a 404), not a database error.
        if self.pk_columns[0].type.python_type is int:
            try:
                _row_id(identifier)
            except NotFound:
                raise HTTPException(status_code=404) from None
        return super()._stmt_by_identifier(identifier)

    async def count(self, request: Request, stmt: Select[Any] | None = None) -> int:
        if stmt is None:
            return await super().count(request)
        # SQLAdmin asks for `SELECT count(*) FROM (<the filtered list>)`.
        (listed,) = stmt.get_final_froms()
        page = max(self.validate_page_number(request.query_params.get("page"), 1), 1)
        size = self.validate_page_number(request.query_params.get("pageSize"), self.page_size)
        reach = (page + LOOKAHEAD_PAGES) * min(max(size, 1), max(self.page_size_options))
        bounded = listed.element.order_by(None).limit(reach + 1)  # type: ignore[attr-defined]
        counted: int = await super().count(
            request, select(func.count()).select_from(bounded.subquery())
        )
        return AtLeast(reach) if counted > reach else counted


# Users ----------------------------------------------------------------------------


class UserForm(Form):
    name = StringField("Name", [InputRequired(), Length(max=100)])
    email = StringField("Email", [InputRequired(), Length(max=200)])
    is_active = BooleanField("Active")
    is_admin = BooleanField("Admin")


class NewUserForm(UserForm):
    password = PasswordField("Password", [InputRequired()])


_USER_EDIT = ["name", "email", "is_active", "is_admin"]
_USER_CREATE = ["name", "email", "password", "is_active", "is_admin"]


class UserAdmin(BazaarView, model=User):
    name = "User"
    name_plural = "Users"
    icon = "fa-solid fa-user"
    # Never the password hash: every list, page and form names its columns.
    column_list: ClassVar[Any] = list(USER_COLUMNS)
    column_details_list: ClassVar[Any] = column_list
    column_searchable_list: ClassVar[Any] = [User.email, User.name]
    column_sortable_list: ClassVar[Any] = [User.id, User.name, User.email, User.created_at]
    column_default_sort: ClassVar[Any] = ("id", True)
    column_filters: ClassVar[Any] = [
        BooleanFilter(User.is_active, title="Active"),
        BooleanFilter(User.is_admin, title="Admin"),
        BooleanFilter(User.is_verified, title="Verified email"),
    ]
    form_columns: ClassVar[Any] = _USER_EDIT
    form_create_rules: ClassVar[list[str]] = _USER_CREATE
    form_edit_rules: ClassVar[list[str]] = _USER_EDIT
    can_delete = False

    async def scaffold_form(self, rules: list[str] | None = None) -> type[Form]:
        return NewUserForm if rules == _USER_CREATE else UserForm

    async def insert_model(self, request: Request, data: dict[str, Any]) -> User:
        new = _valid(UserCreate, {key: data[key] for key in ("name", "email", "password")})
        app = self.services()
        # As at sign-up: hashed before the transaction holds a connection.
        hashed = await app.passwords.hash(new.password)
        async with transaction(app) as session:
            # Not verified: the address is the admin's word until its owner follows a link
            # (`POST /auth/verify-email/resend` once they sign in).
            return await users.create_user(
                session,
                data=new,
                hashed_password=hashed,
                is_active=bool(data["is_active"]),
                is_admin=bool(data["is_admin"]),
            )

    async def update_model(self, request: Request, pk: str, data: dict[str, Any]) -> User:
        change = _valid(UserAdminUpdate, {key: data[key] for key in _USER_EDIT})
        app = self.services()
        async with transaction(app) as session:
            user = await users.get_user(session, _row_id(pk))
            return await users.update_user(
                session, user, data=change, caller=signed_in(request), settings=app.settings
            )


# Items ----------------------------------------------------------------------------


class ItemForm(Form):
    name = StringField("Name", [InputRequired(), Length(max=100)])
    price = FloatField("Price", [InputRequired()])
    # The version the form was opened at: a change made meanwhile is not overwritten.
    version = IntegerField(widget=HiddenInput())


class ItemAdmin(BazaarView, model=Item):
    name = "Item"
    name_plural = "Items"
    icon = "fa-solid fa-tag"
    column_list: ClassVar[Any] = [
        Item.id,
        Item.name,
        Item.price,
        Item.owner_id,
        Item.version,
        Item.created_at,
    ]
    column_searchable_list: ClassVar[Any] = [Item.name]
    column_sortable_list: ClassVar[Any] = [Item.id, Item.name, Item.price, Item.created_at]
    column_default_sort: ClassVar[Any] = ("id", True)
    column_filters: ClassVar[Any] = [
        OperationColumnFilter(Item.owner_id, title="Owner id"),
        OperationColumnFilter(Item.price, title="Price from", parameter_name="price_from"),
        OperationColumnFilter(Item.price, title="Price to", parameter_name="price_to"),
    ]
    form_columns: ClassVar[Any] = ["name", "price", "version"]
    form = ItemForm
    can_create = False

    async def update_model(self, request: Request, pk: str, data: dict[str, Any]) -> Item:
        change = _valid(ItemUpdate, {"name": data["name"], "price": data["price"]})
        async with transaction(self.services()) as session:
            item = await items.lock_item(session, _row_id(pk))
            try:
                items.check_version(item, {data["version"]})
            except PreconditionFailed:
                raise FormProblem(
                    "This item was changed by someone else after this form was opened: "
                    "reload the page to see the change, then edit it again."
                ) from None
            return await items.update_item(session, item, data=change)

    async def delete_model(self, request: Request, pk: Any) -> None:
        async with transaction(self.services()) as session:
            item = await items.lock_item(session, _row_id(pk))
            await items.delete_item(session, item)


# Sessions -------------------------------------------------------------------------


class SessionAdmin(BazaarView, model=LoginSession):
    name = "Session"
    name_plural = "Sessions"
    icon = "fa-solid fa-key"
    can_create = False
    can_edit = False
    can_delete = False
    # No refresh token (only its hash is stored, in a table of its own): what a session is.
    column_list: ClassVar[Any] = [
        LoginSession.id,
        LoginSession.user_id,
        LoginSession.created_at,
        LoginSession.last_used_at,
        LoginSession.expires_at,
        LoginSession.revoked_at,
        LoginSession.ip,
        LoginSession.user_agent,
    ]
    column_details_list: ClassVar[Any] = column_list
    column_sortable_list: ClassVar[Any] = [LoginSession.created_at, LoginSession.last_used_at]
    column_default_sort: ClassVar[Any] = ("last_used_at", True)
    column_filters: ClassVar[Any] = [OperationColumnFilter(LoginSession.user_id, title="User id")]

    @action(name="revoke", label="Revoke")
    async def confirm_revoke(self, request: Request) -> Response:
        """The sessions chosen, and a button that revokes them.

        SQLAdmin's actions are GET links: this one only asks. The revocation is the
        POST of the page's form, which the same-origin check guards.
        """
        chosen = [pk for pk in request.query_params.get("pks", "").split(",") if pk]
        open_ones = await self._run_query(
            select(LoginSession).where(
                LoginSession.id.in_(chosen),
                LoginSession.revoked_at.is_(None),
                LoginSession.expires_at > datetime.now(UTC),
            )
        )
        context = {
            "model_view": self,
            "sessions": open_ones,
            "pks": ",".join(s.id for s in open_ones),
        }
        return await self.templates.TemplateResponse(request, "bazaar_admin/revoke.html", context)

    @expose("/revoke", methods=["POST"])
    async def revoke(self, request: Request) -> Response:
        """End the sessions chosen, through the service the API ends sessions with."""
        form = await request.form()
        chosen = [pk for pk in str(form.get("pks") or "").split(",") if pk]
        async with transaction(self.services()) as session:
            # One read for all (those pruned meanwhile are simply not found).
            owners = await session.execute(
                select(LoginSession.id, LoginSession.user_id).where(LoginSession.id.in_(chosen))
            )
            for session_id, owner in owners.all():
                with contextlib.suppress(NotFound):  # ended meanwhile
                    await sessions.end_session(session, user_id=owner, session_id=session_id)
        return RedirectResponse(
            request.url_for("admin:list", identity=self.identity), status_code=302
        )


# Outbox ---------------------------------------------------------------------------


def _mail_ids(pks: str) -> list[int]:
    """The ids in a comma-separated list; what is no id names no mail."""
    return [int(pk) for pk in pks.split(",") if pk.isascii() and pk.isdigit() and int(pk) <= MAX_ID]


class MailState:
    """The outbox filtered by where a mail stands: waiting, sent, or given up."""

    has_operator = False
    template = "sqladmin/filters/lookup_filter.html"
    title = "State"
    parameter_name = "state"

    async def lookups(self, request: Request, model: Any, run_query: Any) -> list[tuple[str, str]]:
        return [("all", "All"), ("pending", "Waiting"), ("sent", "Sent"), ("failed", "Failed")]

    async def get_filtered_query(self, query: Select[Any], value: Any, model: Any) -> Select[Any]:
        if value == "sent":
            return query.where(OutboxMail.sent_at.is_not(None))
        if value == "failed":
            return query.where(OutboxMail.failed_at.is_not(None))
        if value == "pending":
            return query.where(OutboxMail.sent_at.is_(None), OutboxMail.failed_at.is_(None))
        return query


class OutboxAdmin(BazaarView, model=OutboxMail):
    name = "Mail"
    name_plural = "Outbox"
    icon = "fa-solid fa-envelope"
    can_create = False
    can_edit = False
    can_delete = False
    # Never the body: its links carry live verification and reset tokens.
    column_list: ClassVar[Any] = [
        OutboxMail.id,
        OutboxMail.recipient,
        OutboxMail.subject,
        OutboxMail.created_at,
        OutboxMail.attempts,
        OutboxMail.next_attempt_at,
        OutboxMail.sent_at,
        OutboxMail.failed_at,
        OutboxMail.last_error,
    ]
    column_details_list: ClassVar[Any] = [*column_list, OutboxMail.message_id]
    column_searchable_list: ClassVar[Any] = [OutboxMail.recipient]
    column_sortable_list: ClassVar[Any] = [OutboxMail.id, OutboxMail.created_at]
    column_default_sort: ClassVar[Any] = ("id", True)
    column_filters: ClassVar[Any] = [MailState()]

    @action(name="retry", label="Retry")
    async def confirm_retry(self, request: Request) -> Response:
        """The failed mails chosen, and a button that sends them again (the POST)."""
        chosen = _mail_ids(request.query_params.get("pks", ""))
        failed = await self._run_query(
            select(OutboxMail).where(OutboxMail.id.in_(chosen), OutboxMail.failed_at.is_not(None))
        )
        context = {"model_view": self, "mails": failed, "pks": ",".join(str(m.id) for m in failed)}
        return await self.templates.TemplateResponse(request, "bazaar_admin/retry.html", context)

    @expose("/retry", methods=["POST"])
    async def retry(self, request: Request) -> Response:
        """Put the chosen failed mails back in the queue, due now."""
        form = await request.form()
        chosen = _mail_ids(str(form.get("pks") or ""))
        async with transaction(self.services()) as session:
            for mail_id in chosen:
                await mail.retry_mail(session, mail_id)
        return RedirectResponse(
            request.url_for("admin:list", identity=self.identity), status_code=302
        )


# Audit events ---------------------------------------------------------------------


class AuditEventAdmin(BazaarView, model=AuditEvent):
    name = "Audit event"
    name_plural = "Audit events"
    icon = "fa-solid fa-clipboard-list"
    can_create = False
    can_edit = False
    can_delete = False
    column_list: ClassVar[Any] = [
        AuditEvent.id,
        AuditEvent.created_at,
        AuditEvent.actor_id,
        AuditEvent.action,
        AuditEvent.target_type,
        AuditEvent.target_id,
        AuditEvent.changes,
        AuditEvent.client_address,
    ]
    # The request id too, on each event's own page (the list has no room for it).
    column_details_list: ClassVar[Any] = [*column_list, AuditEvent.request_id]
    column_sortable_list: ClassVar[Any] = [AuditEvent.id]
    column_default_sort: ClassVar[Any] = ("id", True)
    column_filters: ClassVar[Any] = [
        OperationColumnFilter(AuditEvent.actor_id, title="Actor id"),
        StaticValuesFilter(
            AuditEvent.target_type,
            values=[("user", "User"), ("item", "Item"), ("mail", "Mail")],
            title="Target type",
        ),
        OperationColumnFilter(AuditEvent.target_id, title="Target id"),
    ]

"""`/admin` over HTTP: signing in, the cookie, the same-origin check, the views' writes."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie

import httpx

from bazaar.admin.auth import COOKIE, IDLE_SECONDS
from tests.audit.events import audit_events
from tests.factories import Account, Api

ORIGIN = "http://test"  # the public URL of the test app (conftest's TEST_SETTINGS)
SAME_ORIGIN = {"Origin": ORIGIN}


async def sign_in(api: Api, account: Account) -> httpx.Response:
    return await api.client.post(
        "/admin/login",
        data={"username": account.email, "password": account.password},
        headers=SAME_ORIGIN,
    )


async def admin_signed_in(api: Api) -> Account:
    admin = await api.user(admin=True, name="Ada Admin")
    response = await sign_in(api, admin)
    assert response.status_code == 302, response.text
    return admin


def _cookie(response: httpx.Response) -> SimpleCookie:
    cookie = SimpleCookie()
    cookie.load(response.headers["set-cookie"])
    return cookie


async def test_an_admin_signs_in_with_a_strict_http_only_cookie_for_admin_pages(api: Api) -> None:
    admin = await api.user(admin=True)
    response = await sign_in(api, admin)
    assert response.status_code == 302
    assert response.headers["location"] == f"{ORIGIN}/admin/"
    morsel = _cookie(response)[COOKIE]
    assert morsel["httponly"] is True
    assert morsel["samesite"].lower() == "strict"
    assert morsel["path"] == "/admin"
    assert int(morsel["max-age"]) == IDLE_SECONDS == 8 * 3600
    assert not morsel["secure"]  # http public URL; the https case: test_https.py
    # It holds no secret of the user's: their id and a keyed stamp of the hash.
    hashed = await api.sql("SELECT hashed_password FROM users WHERE id = :id", id=admin.id)
    assert hashed not in morsel.value

    page = await api.client.get("/admin/user/list")
    assert page.status_code == 200
    assert admin.email in page.text

    signed_out = await api.client.get("/admin/logout")
    assert signed_out.status_code == 302
    assert (await api.client.get("/admin/user/list")).headers["location"] == (
        f"{ORIGIN}/admin/login"
    )


async def test_a_non_admin_or_a_wrong_password_is_refused(api: Api) -> None:
    user = await api.user()
    response = await sign_in(api, user)
    assert response.status_code == 400
    assert "set-cookie" not in response.headers
    admin = await api.user(admin=True)
    wrong = await api.client.post(
        "/admin/login",
        data={"username": admin.email, "password": "not-the-password"},
        headers=SAME_ORIGIN,
    )
    assert wrong.status_code == 400
    assert "set-cookie" not in wrong.headers
    page = await api.client.get("/admin/user/list")
    assert page.status_code == 302
    assert page.headers["location"] == f"{ORIGIN}/admin/login"


async def test_a_write_from_another_origin_is_refused_and_changes_nothing(api: Api) -> None:
    admin = await admin_signed_in(api)
    item = await api.item(admin, name="Lamp", price=10)
    form = {"name": "Lamp", "price": "1", "version": "1", "save": "Save"}
    edit = f"/admin/item/edit/{item['id']}"
    for headers in (
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Referer": "http://evil.example/admin/item/list"},
        {"Origin": "http://test.evil.example"},
        {},  # neither header
    ):
        response = await api.client.post(edit, data=form, headers=headers)
        assert response.status_code == 403, headers
        deletion = await api.client.delete(f"/admin/item/delete?pks={item['id']}", headers=headers)
        assert deletion.status_code == 403, headers
    assert (await api.client.get(f"/items/{item['id']}")).json() == item
    assert await audit_events(api.app) == []
    # Even signing in is refused from elsewhere (no login CSRF).
    other = await api.client.post(
        "/admin/login",
        data={"username": admin.email, "password": admin.password},
        headers={"Origin": "http://evil.example"},
    )
    assert other.status_code == 403

    # Bazaar's own pages: Origin, or a same-origin Referer when a browser sends no Origin.
    referred = await api.client.post(
        edit, data=form, headers={"Referer": f"{ORIGIN}/admin/item/edit/{item['id']}"}
    )
    assert referred.status_code == 302
    assert (await api.client.get(f"/items/{item['id']}")).json()["price"] == 1


async def test_a_deactivated_or_demoted_admins_cookie_is_refused_on_the_next_request(
    api: Api,
) -> None:
    admin = await admin_signed_in(api)
    assert (await api.client.get("/admin/item/list")).status_code == 200
    other_admin = await api.user(admin=True)
    response = await api.client.patch(
        f"/users/{admin.id}", json={"is_active": False}, headers=other_admin.headers
    )
    assert response.status_code == 200
    refused = await api.client.get("/admin/item/list")
    assert refused.status_code == 302
    assert refused.headers["location"] == f"{ORIGIN}/admin/login"
    # The cookie goes with it.
    assert COOKIE in refused.headers["set-cookie"]
    assert "expires=Thu, 01 Jan 1970" in refused.headers["set-cookie"]

    # Demoted, not deactivated: out as well.
    second = await api.user(admin=True)
    assert (await sign_in(api, second)).status_code == 302
    assert (await api.client.get("/admin/item/list")).status_code == 200
    await api.sql("UPDATE users SET is_admin = false WHERE id = :id", id=second.id)
    assert (await api.client.get("/admin/item/list")).status_code == 302


async def test_a_password_change_signs_the_admin_out(api: Api) -> None:
    admin = await admin_signed_in(api)
    response = await api.client.patch(
        "/users/me",
        json={"password": "another-long-secret-1", "current_password": admin.password},
        headers=admin.headers,
    )
    assert response.status_code == 200
    assert (await api.client.get("/admin/item/list")).status_code == 302


def _version_field(page: str) -> str:
    match = re.search(r'<input[^>]*name="version"[^>]*>', page)
    assert match is not None, page
    value = re.search(r'value="(\d+)"', match.group(0))
    assert value is not None
    return value.group(1)


async def test_a_stale_item_form_is_refused_not_overwriting(api: Api) -> None:
    admin = await admin_signed_in(api)
    owner = await api.user()
    item = await api.item(owner, name="Lamp", price=10)
    edit = f"/admin/item/edit/{item['id']}"
    opened = await api.client.get(edit)
    assert _version_field(opened.text) == "1"

    # The owner changes the price while the admin's form is open.
    changed = await api.client.patch(
        f"/items/{item['id']}", json={"price": 20}, headers=owner.headers
    )
    assert changed.status_code == 200
    events_before = await audit_events(api.app)

    stale = await api.client.post(
        edit,
        data={"name": "Lamp", "price": "15", "version": "1", "save": "Save"},
        headers=SAME_ORIGIN,
    )
    assert stale.status_code == 400
    assert "changed by someone else" in stale.text
    assert (await api.client.get(f"/items/{item['id']}")).json()["price"] == 20
    assert await audit_events(api.app) == events_before

    # Reopened, the form carries the new version and the change goes through.
    reopened = await api.client.get(edit)
    version = _version_field(reopened.text)
    assert version == "2"
    saved = await api.client.post(
        edit,
        data={"name": "Lamp", "price": "15", "version": version, "save": "Save"},
        headers=SAME_ORIGIN,
    )
    assert saved.status_code == 302
    body = (await api.client.get(f"/items/{item['id']}")).json()
    assert body["price"] == 15
    event = (await audit_events(api.app))[-1]
    assert (event["actor_id"], event["action"]) == (admin.id, "item.update")
    assert event["changes"] == {"price": {"old": 20.0, "new": 15.0}}


async def test_an_item_is_deleted_through_the_items_service(api: Api) -> None:
    admin = await admin_signed_in(api)
    owner = await api.user()
    item = await api.item(owner, name="Chair", price=3)
    response = await api.client.delete(f"/admin/item/delete?pks={item['id']}", headers=SAME_ORIGIN)
    assert response.status_code == 200
    assert (await api.client.get(f"/items/{item['id']}")).status_code == 404
    event = (await audit_events(api.app))[-1]
    assert (event["actor_id"], event["action"], event["target_id"]) == (
        admin.id,
        "item.delete",
        str(item["id"]),
    )


async def test_users_are_searched_and_filtered_and_no_hash_is_ever_shown(api: Api) -> None:
    admin = await admin_signed_in(api)
    alice = await api.user(name="Alice Quartz")
    bob = await api.user(name="Bob Basalt")

    found = await api.client.get("/admin/user/list", params={"search": "quartz"})
    assert alice.email in found.text
    assert bob.email not in found.text
    by_email = await api.client.get("/admin/user/list", params={"search": bob.email})
    assert bob.email in by_email.text
    assert alice.email not in by_email.text
    admins = await api.client.get("/admin/user/list", params={"is_admin": "true"})
    assert admin.email in admins.text
    assert alice.email not in admins.text
    by_name = await api.client.get("/admin/user/list", params={"sortBy": "name", "sort": "asc"})
    assert by_name.text.index("Alice Quartz") < by_name.text.index("Bob Basalt")

    hashed = await api.sql("SELECT hashed_password FROM users WHERE id = :id", id=alice.id)
    for path in (
        "/admin/user/list",
        f"/admin/user/details/{alice.id}",
        f"/admin/user/edit/{alice.id}",
        "/admin/user/create",
    ):
        page = await api.client.get(path)
        assert page.status_code == 200, path
        assert hashed not in page.text
        assert "$argon2" not in page.text
        assert "hashed_password" not in page.text
    # The export that would list every column is off.
    assert (await api.client.get("/admin/user/export/csv")).status_code == 403


async def test_an_admin_edits_a_user_through_the_users_service(api: Api) -> None:
    admin = await admin_signed_in(api)
    user = await api.user(name="Carol")
    response = await api.client.post(
        f"/admin/user/edit/{user.id}",
        data={"name": "Caroline", "email": user.email, "save": "Save"},  # flags unticked
        headers=SAME_ORIGIN,
    )
    assert response.status_code == 302, response.text
    # Deactivated: their token stops working, as after the API's change.
    assert (await api.client.get("/users/me", headers=user.headers)).status_code == 401
    event = (await audit_events(api.app))[-1]
    assert (event["actor_id"], event["action"]) == (admin.id, "user.update")
    assert event["changes"] == {
        "name": {"old": "Carol", "new": "Caroline"},
        "is_active": {"old": True, "new": False},
    }
    # The API's rules apply: an email in use is refused, and nothing changes.
    taken = await api.client.post(
        f"/admin/user/edit/{user.id}",
        data={"name": "Caroline", "email": admin.email, "is_active": "y", "save": "Save"},
        headers=SAME_ORIGIN,
    )
    assert taken.status_code == 400
    assert "Email already in use" in taken.text
    assert await api.count("users", "id = :id AND is_active = false", id=user.id) == 1


async def test_an_admin_creates_a_user_with_a_password_hashed_like_sign_up(api: Api) -> None:
    admin = await admin_signed_in(api)
    form = {"name": "Dora", "email": "dora@example.com", "is_active": "y", "save": "Save"}
    weak = await api.client.post(
        "/admin/user/create", data=form | {"password": "short"}, headers=SAME_ORIGIN
    )
    assert weak.status_code == 400
    assert "password" in weak.text
    assert await api.count("users", "email = 'dora@example.com'") == 0

    password = "dora-picks-a-long-one"
    created = await api.client.post(
        "/admin/user/create", data=form | {"password": password}, headers=SAME_ORIGIN
    )
    assert created.status_code == 302, created.text
    assert (await api.login("dora@example.com", password)).status_code == 200
    hashed = await api.sql("SELECT hashed_password FROM users WHERE email = 'dora@example.com'")
    assert hashed.startswith("$argon2id$")
    event = (await audit_events(api.app))[-1]
    assert (event["actor_id"], event["action"]) == (admin.id, "user.create")
    assert event["changes"]["email"] == {"old": None, "new": "dora@example.com"}
    assert password not in str(event)
    assert hashed not in str(event)


async def test_item_lists_count_only_as_far_as_the_pager_reaches(api: Api) -> None:
    admin = await admin_signed_in(api)
    owner = await api.user()
    await api.insert_items(
        [{"name": f"Bulk {n}", "price": n, "owner_id": admin.id} for n in range(300)]
        + [{"name": f"Few {n}", "price": n, "owner_id": owner.id} for n in range(3)]
    )
    first = await api.client.get("/admin/item/list")
    assert first.status_code == 200
    # 25 a page and 7 pages ahead: 200 rows counted at most, of 303.
    assert "Showing 1 to 25 of more than 200 items" in first.text
    filtered = await api.client.get(
        "/admin/item/list", params={"owner_id": owner.id, "owner_id_op": "equals"}
    )
    assert "Showing 1 to 3 of 3 items" in filtered.text
    priced = await api.client.get(
        "/admin/item/list",
        params={
            "price_from": 10,
            "price_from_op": "greater_than",
            "price_to": 15,
            "price_to_op": "less_than",
        },
    )
    assert "of 4 items" in priced.text  # 11 to 14, of the bulk's
    searched = await api.client.get("/admin/item/list", params={"search": "few"})
    assert "of 3 items" in searched.text
    deep = await api.client.get("/admin/item/list", params={"page": 12})
    assert "Showing 276 to 300 of" in deep.text


async def test_audit_events_are_read_only_newest_first_and_filtered(api: Api) -> None:
    admin = await admin_signed_in(api)
    user = await api.user(name="Eve")
    other = await api.user(name="Finn")
    for account in (user, other):  # Eve's change first
        response = await api.client.patch(
            f"/users/{account.id}", json={"name": "Renamed"}, headers=admin.headers
        )
        assert response.status_code == 200
    await api.client.patch("/users/me", json={"name": "Ada 2"}, headers=admin.headers)
    page = await api.client.get("/admin/audit-event/list")
    assert page.status_code == 200
    assert page.text.index("Ada 2") < page.text.index("Finn") < page.text.index("Eve")
    by_target = await api.client.get(
        "/admin/audit-event/list",
        params={"target_type": "user", "target_id": str(user.id), "target_id_op": "equals"},
    )
    assert "Eve" in by_target.text
    assert "Finn" not in by_target.text
    assert "Ada 2" not in by_target.text
    by_actor = await api.client.get(
        "/admin/audit-event/list",
        params={"actor_id": str(admin.id), "actor_id_op": "equals"},
    )
    assert "of 3 items" in by_actor.text
    nobody = await api.client.get(
        "/admin/audit-event/list",
        params={"actor_id": str(user.id), "actor_id_op": "equals"},
    )
    assert "Renamed" not in nobody.text
    for path in ("/admin/audit-event/create", "/admin/audit-event/edit/1"):
        assert (await api.client.get(path)).status_code == 403
        assert (await api.client.post(path, headers=SAME_ORIGIN)).status_code == 403
    deletion = await api.client.delete("/admin/audit-event/delete?pks=1", headers=SAME_ORIGIN)
    assert deletion.status_code == 403
    assert len(await audit_events(api.app)) == 3


async def test_pages_are_same_origin_only_and_assets_are_served_by_bazaar(api: Api) -> None:
    login = await api.client.get("/admin/login")
    policy = login.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert login.headers["cache-control"] == "no-store"
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', login.text)
    assert assets
    for asset in assets:
        assert asset.startswith(f"{ORIGIN}/admin/statics/"), asset
        assert (await api.client.get(asset)).status_code == 200
    assert (await api.client.get("/admin")).headers["location"] == "/admin/"
    # Links are written from the public URL, whatever Host a request names.
    elsewhere = await api.client.get("/admin/", headers={"Host": "evil.example"})
    assert elsewhere.headers["location"] == f"{ORIGIN}/admin/login"


async def test_an_admin_revokes_a_session_through_the_sessions_service(api: Api) -> None:
    admin = await admin_signed_in(api)
    user = await api.user(name="Gil")
    other = await api.login(user.email, user.password)
    assert other.status_code == 200
    listed = (await api.client.get("/auth/sessions", headers=user.headers)).json()
    current = next(s["id"] for s in listed if s["current"])
    kept = next(s["id"] for s in listed if not s["current"])

    page = await api.client.get(
        "/admin/login-session/list", params={"user_id": user.id, "user_id_op": "equals"}
    )
    assert current in page.text
    assert kept in page.text
    assert "of 2 items" in page.text
    # The action's link only asks: nothing ends on a GET.
    asked = await api.client.get("/admin/login-session/action/revoke", params={"pks": current})
    assert asked.status_code == 200
    assert current in asked.text
    assert (await api.client.get("/users/me", headers=user.headers)).status_code == 200

    form = {"pks": current}
    foreign = await api.client.post(
        "/admin/login-session/revoke", data=form, headers={"Origin": "http://evil.example"}
    )
    assert foreign.status_code == 403
    assert (await api.client.get("/users/me", headers=user.headers)).status_code == 200

    revoked = await api.client.post("/admin/login-session/revoke", data=form, headers=SAME_ORIGIN)
    assert revoked.status_code == 302
    assert (await api.client.get("/users/me", headers=user.headers)).status_code == 401
    # Only that one: the user's other session goes on.
    token = other.json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert (await api.client.get("/users/me", headers=headers)).status_code == 200
    event = (await audit_events(api.app))[-1]
    assert (event["actor_id"], event["action"], event["target_id"]) == (
        admin.id,
        "session.revoke",
        str(user.id),
    )
    assert event["changes"] == {"session": {"old": current, "new": None}}
    # Revoked already: asking again offers nothing to revoke.
    again = await api.client.get("/admin/login-session/action/revoke", params={"pks": current})
    assert "None of the sessions chosen is open" in again.text


async def test_signing_out_ends_the_admins_session(api: Api) -> None:
    admin = await admin_signed_in(api)
    listed = (await api.client.get("/auth/sessions", headers=admin.headers)).json()
    assert len(listed) == 2  # the API login's, and the admin UI's
    assert (await api.client.get("/admin/logout")).status_code == 302
    listed = (await api.client.get("/auth/sessions", headers=admin.headers)).json()
    assert [s["current"] for s in listed] == [True]
    event = (await audit_events(api.app))[-1]
    assert (event["actor_id"], event["action"]) == (admin.id, "session.revoke")


async def test_an_id_out_of_range_is_no_row(api: Api) -> None:
    await admin_signed_in(api)
    for path in (
        "/admin/item/edit/99999999999",
        "/admin/item/details/-1",
        "/admin/user/details/abc",
        "/admin/user/edit/0",
    ):
        assert (await api.client.get(path)).status_code == 404, path


async def test_the_outbox_is_read_without_bodies_and_a_failed_mail_is_retried(api: Api) -> None:
    admin = await admin_signed_in(api)
    user = await api.user(name="Hal")  # signing up queued a verification mail
    mail_id = await api.sql("SELECT id FROM outbox WHERE recipient = :e", e=user.email)
    body = await api.sql("SELECT body FROM outbox WHERE id = :id", id=mail_id)
    link = re.search(r"token=[A-Za-z0-9_-]+", body)
    assert link is not None
    await api.sql(
        "UPDATE outbox SET failed_at = created_at, last_error = 'SMTPServerDisconnected' "
        "WHERE id = :id",
        id=mail_id,
    )

    listed = await api.client.get("/admin/outbox-mail/list", params={"state": "failed"})
    assert listed.status_code == 200
    assert user.email in listed.text
    assert "SMTPServerDisconnected" in listed.text
    assert "of 1 items" in listed.text
    details = await api.client.get(f"/admin/outbox-mail/details/{mail_id}")
    for page in (listed, details):
        # The body's link carries a live token: never shown.
        assert link.group(0) not in page.text

    asked = await api.client.get("/admin/outbox-mail/action/retry", params={"pks": mail_id})
    assert asked.status_code == 200
    assert user.email in asked.text
    assert await api.count("outbox", "id = :id AND failed_at IS NOT NULL", id=mail_id) == 1
    form = {"pks": str(mail_id)}
    foreign = await api.client.post(
        "/admin/outbox-mail/retry", data=form, headers={"Origin": "http://evil.example"}
    )
    assert foreign.status_code == 403
    assert await api.count("outbox", "id = :id AND failed_at IS NOT NULL", id=mail_id) == 1

    retried = await api.client.post("/admin/outbox-mail/retry", data=form, headers=SAME_ORIGIN)
    assert retried.status_code == 302
    assert await api.count("outbox", "id = :id AND failed_at IS NULL", id=mail_id) == 1
    event = (await audit_events(api.app))[-1]
    assert (event["actor_id"], event["action"], event["target_id"]) == (
        admin.id,
        "mail.retry",
        str(mail_id),
    )
    assert event["changes"]["failed_at"]["new"] is None
    # A mail that has not failed is left alone, and nothing is recorded.
    again = await api.client.post("/admin/outbox-mail/retry", data=form, headers=SAME_ORIGIN)
    assert again.status_code == 302
    assert (await audit_events(api.app))[-1] == event


async def test_users_are_filtered_by_a_verified_email(api: Api) -> None:
    admin = await admin_signed_in(api)
    unverified = await api.user(name="Ivy")
    await api.sql("UPDATE users SET is_verified = true WHERE id = :id", id=admin.id)
    verified = await api.client.get("/admin/user/list", params={"is_verified": "true"})
    assert admin.email in verified.text
    assert unverified.email not in verified.text
    not_yet = await api.client.get("/admin/user/list", params={"is_verified": "false"})
    assert unverified.email in not_yet.text
    assert admin.email not in not_yet.text

"""Users, login sessions and `GET /me` (HTTP only; the rules are in service.py)."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from clarion.accounts import repository as accounts_repository
from clarion.accounts.routes import account_out
from clarion.accounts.service import require_account
from clarion.audit import service as audit
from clarion.auth import AdminDep, CurrentPrincipal, get_db, request_now
from clarion.db.deps import ReadSessionDep, SessionDep
from clarion.errors import Forbidden, NotFound
from clarion.people import repository, service, sessions
from clarion.people.schemas import KeyOut, LoginIn, LoginOut, MeOut, UserCreate, UserOut, UserUpdate
from clarion.roles import OWNER, VIEWER, requires
from clarion.schemas import Page, PageParams, PathId, page_params

router = APIRouter(tags=["people"])
admin_router = APIRouter(prefix="/admin/accounts", tags=["admin"], dependencies=[AdminDep])


@admin_router.post("/{account_id}/users", status_code=201, response_model=UserOut)
async def admin_create_user(
    account_id: PathId, body: UserCreate, request: Request, session: SessionDep
) -> UserOut:
    """The operator creates a user of the account (the first owner, typically). 409 when the
    email is taken (emails are unique across the installation, in any case)."""
    user = await service.create_user(session, account_id, body, request_now(request))
    audit.describe(
        request,
        action="user.create",
        target=("user", user.id),
        detail={"email": user.email, "role": user.role},
    )
    return UserOut.model_validate(user)


@router.post("/users", status_code=201, response_model=UserOut, openapi_extra=requires(OWNER))
async def create_user(
    body: UserCreate, request: Request, principal: CurrentPrincipal, session: SessionDep
) -> UserOut:
    """An owner adds a user to the account."""
    user = await service.create_user(session, principal.account_id, body, request_now(request))
    audit.describe(
        request,
        action="user.create",
        target=("user", user.id),
        detail={"email": user.email, "role": user.role},
    )
    return UserOut.model_validate(user)


@router.get("/users", response_model=Page[UserOut])
async def list_users(
    principal: CurrentPrincipal,
    session: ReadSessionDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[UserOut]:
    rows, total = await repository.users_page(
        session, principal.account_id, page.limit, page.offset
    )
    return Page(
        items=[UserOut.model_validate(u) for u in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/users/{user_id}", response_model=UserOut)
async def get_user(
    user_id: PathId, principal: CurrentPrincipal, session: ReadSessionDep
) -> UserOut:
    return UserOut.model_validate(
        await service.require_user(session, principal.account_id, user_id)
    )


@router.put("/users/{user_id}", response_model=UserOut, openapi_extra=requires(VIEWER))
async def update_user(
    user_id: PathId,
    body: UserUpdate,
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
) -> UserOut:
    """Partial. An owner may change anyone's `name`, `role` and `password`; any user may
    change their own `name`, and their own `password` with `currentPassword` (401 when it is
    wrong). A password change ends the user's other sessions. Demoting the last owner is
    409; anything else a non-owner tries is 403 with `requiredRole: owner`."""
    user, changed = await service.update_user(session, principal, user_id, body)
    audit.describe(request, target=("user", user.id), detail=changed)
    return UserOut.model_validate(user)


@router.delete("/users/{user_id}", status_code=204, openapi_extra=requires(OWNER))
async def delete_user(
    user_id: PathId, request: Request, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    """Remove the user and end their sessions at once. The last owner cannot be deleted
    (409)."""
    user = await service.delete_user(session, principal.account_id, user_id)
    audit.describe(request, target=("user", user_id), detail={"email": user.email})
    return Response(status_code=204)


def _problem(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/Problem"}
    return {"description": description, "content": {"application/problem+json": {"schema": schema}}}


@router.post(
    "/auth/login",
    response_model=LoginOut,
    responses={
        401: _problem("Wrong email or password (the same answer for both)"),
        429: _problem("Too many failed logins for this email; see Retry-After"),
    },
)
async def login(body: LoginIn, request: Request, response: Response) -> LoginOut:
    """Sign in: sets the `clarion_session` cookie (HttpOnly, SameSite=Lax) and the
    `clarion_csrf` cookie, whose value every later request that is not GET/HEAD/OPTIONS must
    send in `X-CSRF-Token`. A wrong email and a wrong password are the same 401. After 10
    failed logins for one email within 15 minutes, every attempt (right password or not) is
    429 with `Retry-After` until that window ends. Sessions end after 12 h without a
    request, after 7 days in all, at logout, when the user is deleted, and (all but the
    current one) when the user's password changes."""
    done = await service.login(get_db(request), body.email, body.password, request_now(request))
    async with get_db(request).transaction() as session:
        await audit.record(
            session,
            account_id=done.user.account_id,
            actor=audit.Actor("user", done.user.id, done.user.email),
            action="user.login",
            target=("user", done.user.id),
        )
        account = await account_out(session, done.account)
    sessions.set_cookies(request, response, done.new)
    return LoginOut(user=UserOut.model_validate(done.user), account=account)


@router.post(
    "/auth/logout",
    status_code=204,
    responses={403: _problem("The session's CSRF header is missing or wrong")},
)
async def logout(request: Request) -> Response:
    """End the session of the cookie (204 also when there is none). Like any write by
    session, it needs `X-CSRF-Token` (403 without)."""
    response = Response(status_code=204)
    token = request.cookies.get(sessions.SESSION_COOKIE)
    found = await sessions.resolve(get_db(request), token, request_now(request)) if token else None
    if found is not None:
        row, user = found
        if not sessions.csrf_ok(request, row):
            raise Forbidden(
                f"Signing out needs {sessions.CSRF_HEADER} equal to the "
                f"{sessions.CSRF_COOKIE} cookie.",
                reason="csrf",
            )
        async with get_db(request).transaction() as session:
            await repository.end_session(session, row.id)
            await audit.record(
                session,
                account_id=user.account_id,
                actor=audit.Actor("user", user.id, user.email),
                action="user.logout",
                target=("user", user.id),
            )
    sessions.clear_cookies(response)
    return response


@router.get("/me", response_model=MeOut)
async def me(principal: CurrentPrincipal, session: ReadSessionDep) -> MeOut:
    """Whoever is calling: the user (session) or the API key, their account and role."""
    account = await account_out(session, await require_account(session, principal.account_id))
    if principal.kind == "user":
        user = await service.require_user(session, principal.account_id, principal.id)
        return MeOut(user=UserOut.model_validate(user), key=None, account=account, role=user.role)
    key = await accounts_repository.key_of(session, principal.account_id, principal.id)
    if key is None:  # revoked since this request was authenticated
        raise NotFound("This API key no longer exists.")
    return MeOut(user=None, key=KeyOut.model_validate(key), account=account, role=key.role)

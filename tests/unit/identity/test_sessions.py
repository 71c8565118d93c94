"""``identity.sessions``: signing in with a Uid or nick name and a password, the throttle and
the audit of every attempt, the life of a session (idle, lifetime, sign-out, a disabled user,
a new password) with the time handed in, and a form's one-time token."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from opendms.identity import passwords, service, sessions
from opendms.identity.roles import Role
from opendms.store.db import Store
from opendms.store.models import ConsoleSession, SignInAttempt, User, utcnow
from opendms.store.states import SignInOutcome, UserState

PASSWORD = "correct horse battery"
T0 = datetime(2026, 12, 1, 9, 0, 0)
NO_LISTS = '{"Version":"1","Statement":[{"Effect":"Deny","Action":"dms:List*","Resource":"*"}]}'


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 with the least work: the rules under test are the same, the suite is faster."""
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(1, 8, 1))


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every hash a sign-in checked a password against, in order."""
    seen: list[str] = []
    real = passwords._verify

    def counting(hashed: str, password: str) -> bool:
        seen.append(hashed)
        return real(hashed, password)

    monkeypatch.setattr(passwords, "_verify", counting)
    return seen


@pytest.fixture
def pat(store: Store, tid: int) -> User:
    """A DBA, Uid 700, nick name pat, with a password."""
    with store.session() as s:
        user = service.register_user(s, None, tid, "700", nick_name="pat", roles="DBA")
        sessions.set_password(s, "700", PASSWORD)
        s.expunge(user)
    return user


@pytest.fixture(params=["sqlite", "postgresql"])
def each_store(request: pytest.FixtureRequest, store: Store) -> Iterator[Store]:
    """The SQLite store, and a PostgreSQL one (where a failed insert spoils the transaction
    it ran in unless it had a savepoint of its own)."""
    if request.param == "sqlite":
        yield store
        return
    pg = Store(request.getfixturevalue("pg_store_url"))
    yield pg
    pg.dispose()


def sign_in(
    store: Store,
    name: str,
    password: str = PASSWORD,
    *,
    client: str = "10.0.0.1",
    now: datetime = T0,
) -> sessions.SignedIn | str:
    """As the sign-in page does: the attempt is kept whatever the outcome."""
    with store.session() as s:
        try:
            return sessions.sign_in(
                s, name, password, client_host=client, user_agent="pytest", now=now
            )
        except sessions.SignInRefused as exc:
            return exc.message


def signed_in(store: Store, name: str, **kwargs: object) -> sessions.SignedIn:
    result = sign_in(store, name, **kwargs)  # type: ignore[arg-type]
    assert isinstance(result, sessions.SignedIn), result
    return result


def live(store: Store, token: str, now: datetime) -> sessions.Live | None:
    with store.session() as s:
        return sessions.live(s, token, now)


def attempts(store: Store) -> list[tuple[str, str | None, str, SignInOutcome]]:
    with store.session() as s:
        rows = s.scalars(select(SignInAttempt).order_by(SignInAttempt.id)).all()
        return [(a.user_name, a.uid, a.client_host, a.outcome) for a in rows]


def row(store: Store, token: str) -> ConsoleSession:
    with store.session() as s:
        found = s.get(ConsoleSession, sessions._digest(token))
        assert found is not None
        s.expunge(found)
        return found


@pytest.mark.parametrize("name", ["700", "pat", "  pat  ", " 700"])
def test_sign_in_by_uid_or_nick_name(store: Store, tid: int, pat: User, name: str) -> None:
    got = signed_in(store, name)
    assert got.user_id == pat.user_id
    found = live(store, got.token, T0)
    assert found is not None
    assert (found.caller.uid, found.caller.user_id, found.caller.tid) == ("700", pat.user_id, tid)
    assert found.caller.roles == (Role.DBA,)
    assert found.caller.nick_name == "pat"
    assert found.caller.access_key_id == sessions.CONSOLE_KEY
    assert found.csrf_token == got.csrf_token
    assert found.expires_at == T0 + sessions.LIFETIME
    assert attempts(store) == [(name.strip(), "700", "10.0.0.1", SignInOutcome.SIGNED_IN)]
    with store.session() as s:
        assert s.get(User, pat.user_id).last_login_at == T0
        # only the token's hash is stored: a copy of the store opens no session
        stored = s.get(ConsoleSession, sessions._digest(got.token))
        assert stored is not None and stored.token_sha256 != got.token
        assert (
            s.scalar(select(ConsoleSession).where(ConsoleSession.token_sha256 == got.token)) is None
        )


def test_each_sign_in_opens_a_new_session(store: Store, pat: User) -> None:
    first, second = signed_in(store, "pat"), signed_in(store, "700")
    assert first.token != second.token and first.csrf_token != second.csrf_token
    assert live(store, first.token, T0) is not None and live(store, second.token, T0) is not None


def test_a_wrong_password_and_an_unknown_name_read_and_cost_the_same(
    store: Store, pat: User, hashes: list[str]
) -> None:
    """Nothing tells a wrong name from a wrong password: not the words, and not the work
    done (a wrong name is checked against a hash as a wrong password is)."""
    answers = {
        name: sign_in(store, name, "not the password")
        for name in ("pat", "700", "nobody", "12345", "")
    }
    assert set(answers.values()) == {"Wrong username or password."}
    assert len(hashes) == len(answers)
    assert [(a[0], a[3]) for a in attempts(store)] == [
        (name, SignInOutcome.WRONG) for name in answers
    ]


def test_an_account_without_a_password_or_without_a_tenant_signs_in_nowhere(
    store: Store, tid: int, hashes: list[str]
) -> None:
    with store.session() as s:
        service.register_user(s, None, tid, "701", nick_name="nopw")
        service.register_user(s, None, tid, "702", nick_name="gone")
        sessions.set_password(s, "702", PASSWORD)
        service.set_user_state(s, None, tid, "702", "DELETE")
    for name in ("701", "nopw", "702", "gone"):
        assert sign_in(store, name) == "Wrong username or password."
    assert len(hashes) == 4  # each cost a hash, as a wrong password does
    assert [a[1] for a in attempts(store)] == ["701", "701", "702", None]
    assert {a[3] for a in attempts(store)} == {SignInOutcome.WRONG}


def test_a_nick_name_two_accounts_share_names_nobody(store: Store, tid: int, pat: User) -> None:
    with store.session() as s:
        other = service.create_tenant(s, "other").tid
        service.register_user(s, None, other, "800", nick_name="pat")
        sessions.set_password(s, "800", PASSWORD)
    assert sign_in(store, "pat") == "Wrong username or password."
    assert signed_in(store, "700").user_id == pat.user_id  # the Uid still does
    assert isinstance(sign_in(store, "800"), sessions.SignedIn)


def test_a_member_of_two_tenants_signs_in_to_the_active_one_where_allowed(
    store: Store, tid: int, pat: User
) -> None:
    with store.session() as s:
        second = service.create_tenant(s, "second").tid
        there = service.register_user(s, None, second, "700", nick_name="pat")
        there_id = there.user_id
    # The account's active tenant stays the first one it joined.
    assert signed_in(store, "pat").user_id == pat.user_id
    with store.session() as s:
        service.set_user_state(s, None, tid, "700", "DISABLE")
    # Disabled in the first tenant, the account signs in to the one it may still use.
    got = signed_in(store, "pat")
    assert got.user_id == there_id
    assert live(store, got.token, T0).caller.tid == second


def test_a_disabled_user_is_refused_after_the_right_password_only(
    store: Store, tid: int, pat: User
) -> None:
    with store.session() as s:
        service.set_user_state(s, None, tid, "700", "DISABLE")
    assert sign_in(store, "pat", "not the password") == "Wrong username or password."
    refused = sign_in(store, "pat")
    assert isinstance(refused, str) and "disabled" in refused
    assert [a[1:] for a in attempts(store)] == [
        ("700", "10.0.0.1", SignInOutcome.WRONG),
        ("700", "10.0.0.1", SignInOutcome.DISABLED),
    ]
    with store.session() as s:
        assert s.scalars(select(ConsoleSession)).all() == []


def test_disabling_or_deleting_a_user_ends_their_sessions(
    store: Store, tid: int, pat: User
) -> None:
    with store.session() as s:
        service.register_user(s, None, tid, "701", nick_name="kim")
        sessions.set_password(s, "701", PASSWORD)
    mine, kims = signed_in(store, "pat"), signed_in(store, "kim")
    with store.session() as s:
        service.set_user_state(s, None, tid, "700", "DISABLE")
    assert live(store, mine.token, T0) is None
    ended = row(store, mine.token)
    assert ended.ended_at is not None and ended.ended_why == "user_disable"
    assert live(store, kims.token, T0) is not None  # nobody else's
    # Enabled again, the user signs in afresh: the old session stays ended.
    with store.session() as s:
        service.set_user_state(s, None, tid, "700", "NORMAL")
    assert live(store, mine.token, T0) is None
    assert live(store, signed_in(store, "pat").token, T0) is not None
    with store.session() as s:
        service.set_user_state(s, None, tid, "701", "DELETE")
    assert live(store, kims.token, T0) is None
    assert row(store, kims.token).ended_why == "user_delete"


def test_a_disabled_users_session_is_refused_even_if_it_was_not_ended(
    store: Store, tid: int, pat: User
) -> None:
    """The state is read with the session each time: a user disabled by any path is out."""
    got = signed_in(store, "pat")
    with store.session() as s:
        s.get(User, pat.user_id).state = UserState.DISABLE
    assert live(store, got.token, T0) is None
    assert row(store, got.token).ended_at is None


def test_a_new_password_ends_every_session_of_the_account(
    store: Store, tid: int, pat: User
) -> None:
    with store.session() as s:
        second = service.create_tenant(s, "second").tid
        service.register_user(s, None, second, "700", nick_name="pat")
        service.register_user(s, None, tid, "701", nick_name="kim")
        sessions.set_password(s, "701", PASSWORD)
    here = signed_in(store, "pat")
    with store.session() as s:
        s.get(User, pat.user_id).state = UserState.DISABLE
    there = signed_in(store, "pat")  # in the second tenant
    with store.session() as s:
        s.get(User, pat.user_id).state = UserState.NORMAL
    kims = signed_in(store, "kim")
    with store.session() as s:
        sessions.set_password(s, "700", "another long password")
    for token in (here.token, there.token):
        assert live(store, token, T0) is None
        assert row(store, token).ended_why == "password_changed"
    assert live(store, kims.token, T0) is not None
    assert sign_in(store, "pat") == "Wrong username or password."
    assert isinstance(sign_in(store, "pat", "another long password"), sessions.SignedIn)


def test_signing_out_ends_that_session_only(store: Store, pat: User) -> None:
    one, two = signed_in(store, "pat"), signed_in(store, "pat")
    with store.session() as s:
        sessions.end(s, one.token, T0 + timedelta(minutes=5))
    assert live(store, one.token, T0 + timedelta(minutes=6)) is None
    ended = row(store, one.token)
    assert (ended.ended_at, ended.ended_why) == (T0 + timedelta(minutes=5), "signed_out")
    assert live(store, two.token, T0 + timedelta(minutes=6)) is not None
    with store.session() as s:  # ending it again changes nothing
        sessions.end(s, one.token, T0 + timedelta(hours=1))
    assert row(store, one.token).ended_at == T0 + timedelta(minutes=5)


def test_an_idle_session_ends_and_use_keeps_one_open(store: Store, pat: User) -> None:
    got = signed_in(store, "pat")
    idle = sessions.IDLE
    just_before = T0 + idle - timedelta(seconds=1)
    assert live(store, got.token, just_before) is not None  # used: seen again
    assert row(store, got.token).last_seen_at == just_before
    assert live(store, got.token, just_before + idle - timedelta(seconds=1)) is not None
    assert live(store, got.token, just_before + idle - timedelta(seconds=1) + idle) is None

    unused = signed_in(store, "pat")
    assert live(store, unused.token, T0 + idle) is None


def test_a_session_ends_after_its_lifetime_however_busy(store: Store, pat: User) -> None:
    got = signed_in(store, "pat")
    at = T0
    while at + sessions.IDLE / 2 < T0 + sessions.LIFETIME:
        at += sessions.IDLE / 2
        assert live(store, got.token, at) is not None
    assert live(store, got.token, T0 + sessions.LIFETIME - timedelta(seconds=1)) is not None
    assert live(store, got.token, T0 + sessions.LIFETIME) is None


def test_a_read_within_a_minute_writes_nothing(store: Store, pat: User) -> None:
    got = signed_in(store, "pat")
    assert live(store, got.token, T0 + sessions.TOUCH_EVERY - timedelta(seconds=1))
    assert row(store, got.token).last_seen_at == T0
    assert live(store, got.token, T0 + sessions.TOUCH_EVERY)
    assert row(store, got.token).last_seen_at == T0 + sessions.TOUCH_EVERY


@pytest.mark.parametrize("token", ["", "x", "A" * 43, "A" * 500])
def test_a_made_up_token_opens_nothing(store: Store, pat: User, token: str) -> None:
    signed_in(store, "pat")
    assert live(store, token, T0) is None


def test_roles_and_policies_changed_mid_session_apply_at_once(
    store: Store, tid: int, pat: User
) -> None:
    got = signed_in(store, "pat")
    before = live(store, got.token, T0)
    assert before is not None and before.caller.roles == (Role.DBA,)
    with store.session() as s:
        service.update_user(s, None, tid, "700", roles="USER")
    after = live(store, got.token, T0)
    assert after is not None and after.caller.roles == (Role.USER,)
    assert after.auth_version > before.auth_version  # the gateway's policy cache moves on
    with store.session() as s:
        service.attach_policy(s, tid, "700", "no-lists", NO_LISTS, actor=None)
    latest = live(store, got.token, T0)
    assert latest is not None and latest.auth_version > after.auth_version


# ---------------------------------------------------------------- throttle


def test_five_failures_for_a_name_hold_it_back_for_the_window(
    store: Store, pat: User, hashes: list[str]
) -> None:
    for i in range(sessions.MAX_FAILURES_PER_NAME):
        at = T0 + timedelta(minutes=i)
        assert sign_in(store, "pat", "wrong", client=f"10.0.1.{i}", now=at) == (
            "Wrong username or password."
        )
    tried = len(hashes)
    last_failure = T0 + timedelta(minutes=sessions.MAX_FAILURES_PER_NAME - 1)
    # Even the right password, from another address: held back, and not even tried.
    held = sign_in(store, "pat", client="10.9.9.9", now=last_failure + timedelta(seconds=1))
    assert held == "Too many failed sign-ins. Try again in 15 minutes."
    assert len(hashes) == tried
    assert attempts(store)[-1][3] == SignInOutcome.THROTTLED
    # Other names are not held back.
    with store.session() as s:
        service.register_user(s, None, pat.tid, "701", nick_name="kim")
        sessions.set_password(s, "701", PASSWORD)
    assert isinstance(sign_in(store, "kim", now=last_failure), sessions.SignedIn)
    # Once the first failure is out of the window, one more try is allowed.
    assert sign_in(store, "pat", now=T0 + sessions.WINDOW).startswith("Too many")
    after = T0 + sessions.WINDOW + timedelta(seconds=1)
    assert isinstance(sign_in(store, "pat", now=after), sessions.SignedIn)


def test_the_name_throttle_holds_for_the_account_however_it_is_named(each_store: Store) -> None:
    """The Uid and each nick name of an account share one count: naming it another way
    buys no more guesses."""
    store = each_store
    with store.session() as s:
        tid = service.create_tenant(s, "t").tid
        service.register_user(s, None, tid, "700", nick_name="pat")
        sessions.set_password(s, "700", PASSWORD)
        second = service.create_tenant(s, "second").tid
        service.register_user(s, None, second, "700", nick_name="patricia")
    names = ["pat", "700", "patricia", "pat", "700"]
    for i, name in enumerate(names):
        assert sign_in(store, name, "wrong", now=T0 + timedelta(seconds=i)).startswith("Wrong")
    for name in ("pat", "700", "patricia"):
        assert sign_in(store, name, now=T0 + timedelta(minutes=1)).startswith("Too many")
    # The failures are on the account's record, whatever name was typed.
    assert {a[1] for a in attempts(store)} == {"700"}


def test_thirty_failures_from_one_address_hold_it_back(store: Store, pat: User) -> None:
    for i in range(sessions.MAX_FAILURES_PER_CLIENT):
        assert sign_in(store, f"guess{i}", "wrong", client="10.6.6.6").startswith("Wrong")
    assert sign_in(store, "pat", client="10.6.6.6").startswith("Too many")
    assert isinstance(sign_in(store, "pat", client="10.7.7.7"), sessions.SignedIn)
    later = T0 + sessions.WINDOW + timedelta(seconds=1)
    assert isinstance(sign_in(store, "pat", client="10.6.6.6", now=later), sessions.SignedIn)


def test_successes_and_refusals_of_a_disabled_user_count_no_failure(
    store: Store, tid: int, pat: User
) -> None:
    for _ in range(sessions.MAX_FAILURES_PER_NAME + 1):
        signed_in(store, "pat")
    with store.session() as s:
        service.set_user_state(s, None, tid, "700", "DISABLE")
    for _ in range(sessions.MAX_FAILURES_PER_NAME + 1):
        assert "disabled" in str(sign_in(store, "pat"))


def test_what_is_kept_of_an_attempt_is_bounded(store: Store, pat: User) -> None:
    long_name, long_client = "n" * 500, "c" * 500
    assert sign_in(store, long_name, client=long_client).startswith("Wrong")
    name, uid, client, outcome = attempts(store)[-1]
    assert (name, uid, client, outcome) == ("n" * 64, None, "c" * 64, SignInOutcome.WRONG)


# ---------------------------------------------------------------- one-time form tokens


def test_a_form_token_is_claimed_once_per_user(each_store: Store) -> None:
    store, now = each_store, utcnow()
    with store.session() as s:
        tid = service.create_tenant(s, "t").tid
        me = service.register_user(s, None, tid, "700").user_id
        other = service.register_user(s, None, tid, "701").user_id
    with store.session() as s:
        assert sessions.claim_once(s, me, "form-1", now)
        assert not sessions.claim_once(s, me, "form-1", now)  # the double click
        # the transaction the page runs in goes on after a refused claim
        assert sessions.claim_once(s, me, "form-2", now)
        assert s.get(User, me) is not None
    with store.session() as s:  # kept: a resent form finds it used
        assert not sessions.claim_once(s, me, "form-1", now)
        assert not sessions.claim_once(s, me, "form-2", now)
        # another user's identical token is theirs to use
        assert sessions.claim_once(s, other, "form-1", now)


@pytest.mark.parametrize("token", ["", "x" * 129])
def test_no_token_or_an_oversized_one_is_never_a_first_use(
    store: Store, pat: User, token: str
) -> None:
    with store.session() as s:
        assert not sessions.claim_once(s, pat.user_id, token, utcnow())


def test_a_claimed_token_is_forgotten_only_when_no_form_could_carry_it(
    store: Store, pat: User
) -> None:
    """Claims are purged with request nonces after a session's lifetime: no page rendered
    in a session that is still open can carry a forgotten token."""
    from opendms.identity.credentials import purge_nonces

    now = utcnow()
    with store.session() as s:
        assert sessions.claim_once(s, pat.user_id, "old", now - sessions.LIFETIME * 2)
        assert sessions.claim_once(s, pat.user_id, "new", now)
    with store.engine.begin() as conn:
        assert purge_nonces(conn, now) == 1
    with store.session() as s:
        assert not sessions.claim_once(s, pat.user_id, "new", now)

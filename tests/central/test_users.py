"""Dashboard users: hashes, roles, wrong passwords, duplicates, and the admin's command line."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fleet_stores import fleet_at, rows

from central.users import UserError, Users, hash_password, main, verify_password


@pytest.fixture
def users(tmp_path: Path) -> Users:
    return Users(fleet_at(tmp_path))


def test_hash_is_salted_and_verifies() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second  # a fresh salt each time: equal passwords do not give equal hashes
    assert first.startswith("scrypt$") and "correct horse" not in first
    assert verify_password("correct horse", first)
    assert verify_password("correct horse", second)
    assert not verify_password("correct hors", first)
    assert not verify_password("correct horse", "garbage")
    assert not verify_password("correct horse", "md5$1$2$3$00$00")


def test_check_returns_the_role_only_for_the_right_password(users: Users) -> None:
    users.add("wang", "pass-word-1", "viewer")
    users.add("li", "pass-word-2", "technician")
    users.add("zhao", "pass-word-3", "admin")
    assert users.check("wang", "pass-word-1") == "viewer"
    assert users.check("li", "pass-word-2") == "technician"
    assert users.check("zhao", "pass-word-3") == "admin"
    assert users.check("li", "pass-word-1") is None
    assert users.check("li", "") is None
    assert users.check("nobody", "pass-word-2") is None
    assert users.list() == [
        {"username": "li", "role": "technician"},
        {"username": "wang", "role": "viewer"},
        {"username": "zhao", "role": "admin"},
    ]


def test_password_is_not_stored_in_clear(users: Users, tmp_path: Path) -> None:
    users.add("wang", "secret-secret", "viewer")
    dump = "\n".join(map(repr, rows(fleet_at(tmp_path), "SELECT * FROM users")))
    assert "secret-secret" not in dump
    assert "scrypt$" in dump


def test_duplicate_user_is_refused(users: Users) -> None:
    users.add("wang", "pass-word-1", "viewer")
    with pytest.raises(UserError, match="already exists"):
        users.add("wang", "other-password", "admin")
    assert users.check("wang", "pass-word-1") == "viewer"  # the first one is untouched


def test_bad_role_short_password_and_unknown_user(users: Users) -> None:
    with pytest.raises(UserError, match="role 'root'"):
        users.add("wang", "pass-word-1", "root")
    with pytest.raises(UserError, match="at least 8"):
        users.add("wang", "short", "viewer")
    with pytest.raises(UserError, match="no user"):
        users.set_password("ghost", "pass-word-1")
    with pytest.raises(UserError, match="no user"):
        users.remove("ghost")
    assert users.list() == []


def test_password_change_role_change_and_removal(users: Users, tmp_path: Path) -> None:
    users.add("wang", "pass-word-1", "viewer")
    users.set_password("wang", "pass-word-new")
    assert users.check("wang", "pass-word-1") is None
    assert users.check("wang", "pass-word-new") == "viewer"
    users.set_role("wang", "technician")
    assert users.role("wang") == "technician"
    assert Users(fleet_at(tmp_path)).check("wang", "pass-word-new") == "technician"  # persisted
    users.remove("wang")
    assert users.check("wang", "pass-word-new") is None
    assert users.role("wang") is None


def test_command_line_adds_lists_and_reports_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(fleet_at(tmp_path))
    assert main(["--db", db, "add", "li", "--role", "technician"], stdin=io.StringIO("pass-word-2\n")) == 0
    assert main(["--db", db, "add", "li"], stdin=io.StringIO("pass-word-3\n")) == 1
    assert "already exists" in capsys.readouterr().err
    out = io.StringIO()
    assert main(["--db", db, "list"], stdout=out) == 0
    assert out.getvalue() == "li\ttechnician\n"
    assert Users(db).check("li", "pass-word-2") == "technician"

"""The `linli` command line: creating users with scoped roles, help texts, the secret key, db check,
match runs and solving problem files."""

from __future__ import annotations

import json
import stat

import pytest
from sqlalchemy import func, select

from alembic import command
from tests.conftest import TEST_PASSWORD
from tests.factories import make_demand
from web import config
from web.app import create_app
from web.cli import alembic_config
from web.config import Settings
from web.models import MatchProposal, MatchRun, User
from web.services import matching
from web.services.auth import verify_password

pytestmark = pytest.mark.db


def user_count(session) -> int:
    return session.scalar(select(func.count()).select_from(User))


def create_user(runner, username: str, *roles: str, password: str = TEST_PASSWORD):
    args = ["users", "create", username, "--name", "王书记", "--password", password]
    for role in roles:
        args += ["--role", role]
    return runner.invoke(args=args)


def find_user(session, username: str) -> User | None:
    session.expire_all()
    return session.scalar(select(User).where(User.username == username))


# --- users create ------------------------------------------------------------------------------


def test_users_create_with_a_secretary_role_creates_the_user_with_that_grant(
        runner, session, world):
    result = create_user(runner, "new_secretary", f"secretary:{world['a1']}")
    assert result.exit_code == 0, result.output
    assert "new_secretary" in result.output

    user = find_user(session, "new_secretary")
    assert user is not None
    assert user.display_name == "王书记"
    assert user.is_active
    assert verify_password(user.password_hash, TEST_PASSWORD)
    assert [(g.role, g.community_id, g.subdistrict_id) for g in user.grants] == [
        ("secretary", world["a1"], world["A"])]


def test_users_create_takes_several_roles_including_a_resident_with_a_grid(
        runner, session, world):
    result = create_user(runner, "two_hats", f"grid_worker:{world['g_a1']}",
                         f"resident:{world['a1']}/{world['g_a1']}")
    assert result.exit_code == 0, result.output
    grants = sorted((g.role, g.community_id, g.grid_id)
                    for g in find_user(session, "two_hats").grants)
    assert grants == [("grid_worker", world["a1"], world["g_a1"]),
                      ("resident", world["a1"], world["g_a1"])]


def test_the_user_created_on_the_command_line_can_sign_in(runner, client, world):
    assert create_user(runner, "cli_user", f"secretary:{world['a1']}").exit_code == 0
    r = client.post("/api/v1/auth/token", json={"username": "cli_user", "password": TEST_PASSWORD})
    assert r.status_code == 201, r.json


@pytest.mark.parametrize("spec, expected", [
    ("emperor:1", "expected ROLE:SCOPE_ID"),
    ("secretary", "expected ROLE:SCOPE_ID"),
    ("secretary:", "expected ROLE:SCOPE_ID"),
    ("secretary:abc", "scope ids are numbers"),
])
def test_a_malformed_role_spec_fails_with_a_clear_message_and_creates_nothing(
        runner, session, world, spec, expected):
    before = user_count(session)
    result = create_user(runner, "should_not_exist", spec)
    assert result.exit_code != 0
    assert expected in result.output
    assert f"'{spec}'" in result.output
    assert user_count(session) == before
    assert find_user(session, "should_not_exist") is None


def test_a_role_for_a_community_that_does_not_exist_fails_and_creates_nothing(
        runner, session, world):
    before = user_count(session)
    result = create_user(runner, "should_not_exist", "secretary:999999")
    assert result.exit_code != 0
    assert "Community not found" in result.output
    assert "Traceback" not in result.output
    assert user_count(session) == before


def test_users_create_refuses_a_short_password_and_creates_nothing(runner, session, world):
    before = user_count(session)
    result = create_user(runner, "short_pw", f"secretary:{world['a1']}", password="short")
    assert result.exit_code != 0
    assert "password" in result.output and "8" in result.output
    assert user_count(session) == before


def test_users_create_refuses_a_taken_username(runner, session, world):
    before = user_count(session)
    result = create_user(runner, "sec_a1", f"secretary:{world['a1']}")
    assert result.exit_code != 0
    assert "taken" in result.output
    assert user_count(session) == before


# --- help texts --------------------------------------------------------------------------------


def help_text(runner, *args: str) -> str:
    result = runner.invoke(args=[*args, "--help"])
    assert result.exit_code == 0, result.output
    return result.output


def test_db_help_explains_the_group_and_names_upgrade_and_check(runner):
    text = help_text(runner, "db")
    assert "migrations" in text
    assert "upgrade" in text and "Alembic migration" in text
    assert "check" in text


def test_db_upgrade_help_explains_itself(runner):
    assert "Run every Alembic migration up to the newest" in help_text(runner, "db", "upgrade")


def test_seed_help_explains_the_group_and_names_the_demo(runner):
    text = help_text(runner, "seed")
    assert "Demo data" in text
    assert "demo" in text and "demo county" in text
    assert "--if-empty" in help_text(runner, "seed", "demo")


def test_users_create_help_explains_every_role_spec(runner):
    text = help_text(runner, "users", "create")
    assert "Create a user with scoped roles" in text
    for option in ("--name", "--password", "--phone", "--role"):
        assert option in text
    for role in ("subdistrict_admin", "secretary", "clerk", "grid_worker", "unit_admin",
                 "resident"):
        assert role in text
    assert "At least 8 characters" in text


def test_serve_help_explains_the_host_and_port(runner):
    text = help_text(runner, "serve")
    assert "Serve the app" in text
    assert "--host" in text and "--port" in text and "PORT" in text


# --- the secret key ----------------------------------------------------------------------------


def test_the_secret_key_is_generated_once_under_the_instance_path_with_mode_0600(
        tmp_path, monkeypatch):
    instance = tmp_path / "instance"
    monkeypatch.setenv("LINLI_INSTANCE_PATH", str(instance))
    monkeypatch.delenv("LINLI_SECRET_KEY", raising=False)

    first = config.secret_key()
    key_file = instance / "secret_key"
    assert key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert key_file.read_text().strip() == first

    assert config.secret_key() == first
    assert Settings().secret_key == first


def test_two_instance_folders_get_different_secret_keys(tmp_path, monkeypatch):
    monkeypatch.delenv("LINLI_SECRET_KEY", raising=False)
    monkeypatch.setenv("LINLI_INSTANCE_PATH", str(tmp_path / "one"))
    first = config.secret_key()
    monkeypatch.setenv("LINLI_INSTANCE_PATH", str(tmp_path / "two"))
    assert config.secret_key() != first


def test_linli_secret_key_from_the_environment_wins_and_nothing_is_written(
        tmp_path, monkeypatch):
    instance = tmp_path / "instance"
    monkeypatch.setenv("LINLI_INSTANCE_PATH", str(instance))
    monkeypatch.setenv("LINLI_SECRET_KEY", "from-the-environment")
    assert config.secret_key() == "from-the-environment"
    assert not (instance / "secret_key").exists()


def test_the_embedded_database_defaults_to_sqlite_under_the_instance_path(tmp_path, monkeypatch):
    monkeypatch.setenv("LINLI_INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("LINLI_DATABASE_URL", raising=False)
    assert config.database_url() == f"sqlite:///{tmp_path / 'linli.db'}"
    monkeypatch.setenv("LINLI_DATABASE_URL", "postgresql+psycopg://u@h/linli")
    assert config.database_url() == "postgresql+psycopg://u@h/linli"


# --- db check ----------------------------------------------------------------------------------


def test_alembic_check_finds_nothing_to_add_on_the_migrated_test_database(database_url):
    command.check(alembic_config(database_url))


def test_linli_db_check_passes_against_the_migrated_test_database(database_url, engine):
    # An app of its own: the `runner` fixture keeps the test's transaction open (and, on SQLite,
    # its write lock), which the command's own connection would wait on.
    app = create_app(Settings(database_url=database_url, secret_key="test-secret", testing=True),
                     engine=engine)
    result = app.test_cli_runner().invoke(args=["db", "check"])
    assert result.exit_code == 0, result.output
    assert "models and migrations agree" in result.output


# --- match run ---------------------------------------------------------------------------------


def match_counts(session) -> tuple[int, int]:
    session.expire_all()
    return (session.scalar(select(func.count()).select_from(MatchRun)),
            session.scalar(select(func.count()).select_from(MatchProposal)))


def match_run(runner, *args: str):
    return runner.invoke(args=["match", "run", *args])


def test_match_run_over_a_community_by_code_writes_a_done_run_and_its_proposals(
        runner, session, world):
    result = match_run(runner, "--community", "C-a1", "--json")
    assert result.exit_code == 0, result.output

    out = json.loads(result.output)
    run = session.get(MatchRun, out["summary"]["run_id"])
    session.refresh(run)
    assert (run.status, run.community_id, run.created_by) == ("done", world["a1"], None)
    assert run.params["time_limit"] == 5.0 and run.mode == "auto"
    assert out["summary"]["served"] == 1 and out["summary"]["demands"] == 1
    [shown] = out["proposals"]
    assert shown["demand"] == world["d_a1"]
    assert shown["resource"] in (world["r_x"], world["r_y"])
    assert sum(shown["terms"].values()) == shown["score"]
    stored = session.scalars(select(MatchProposal).where(MatchProposal.run_id == run.id)).all()
    assert [(p.id, p.demand_id, p.resource_id, p.status) for p in stored] == [
        (shown["id"], shown["demand"], shown["resource"], "proposed")]


def test_match_run_prints_a_table_of_what_it_proposed(runner, session, world):
    result = match_run(runner, "--community", str(world["a1"]), "--mode", "1+1", "--seed", "3")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("1 proposals for 1 of 1 open demands")
    assert "objective" in lines[0] and "bound" in lines[0]
    assert f"demand {world['d_a1']:>6}" in lines[1] and "score" in lines[1]
    assert "serve=1000" in lines[1]
    assert match_counts(session) == (1, 1)


def test_match_run_over_a_subdistrict_covers_its_communities(runner, session, world):
    in_a2 = make_demand(session, world, "a2", "sec_a2")
    result = match_run(runner, "--subdistrict", "SD-A", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert {p["demand"] for p in out["proposals"]} == {world["d_a1"], in_a2}


def test_match_run_dry_run_shows_the_proposals_and_writes_nothing(runner, session, world):
    before = match_counts(session)
    result = match_run(runner, "--community", "C-a1", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("dry run: 1 proposals for 1 of 1 open demands")
    assert match_counts(session) == before

    result = match_run(runner, "--community", "C-a1", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert "run_id" not in out["summary"]
    assert [p["demand"] for p in out["proposals"]] == [world["d_a1"]]
    assert match_counts(session) == before


@pytest.mark.parametrize("args", [[], ["--community", "C-a1", "--subdistrict", "SD-A"]],
                         ids=["neither", "both"])
def test_match_run_needs_a_community_or_a_subdistrict(runner, session, world, args):
    before = match_counts(session)
    result = match_run(runner, *args)
    assert result.exit_code == 2
    assert "give --community or --subdistrict" in result.output
    assert match_counts(session) == before


def test_match_run_refuses_an_unknown_community_and_writes_nothing(runner, session, world):
    before = match_counts(session)
    result = match_run(runner, "--community", "nope")
    assert result.exit_code != 0
    assert "'nope'" in result.output and "Traceback" not in result.output
    assert match_counts(session) == before


def test_match_run_names_the_unknown_community_correctly(runner, world):
    result = match_run(runner, "--community", "nope")
    assert "no community 'nope'" in result.output


def test_match_run_refuses_a_bad_time_limit_and_writes_nothing(runner, session, world):
    before = match_counts(session)
    result = match_run(runner, "--community", "C-a1", "--time-limit", "0")
    assert result.exit_code == 1
    assert "time_limit" in result.output and "Traceback" not in result.output
    assert match_counts(session) == before


def test_match_run_reports_a_failed_solve(runner, session, world, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the solver crashed")

    monkeypatch.setattr(matching, "solve", broken)
    result = match_run(runner, "--community", "C-a1")
    assert result.exit_code == 1
    assert "failed: internal error: RuntimeError" in result.output
    assert match_counts(session) == (1, 0)  # the failed run stays on record


# --- match solve -------------------------------------------------------------------------------

PROBLEM = {
    "demands": [
        {"id": 1, "category": "elderly", "skills": ["陪护"], "quantity": 2, "community": "c1",
         "urgency": "urgent"},
        {"id": 2, "category": "legal", "quantity": 1, "community": "c1"},
    ],
    "resources": [
        {"id": 10, "unit": "u1", "category": "elderly", "skills": ["陪护"], "share": 5,
         "quantity": 20, "capacity": 4, "communities": ["c1"]},
        {"id": 11, "unit": "u2", "category": "*", "share": 1, "quantity": 1, "capacity": 1,
         "communities": ["c1"]},
    ],
    "pairings": [{"unit": "u1", "community": "c1"}],
}


def problem_file(tmp_path, data=None, text: str | None = None):
    path = tmp_path / "problem.json"
    path.write_text(text if text is not None else json.dumps(data or PROBLEM,
                                                              ensure_ascii=False),
                    encoding="utf-8")
    return str(path)


def test_match_solve_prints_the_result_of_a_problem_file_as_json(runner, tmp_path):
    result = runner.invoke(args=["match", "solve", problem_file(tmp_path)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert (out["status"], out["served"], out["demands"], out["pairs"]) == ("optimal", 2, 2, 2)
    assert out["candidates"] == 2  # a count, without --with-candidates
    assert out["objective"] == sum(a["score"] for a in out["assignments"])
    got = {a["demand"]: a for a in out["assignments"]}
    assert (got[1]["resource"], got[1]["unit"], got[1]["quantity"]) == (10, "u1", 2)
    assert got[1]["terms"]["pairing"] == 300 and got[1]["terms"]["urgency"] == 150
    assert (got[2]["resource"], got[2]["unit"]) == (11, "u2")  # category "*" fits
    for a in out["assignments"]:
        assert sum(a["terms"].values()) == a["score"]


def test_match_solve_with_candidates_lists_every_candidate_pair_and_its_score(runner, tmp_path):
    result = runner.invoke(args=["match", "solve", problem_file(tmp_path), "--with-candidates"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    pairs = {(c["demand"], c["resource"]) for c in out["candidate_pairs"]}
    assert pairs == {(1, 10), (2, 11)}  # 11 gives one at a time, 1 needs two; legal≠elderly
    for c in out["candidate_pairs"]:
        assert sum(c["terms"].values()) == c["score"]
        assert isinstance(c["alone"], bool)


def test_match_solve_honours_the_method_and_the_mode(runner, tmp_path):
    result = runner.invoke(args=["match", "solve", problem_file(tmp_path), "--method", "greedy",
                                 "--mode", "1+1"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert (out["method"], out["status"], out["served"]) == ("greedy", "feasible", 2)


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("{not json", "Expecting property name", id="not json"),
    pytest.param('{"weights": {"bogus": 1}}', "unknown weights: bogus", id="unknown weight"),
    pytest.param('{"demands": [{"id": 1, "category": "a", "community": "c", "quantity": 0}]}',
                 "demand quantity", id="zero quantity"),
])
def test_match_solve_refuses_a_bad_problem_with_a_clear_message(runner, tmp_path, text,
                                                                 expected):
    result = runner.invoke(args=["match", "solve", problem_file(tmp_path, text=text)])
    assert result.exit_code == 1
    assert expected in result.output
    assert "Traceback" not in result.output


def test_match_help_names_run_and_solve(runner):
    text = help_text(runner, "match")
    assert "run" in text and "solve" in text
    run_help = help_text(runner, "match", "run")
    for option in ("--community", "--subdistrict", "--dry-run", "--json", "--time-limit"):
        assert option in run_help
    assert "--with-candidates" in help_text(runner, "match", "solve")

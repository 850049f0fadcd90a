"""Issue 14 building blocks without a server: route templates, the error shape, input
ranges, the session signer, the login back-off and probability points."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from factories import make_config, make_events, make_tables

from features.build import FeatureBuilder
from features.config import load_demo_config
from features.demo.generator import generate_demo_data
from serving.charts import probability_points
from serving.http_errors import reshape_error, route_template
from serving.input_checks import range_problem
from serving.security import LoginThrottle, SessionSigner, safe_next
from serving.views import render_list


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/accounts/acc_000123", "/accounts/{account_id}"),
        ("/accounts/acme/eu-1", "/accounts/{account_id}"),
        ("/ui/accounts/acc_1", "/ui/accounts/{account_id}"),
        ("/score", "/score"),
        ("/ui/login", "/ui/login"),
        ("/wp-admin/../etc/passwd", "other"),
        ("/junk-17/x", "other"),
    ],
)
def test_route_templates_are_bounded_and_hold_no_ids(path, template):
    assert route_template(path) == template


@pytest.mark.parametrize(
    ("status", "body", "want_status", "field"),
    [
        (400, {"error": "1 validation error", "detail": [{"loc": ["accounts", 0, "deal_value"],
                                                          "msg": "too big", "type": "x"}]},
         400, "accounts.0.deal_value"),
        (422, {"detail": [{"loc": ["query", "limit"], "msg": "must be >= 1", "input": "x" * 99_999}]},
         400, "limit"),
        (400, [{"error": "invalid account.trial_start: starts after as_of"}], 400, "account.trial_start"),
        (404, {"detail": "account 'x' is not in the latest batch scores"}, 404, None),
    ],
)  # fmt: skip
def test_every_error_has_one_short_shape(status, body, want_status, field):
    got_status, shaped = reshape_error(status, body)
    assert got_status == want_status and set(shaped) == {"error", "field", "detail"}
    assert shaped["field"] == field
    assert all(v is None or len(v) <= 300 for v in shaped.values())


def _all_feature_values(tables, config, moments):
    builder = FeatureBuilder.from_tables(tables, config)
    n = len(builder.index.account_ids)
    for when in moments:
        frame = builder.build(np.arange(n), np.full(n, int(pd.Timestamp(when).value // 10**9)))
        yield frame.drop(columns=["as_of"])


@pytest.mark.parametrize("company", ["demo", "small"])
def test_real_feature_values_are_never_refused(company):
    """Ranges are about impossible values: whatever the feature code builds passes."""
    if company == "demo":
        tables, config = generate_demo_data(300, seed=5).tables, load_demo_config()
        moments = ["2026-03-01", "2026-10-15", "2027-06-01"]
    else:
        events = [("a0", "u1", "setup", "2026-01-01T10:00:00"), ("a0", "u2", "core_a", "2026-01-02T00:00:00"),
                  ("a0", "u2", "core_b", "2026-01-03T00:00:00"), ("a1", None, "invite", "2026-01-09T00:00:00")]  # fmt: skip
        tables, config = make_tables(events, n_accounts=3), make_config()
        moments = ["2025-12-20", "2026-01-05", "2026-03-01"]
    checked = 0
    for frame in _all_feature_values(tables, config, moments):
        # Accounts whose trial had not started at the moment are never scored (the
        # service refuses a trial starting after as_of): their elapsed days are < 0.
        frame = frame[frame["trial_days_elapsed"] >= 0]
        for name in frame.columns:
            if frame[name].dtype.kind in "fiub":
                for value in frame[name].dropna().unique():
                    assert range_problem(name, float(value)) is None, (name, value)
                    checked += 1
    assert checked > 50
    assert make_events  # the factory module is the small company's source


@pytest.mark.parametrize(
    ("name", "value"),
    [("engagement_events_all", -3), ("activation_rate_all", 7), ("comm_sentiment_mean_all", 2),
     ("count_login_all", -1), ("engagement_trend_7d", 1e12), ("x", math.inf)],
)  # fmt: skip
def test_impossible_values_are_named(name, value):
    assert name in (range_problem(name, value) or "")


def test_sessions_are_signed_expire_and_are_not_the_token(monkeypatch):
    token = "s3cret-token-for-tests"
    signer = SessionSigner(token)
    session = signer.issue_session()
    assert token not in session and signer.valid_session(session)
    # tamper inside the signature: its last base64 character carries 2 padding bits,
    # so changing only that one ("A" -> "B") can decode to the same bytes
    i = len(session) - 5
    assert not signer.valid_session(
        session[:i] + ("A" if session[i] != "A" else "B") + session[i + 1 :]
    )
    assert not SessionSigner("another-token-entirely").valid_session(session)
    assert not signer.valid_session(token)
    cookie, form = signer.issue_csrf()
    assert signer.valid_csrf(cookie, form) and not signer.valid_csrf("other", form)
    import itsdangerous.timed

    later = itsdangerous.timed.TimestampSigner.get_timestamp  # type: ignore[attr-defined]
    monkeypatch.setattr(
        itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: later(self) + 9 * 3600
    )
    assert not signer.valid_session(session)  # expired after the 8 h session


def test_login_back_off_doubles_and_locks_out_even_the_right_token(tmp_path):
    throttle = LoginThrottle(tmp_path / "t.sqlite")
    now = 1_000.0
    locks = [throttle.failed("1.2.3.4", now) for _ in range(9)]
    assert locks == [0, 0, 0, 0, 0, 1, 2, 4, 8]
    assert throttle.retry_after("1.2.3.4", now) == pytest.approx(8)
    assert throttle.retry_after("5.6.7.8", now) == 0  # per client
    assert throttle.retry_after("1.2.3.4", now + 8.1) == 0
    throttle.succeeded("1.2.3.4")
    assert throttle.failed("1.2.3.4", now) == 0
    for _ in range(40):
        last = throttle.failed("9.9.9.9", now)
    assert last == 15 * 60  # capped


@pytest.mark.parametrize(
    ("target", "safe"),
    [("/ui/accounts/a%2Fb", "/ui/accounts/a%2Fb"), ("//evil.example", "/ui"),
     ("https://evil.example/ui", "/ui"), ("/ui\\..\\x", "/ui"), (None, "/ui")],
)  # fmt: skip
def test_next_after_login_stays_on_the_sales_view(target, safe):
    assert safe_next(target) == safe


def test_probability_points_add_up_to_the_score():
    explanation = {
        "base_value": -1.2,
        "logit": 0.4,
        "positive": [{"code": "a", "contribution": 1.5}, {"code": "b", "contribution": 0.6}],
        "negative": [{"code": "c", "contribution": -0.7}],
        "other": 0.2,
    }
    points, other = probability_points(explanation)
    p = 1 / (1 + math.exp(-0.4))
    base = 1 / (1 + math.exp(1.2))
    # invariant: average account + every factor's points + the rest == the account's score
    assert 100 * base + sum(points.values()) + other == pytest.approx(100 * p, abs=1e-9)
    assert points["a"] > points["b"] > 0 > points["c"]


def test_list_marks_trials_past_their_end_as_deciding():
    rows = [
        {"account_id": "late", "p_convert": 0.4, "deal_value": 1000.0, "expected_value": 400.0,
         "persona": "Fizzlers", "pql": False, "trial_days_left": -22.3, "lifecycle": "deciding",
         "trial_end": pd.Timestamp("2026-09-23")},
        {"account_id": "open", "p_convert": 0.4, "deal_value": 1000.0, "expected_value": 400.0,
         "persona": "Fizzlers", "pql": False, "trial_days_left": 3.2, "lifecycle": "trial",
         "trial_end": pd.Timestamp("2026-10-18")},
    ]  # fmt: skip
    page = render_list(rows, total=2, as_of="2026-10-15", company="c", window_days=30)
    assert "-22" not in page and "2026-09-23" in page and "2026-10-23" in page
    assert 'data-state="deciding"' in page and "4 days left" in page


def test_finance_page_months_add_up_with_currency_and_separators(tmp_path):
    from serving.finance_view import render_finance
    from serving.forecast.view import LatestForecast

    breakdown = pd.DataFrame(
        [
            {"dimension": "total", "segment": "all", "n_accounts": 1200, "expected": 1_250_000.0,
             "p10": 1_000_000.0, "p50": 1_240_000.0, "p90": 1_500_000.0},
            {"dimension": "month", "segment": "2026-10", "n_accounts": 700, "expected": 800_000.0,
             "p10": 600_000.0, "p50": 790_000.0, "p90": 1_000_000.0},
            {"dimension": "month", "segment": "2026-11", "n_accounts": 500, "expected": 400_000.0,
             "p10": 300_000.0, "p50": 395_000.0, "p90": 520_000.0},
        ]
    )  # fmt: skip
    pd.DataFrame(
        [
            {"dimension": "total", "segment": "all", "measure": m, "mrr": 90_000.0,
             "n_accounts": 300, "expected": e, "p10": e * 0.9, "p90": e * 1.1}
            for m, e in (("retained", 81_000.0), ("lost", 9_000.0))
        ]
    ).to_csv(tmp_path / "forecast_recurring.csv", index=False)  # fmt: skip
    latest = LatestForecast(breakdown, "2026-10-15", "v3", None)
    page = render_finance(latest, company="Acme <Inc>", currency="EUR", folder=tmp_path)
    # invariant: the month rows plus "outside the months shown" equal the total
    assert "EUR 800,000" in page and "EUR 400,000" in page and "EUR 50,000" in page
    assert 'id="months-total">EUR 1,250,000' in page
    assert "EUR 81,000" in page and "EUR 9,000" in page  # churn-adjusted MRR
    assert "Acme &lt;Inc&gt;" in page and "e+0" not in page
    assert "trialcast forecast" in render_finance(None, company="A", currency="EUR")

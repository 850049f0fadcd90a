"""Serving building blocks without a server: the fast matrix path, reasons, rules, security."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from features.build import FeatureBuilder
from features.config import load_demo_config
from features.personas import (
    PERSONA_INPUTS,
    assign_persona_names,
    assign_personas,
    compute_pql,
    compute_pql_values,
)
from features.spec import FeatureSpec
from models.artifact import TrialcastModel
from models.loader import LoadedModel
from serving.charts import render_waterfall
from serving.reasons import ReasonContext, build_reason_context, describe_feature
from serving.scoring import ScoringModels, score_feature_records
from serving.security import SecurityMiddleware
from training.model import FitContext, Rounds, fit_model


@pytest.fixture(scope="module")
def fitted(synthetic_frame) -> TrialcastModel:
    frame, _ = synthetic_frame(3000, seed=3)
    features = ["x1", "x2", "x3", "x4", "x5", "firmo_plan"]
    train, valid = frame.iloc[:2000], frame.iloc[2000:]
    params = {"num_leaves": 15, "learning_rate": 0.1, "verbose": -1, "seed": 0}
    return fit_model(train, valid, features, params, ctx=FitContext(rounds=Rounds(60)))


def test_matrix_path_matches_the_pandas_path(fitted, synthetic_frame):
    frame, _ = synthetic_frame(500, seed=9)
    frame.loc[frame.index[:20], "firmo_plan"] = np.nan
    records = frame[fitted.features].astype(object).to_dict("records")
    records[0]["firmo_plan"] = "enterprise"  # unknown level: missing, as in prepare_features
    frame.loc[0, "firmo_plan"] = np.nan
    M = fitted.matrix(records)
    np.testing.assert_array_equal(M, fitted.matrix_from_frame(frame))
    values, base = fitted.explain_matrix(M)
    # invariant: base + contributions == calibrated log-odds of the pandas path
    np.testing.assert_allclose(base + values.sum(axis=1), fitted.logit(frame), atol=1e-9)
    ref = fitted.contributions(frame)
    np.testing.assert_allclose(values, ref.values.to_numpy(), atol=1e-12)
    assert base == pytest.approx(ref.base, abs=1e-12)


def test_scoring_lists_top_factors_and_the_rest_adds_up(fitted, synthetic_frame):
    config = load_demo_config()
    loaded = LoadedModel(fitted, "conversion", "conv", "3", "champion", "registry")
    models = ScoringModels(config=config, conversion=loaded)
    frame, _ = synthetic_frame(200, seed=2)
    records = frame[fitted.features].astype(object).to_dict("records")
    scored = score_feature_records(models, records, top_k=2, explain_all=True)
    for item in scored:
        (exp,) = item["explanations"]
        assert len(exp["positive"]) <= 2 and len(exp["negative"]) <= 2
        assert all(f["contribution"] > 0 for f in exp["positive"])
        assert all(f["contribution"] < 0 for f in exp["negative"])
        listed = sum(f["contribution"] for f in exp["positive"] + exp["negative"])
        assert exp["base_value"] + listed + exp["other"] == pytest.approx(exp["logit"], abs=1e-9)
        assert exp["base_value"] + sum(f["contribution"] for f in exp["all"]) == pytest.approx(
            exp["logit"], abs=1e-9
        )
        assert item["p_convert"] == pytest.approx(1 / (1 + np.exp(-exp["logit"])), abs=1e-12)
    np.testing.assert_allclose(
        [s["p_convert"] for s in scored], fitted.predict_proba(frame), atol=1e-12
    )


def test_persona_and_pql_array_cores_match_the_frame_rules(demo_small):
    config = load_demo_config()
    builder = FeatureBuilder.from_tables(demo_small.tables, config)
    moment = int(demo_small.tables.export_time().value // 1_000_000_000) - 40 * 86400
    pos = np.arange(len(builder.index.account_ids))
    frame = builder.build(pos, np.full(len(pos), moment))
    arrays = {c: frame[c].fillna(0.0).to_numpy(dtype=float) for c in PERSONA_INPUTS}
    assert (assign_persona_names(arrays) == assign_personas(frame).astype(str).to_numpy()).all()
    columns = {c.feature: frame[c.feature].to_numpy() for c in config.pql.conditions}
    flags = compute_pql_values(columns, config, len(frame))
    assert (flags == compute_pql(frame, config).to_numpy()).all() and 0 < flags.sum() < len(flags)


@pytest.mark.parametrize(
    ("name", "features", "expected"),
    [
        ("activation_steps_done_all", {"activation_steps_done_all": 4.0}, "Completed 4 of 6 activation steps"),
        ("engagement_active_days_all", {"engagement_active_days_all": 12.0}, "12 active days"),
        ("engagement_active_days_7d", {"engagement_active_days_7d": 1.0}, "1 active day in the last 7 days"),
        ("comm_reply_rate_all", {"comm_reply_rate_all": 0.75, "comm_outbound_all": 4.0},
         "Replied to 3 of 4 outreach messages"),
        ("count_pipeline_run_succeeded_all", {"count_pipeline_run_succeeded_all": 14.0},
         "Used Pipeline Run Succeeded 14 times"),
        ("count_made_up_thing_all", {"count_made_up_thing_all": 2.0}, "Used Made up thing 2 times"),
        ("activation_created_a_pipeline_done", {"activation_created_a_pipeline_done": 0.0},
         "Not yet: Created a pipeline"),
        ("engagement_recency_days", {}, "Never active"),
        # issue 14: an account with no events is never active, whatever the recency filler says
        ("engagement_recency_days", {"engagement_recency_days": 10.0, "engagement_events_all": 0.0},
         "Never active"),
        ("engagement_recency_days", {"engagement_recency_days": 3.0, "engagement_events_all": 5.0},
         "Last active 3 days ago"),
        ("count_pipeline_run_succeeded_all", {"count_pipeline_run_succeeded_all": 0.0},
         "Has not used Pipeline Run Succeeded yet"),
        ("comm_sentiment_min_all", {"comm_sentiment_min_all": None}, "No messages to read the tone of"),
        ("firmo_plan", {"firmo_plan": "team"}, "Plan: team"),
        ("firmo_company_size", {"firmo_company_size": 1.0}, "Company of 1 employee"),
        ("trial_days_remaining", {"trial_days_remaining": -2.5}, "Trial ended 2 days ago"),
        ("trial_weekend_days_elapsed", {"trial_weekend_days_elapsed": 2.0},
         "2 weekend days in the trial so far (UTC)"),
        ("trial_weekend_share_elapsed", {"trial_weekend_share_elapsed": 0.8},
         "80% of the trial so far fell on a weekend (UTC)"),
        ("trial_weekend_days_2d", {"trial_weekend_days_2d": 0.5},
         "0.5 weekend days in the last 2 days (UTC)"),
        ("engagement_events_per_usual_day_7d", {"engagement_events_per_usual_day_7d": 4.25},
         "4.2 product events per usual day in the last 7 days (weekday-adjusted)"),
        ("engagement_active_days_per_usual_day_all",
         {"engagement_active_days_per_usual_day_all": 0.5},
         "0.5 active days per usual day (weekday-adjusted)"),
        ("engagement_core_events_per_usual_day_all",
         {"engagement_core_events_per_usual_day_all": 2.0},
         "2.0 core uses per usual day (weekday-adjusted)"),
        ("engagement_recency_usual_days", {"engagement_recency_usual_days": 0.4,
                                           "engagement_events_all": 3.0},
         "Quiet for 0.4 usual days of activity (weekends count for little)"),
        ("engagement_recency_usual_days", {"engagement_recency_usual_days": 2.0,
                                           "engagement_events_all": 0.0}, "Never active"),
        ("something_new", {"something_new": 3.0}, "Something new: 3"),
    ],
)  # fmt: skip
def test_reasons_read_like_sentences(name, features, expected):
    config = load_demo_config()
    spec = FeatureSpec(["Pipeline Run Succeeded"], ["pipeline_run_succeeded"])
    assert describe_feature(name, features, build_reason_context(config, spec)) == expected


def test_every_value_gets_some_text():
    ctx = ReasonContext()
    for name in ("comm_sentiment_mean_all", "engagement_trend_7d", "customer_days_paying", "x"):
        for value in (None, float("nan"), 0.0, -1.0, 2.5, "text"):
            assert describe_feature(name, {name: value}, ctx)


def test_waterfall_svg_escapes_text_and_draws_every_step():
    explanation = {
        "base_value": -1.0,
        "logit": 0.5,
        "other": 0.25,
        "positive": [{"code": "a", "text": "<script>x</script>", "contribution": 1.5}],
        "negative": [{"code": "b", "text": "Fewer & fewer", "contribution": -0.25}],
    }
    svg = render_waterfall(explanation)
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "Fewer &amp; fewer" in svg
    assert svg.count('class="bar') == 3


def _call(app, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> int:
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    asyncio.run(app(scope, receive, send))
    return int(sent[0]["status"])


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status"),
    [
        ("GET", "/readyz", {}, b"", 200),
        ("GET", "/livez", {}, b"", 200),
        ("GET", "/metrics", {}, b"", 200),
        ("POST", "/score", {}, b"{}", 401),
        ("POST", "/score", {"Authorization": "Bearer wrong-token-wrong-token"}, b"{}", 401),
        ("POST", "/score", {"Authorization": "Bearer s3cret-token-for-tests"}, b"{}", 200),
        ("POST", "/score", {"Cookie": "trialcast_token=s3cret-token-for-tests"}, b"{}", 401),
        # issue 14: the raw token in a cookie is no session, and no cookie opens the API
        ("GET", "/accounts/a", {"Cookie": "trialcast_token=s3cret-token-for-tests"}, b"", 401),
        ("GET", "/ui", {"Cookie": "trialcast_session=s3cret-token-for-tests"}, b"", 303),
        ("GET", "/ui", {}, b"", 303),
        ("POST", "/ui/login", {}, b"token=x", 200),
        ("POST", "/score", {"Authorization": "Bearer s3cret-token-for-tests",
                            "Content-Length": "99999999"}, b"", 413),
        ("POST", "/score", {"Authorization": "Bearer s3cret-token-for-tests"}, b"x" * 2048, 413),
    ],
)  # fmt: skip
def test_security_middleware(monkeypatch, method, path, headers, body, status):
    monkeypatch.setenv("TRIALCAST_API_TOKEN", "s3cret-token-for-tests")
    monkeypatch.setenv("TRIALCAST_MAX_REQUEST_BYTES", "1024")

    async def ok(scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": json.dumps({}).encode()})

    assert _call(SecurityMiddleware(ok), method, path, headers, body) == status


def test_security_refuses_to_start_without_a_token(monkeypatch):
    monkeypatch.delenv("TRIALCAST_API_TOKEN", raising=False)
    with pytest.raises(RuntimeError, match="TRIALCAST_API_TOKEN"):
        SecurityMiddleware(lambda *a: None)  # type: ignore[arg-type,return-value]


def test_feature_frame_and_records_agree_for_demo_features(demo_small):
    # The service receives JSON records; batch scoring uses frames: same matrix.
    config = load_demo_config()
    builder = FeatureBuilder.from_tables(demo_small.tables, config)
    pos = np.arange(300)
    moment = int(demo_small.tables.export_time().value // 1_000_000_000)
    frame = builder.build(pos, np.full(len(pos), moment)).drop(columns=["as_of"])
    features = [c for c in frame.columns if c not in ("customer_mrr", "firmo_industry")]
    cats = {c: [str(x) for x in frame[c].cat.categories] for c in ("firmo_plan", "firmo_country")}
    model = TrialcastModel(
        booster=None,  # type: ignore[arg-type]
        a=1.0,
        b=0.0,
        features=features,
        categories=cats,
        kind="conversion",
    )
    raw = frame.astype(object).where(frame.notna(), None).to_dict("records")
    records = json.loads(json.dumps(raw))  # what a JSON client sends (floats round-trip)
    np.testing.assert_array_equal(model.matrix(records), model.matrix_from_frame(frame))


def test_contributions_equal_shap_tree_explainer(fitted, synthetic_frame):
    shap = pytest.importorskip("shap")
    frame, _ = synthetic_frame(300, seed=5)
    ours, _ = fitted.explain_matrix(fitted.matrix_from_frame(frame))
    theirs = np.asarray(shap.TreeExplainer(fitted.booster).shap_values(fitted.prepare(frame)))
    if theirs.ndim == 3:  # older shap: one array per class
        theirs = theirs[-1]
    np.testing.assert_allclose(ours, fitted.a * theirs, atol=1e-6)


def test_lead_type_rows_flag_a_let_go_type_that_converts_above_average():
    from serving.views import lead_type_rows

    rates = {
        "Golden Leads": {"observed": 0.66, "low": 0.60, "high": 0.72, "trials": 300, "stated": 0.9},
        "Heartbreakers": {
            "observed": 0.40,
            "low": 0.33,
            "high": 0.47,
            "trials": 200,
            "stated": 0.05,
        },
        "Fizzlers": {"observed": 0.08, "low": 0.05, "high": 0.12, "trials": 500, "stated": 0.1},
    }
    rows = {r["name"]: r for r in lead_type_rows(rates)}
    assert len(rows) == 7  # every type listed, seen or not
    assert "do not let these go" in rows["Heartbreakers"]["note"]  # 40% vs 27% on average
    assert "stated 90% is above" in rows["Golden Leads"]["note"]
    assert rows["Fizzlers"]["note"] == ""  # the data agrees with the seed
    assert rows["Silent Successes"]["trials"] == 0 and rows["Silent Successes"]["note"] == ""
    assert lead_type_rows({}) == []

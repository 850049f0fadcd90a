"""The demo company's communications: sales outreach, replies, questions, tickets, calls.

Messages follow each account's latent traits (``features.demo.latent``): how often
it writes (``comm``), whether and how fast it replies (``resp``, ``latency_h``),
its tone, and, once paying, its churn hazard (more tickets, then a cancel notice).
Texts are templates whose tone follows the message's sentiment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.demo import latent as dl
from features.demo.timebase import DAY, HOUR, MS, NEVER, RowsInLife
from features.demo.timebase import days_to_ns as _ms
from features.validation import CHANNELS, DIRECTIONS

__all__ = ["TEXTS", "communications_frame", "generate_communications"]

_CH = {name: i for i, name in enumerate(CHANNELS)}
# Templated message texts: fixed outbound touches, then (negative, neutral, positive)
# variants of each inbound / meeting kind, chosen by the message's sentiment.
_OUTREACH_TEXTS = (
    "Welcome to Pipewise! Happy to help you connect your first data source.",
    "How is your trial going? Here are three pipelines teams build first.",
    "Checking in: want a 20-minute walkthrough of scheduling and dashboards?",
    "Your trial is past the halfway mark. Any questions before you decide?",
    "Your Pipewise trial ends tomorrow. Pick a plan to keep your pipelines running.",
)
_TONED_TEXTS: dict[str, tuple[str, str, str]] = {
    "reply": (
        "Honestly this has been frustrating so far, the setup keeps breaking.",
        "Thanks, we are still evaluating and will get back to you.",
        "Thanks! Going great so far, the team loves it.",
    ),
    "question": (
        "Why does the connector keep timing out? This is blocking us.",
        "Quick question: how do we change the schedule of a pipeline?",
        "Love the dashboards! Can we share them with people outside the team?",
    ),
    "ticket": (
        "Pipeline run failed again with a schema error, please fix.",
        "Run failed with error code 502, can you take a look?",
        "Small issue with a failed run, not urgent, thanks for the help.",
    ),
    "meeting": (
        "Call notes: raised several concerns about pricing and reliability.",
        "Call notes: walked through their use case and next steps.",
        "Call notes: great session, they want to roll it out to the team.",
    ),
    "cancel": (
        "We are cancelling our subscription at the end of this term.",
        "Please cancel our plan at renewal; we are moving in another direction.",
        "Thanks for everything, but we will not renew for now.",
    ),
}
TEXTS: tuple[str, ...] = _OUTREACH_TEXTS + tuple(t for v in _TONED_TEXTS.values() for t in v)
_TEXT_BASE = {k: len(_OUTREACH_TEXTS) + 3 * i for i, k in enumerate(_TONED_TEXTS)}


@dataclass(frozen=True)
class AccountLives:
    """Each generated account's moments (ns since the epoch; ``NEVER`` when none).

    Attributes:
        trial_start, trial_end: the trial.
        length: the trial's length in days.
        conv_true, churn_true: when it converts / churns (``NEVER``: it does not).
        paid_from: when its first paid day starts.
        end: its last moment in the export (churn or the export time).
    """

    trial_start: np.ndarray
    trial_end: np.ndarray
    length: np.ndarray
    conv_true: np.ndarray
    churn_true: np.ndarray
    paid_from: np.ndarray
    end: np.ndarray


def generate_communications(
    rng: np.random.Generator, tr: dl.Traits, lives: AccountLives
) -> list[np.ndarray]:
    """Messages as arrays (account, time, inbound?, channel, user or -1, sentiment, text)."""
    trial_start, trial_end, length = lives.trial_start, lives.trial_end, lives.length
    conv_true, churn_true, paid_from = lives.conv_true, lives.churn_true, lives.paid_from
    end = lives.end
    n = len(trial_start)
    user0 = (np.cumsum(tr.team) - tr.team).astype(np.int32)
    rows = RowsInLife(trial_start, end)
    date0 = trial_start // DAY * DAY

    def toned(kind: str, sentiment: np.ndarray) -> np.ndarray:
        bucket = (sentiment > -0.25).astype(np.int16) + (sentiment > 0.25)
        return _TEXT_BASE[kind] + bucket

    def sentiment(acc: np.ndarray, shift: float, sd: float) -> np.ndarray:
        return np.clip(tr.tone[acc] + shift + sd * rng.standard_normal(len(acc)), -1.0, 1.0).round(
            3
        )

    # Sales outreach on trial days 1, 4, 10 (and 20 in long trials) until converted.
    out_acc, out_t = [], []
    for i, d in enumerate((1, 4, 10, 20)):
        a = np.flatnonzero(length > d + 1).astype(np.int32)
        t = date0[a] + d * DAY + _ms(np.clip(rng.normal(15 / 24, 1 / 24, len(a)), 0.3, 0.9))
        keep = t < conv_true[a]
        a, t = a[keep], t[keep]
        rows.add(a, t, 0, _CH["email"], -1, 0.3, i)
        out_acc.append(a)
        out_t.append(t)
    a = np.flatnonzero(trial_end - DAY < conv_true).astype(np.int32)
    rows.add(a, trial_end[a] - DAY, 0, _CH["in_app"], -1, 0.1, len(_OUTREACH_TEXTS) - 1)

    # Replies to outreach, with account-dependent chance and latency.
    oa, ot = np.concatenate(out_acc), np.concatenate(out_t)
    replied = rng.random(len(oa)) < tr.resp[oa]
    oa, ot = oa[replied], ot[replied]
    lat = tr.latency_h[oa] * np.exp(0.6 * rng.standard_normal(len(oa)))
    s = sentiment(oa, 0.0, 0.25)
    rows.add(
        oa,
        ot + (lat * HOUR).astype(np.int64) // MS * MS,
        1,
        _CH["email"],
        user0[oa],
        s,
        toned("reply", s),
    )

    # Inbound questions (chat / email / in-app) and tickets (more when runs fail).
    q_acc = np.repeat(np.arange(n, dtype=np.int32), rng.poisson(tr.comm * length))
    q_t = trial_start[q_acc] + _ms(rng.random(len(q_acc)) * length[q_acc])
    q_ch = np.array([_CH["chat"], _CH["email"], _CH["in_app"]])[
        rng.choice(3, len(q_acc), p=[0.5, 0.3, 0.2])
    ]
    q_user = np.where(rng.random(len(q_acc)) < 0.8, user0[q_acc], -1)
    s = sentiment(q_acc, 0.0, 0.3)
    rows.add(q_acc, q_t, 1, q_ch, q_user, s, toned("question", s))
    n_tix = rng.poisson(2.5 * (1.0 - tr.fit) * tr.setup + 0.5 * np.sqrt(tr.comm))
    k_acc = np.repeat(np.arange(n, dtype=np.int32), n_tix)
    k_t = trial_start[k_acc] + _ms(0.5 + rng.random(len(k_acc)) * (length[k_acc] - 0.5))
    s = sentiment(k_acc, -0.35, 0.25)
    rows.add(k_acc, k_t, 1, _CH["ticket"], user0[k_acc], s, toned("ticket", s))

    # Meetings / calls with responsive accounts, logged by sales.
    m_acc = np.flatnonzero(rng.random(n) < 0.45 * tr.resp + 0.02).astype(np.int32)
    m_day = 2 + (rng.random(len(m_acc)) * np.minimum(length[m_acc] - 3, 8)).astype(np.int64)
    m_t = (
        date0[m_acc]
        + m_day * DAY
        + _ms(np.clip(rng.normal(16 / 24, 1.5 / 24, len(m_acc)), 0.3, 0.95))
    )
    m_ch = np.where(rng.random(len(m_acc)) < 0.7, _CH["meeting"], _CH["call"])
    s = np.clip(0.5 * tr.tone[m_acc] + 0.2 + 0.15 * rng.standard_normal(len(m_acc)), -1, 1).round(3)
    rows.add(m_acc, m_t, 0, m_ch, -1, s, toned("meeting", s))

    # Paying accounts: support tickets (more for churn-prone ones) and a cancel notice.
    payer = np.flatnonzero(paid_from < NEVER).astype(np.int32)
    months = (np.minimum(churn_true, end)[payer] - paid_from[payer]).clip(0) / (
        dl.DAYS_PER_MONTH * DAY
    )
    p_acc = np.repeat(payer, rng.poisson((0.3 + 4.0 * tr.churn_hazard[payer]) * months))
    span = (np.minimum(churn_true, end) - paid_from)[p_acc] / DAY
    p_t = paid_from[p_acc] + _ms(rng.random(len(p_acc)) * span)
    p_ch = np.where(rng.random(len(p_acc)) < 0.6, _CH["ticket"], _CH["chat"])
    s = np.clip(sentiment(p_acc, -0.2, 0.3) - 2.0 * tr.churn_hazard[p_acc], -1, 1).round(3)
    rows.add(p_acc, p_t, 1, p_ch, user0[p_acc], s, toned("ticket", s))
    c_acc = np.flatnonzero(conv_true < NEVER).astype(np.int32)
    c_t = churn_true[c_acc] - _ms(3 + 11 * rng.random(len(c_acc)))
    c_t = np.maximum(c_t, paid_from[c_acc])
    s = sentiment(c_acc, -0.3, 0.2)
    rows.add(c_acc, c_t, 1, _CH["email"], user0[c_acc], s, toned("cancel", s))
    return rows.concat()


def communications_frame(
    arrays: list[np.ndarray], account_ids: pd.Index, user_ids: pd.Index
) -> pd.DataFrame:
    acc, t, inbound, channel, user, sentiment, text = arrays
    return pd.DataFrame(
        {
            "account_id": account_ids.take(acc),
            "timestamp": t.view("datetime64[ns]"),
            "direction": pd.Index(DIRECTIONS, dtype="str").take(1 - inbound.astype(np.int64)),
            "channel": pd.Index(CHANNELS, dtype="str").take(channel.astype(np.int64)),
            "user_id": pd.Series(
                pd.Categorical.from_codes(user.astype(np.int64), categories=user_ids)
            )
            .astype("str")
            .where(user >= 0),
            "sentiment": sentiment.astype(np.float64),
            "text": pd.Index(TEXTS, dtype="str").take(text.astype(np.int64)),
        }
    )

"""Point-in-time features as a scikit-learn style object, for notebooks and pipelines.

``PointInTimeFeatures(config).fit(tables)`` freezes the data-dependent choices
(the ``FeatureSpec``: top-K event types, category levels) on the tables it is
given; ``transform`` then builds one row per account from data strictly before
``as_of``, and ``training_set`` the labelled snapshots. Fitting on the training
period only and transforming later data is what keeps a notebook experiment
point-in-time honest, exactly as the ``trialcast`` jobs do.

Example:
    >>> from features.demo.generator import generate_demo_data
    >>> from features.config import load_demo_config
    >>> demo = generate_demo_data(500, seed=0)
    >>> pit = PointInTimeFeatures(load_demo_config()).fit(demo.tables)
    >>> X = pit.transform(demo.tables, as_of="2026-06-01")
    >>> len(X) == len(demo.tables.accounts)
    True
"""

from __future__ import annotations

import pandas as pd

from features.build import FeatureBuilder, as_of_seconds, feature_columns
from features.config import CompanyConfig
from features.snapshots import TRAINING_SET_BUILDERS
from features.spec import FeatureSpec, fit_feature_spec
from features.tables import Tables


class PointInTimeFeatures:
    """Tables -> point-in-time account features (fit freezes the feature spec).

    Args:
        config: the company config (vocabulary, checklist, windows).
        spec: a spec to use as is (e.g. the one a registered model carries);
            ``fit`` then keeps it instead of fitting a new one.

    Attributes:
        spec_: the fitted ``FeatureSpec``.
        feature_names_out_: model input columns of the conversion model.
    """

    def __init__(self, config: CompanyConfig, *, spec: FeatureSpec | None = None) -> None:
        self.config = config
        self.spec = spec

    def fit(self, tables: Tables, y: object = None) -> PointInTimeFeatures:
        """Freeze the feature spec on ``tables`` (the training period only)."""
        self.spec_ = self.spec if self.spec is not None else fit_feature_spec(tables, self.config)
        first = self.transform(tables, account_ids=pd.Index(tables.accounts["account_id"][:1]))
        self.feature_names_out_ = feature_columns(first)
        return self

    def transform(
        self,
        tables: Tables,
        as_of: pd.Timestamp | str | pd.Series | None = None,
        *,
        account_ids: list[str] | pd.Index | None = None,
    ) -> pd.DataFrame:
        """One row per account from data strictly before ``as_of``.

        Args:
            tables: validated tables (may hold later data than ``fit`` saw).
            as_of: one cutoff for every account, or a Series of cutoffs by
                ``account_id``; default the tables' export time.
            account_ids: which accounts (default all, or those of an ``as_of`` Series).
        """
        builder = self._builder(tables)
        moment = tables.export_time() if as_of is None else as_of
        if account_ids is None:
            account_ids = (
                moment.index if isinstance(moment, pd.Series) else builder.index.account_ids
            )
        ids = pd.Index(account_ids).astype(str)
        return builder.build(builder.positions(ids), as_of_seconds(moment, ids))

    def training_set(
        self, tables: Tables, *, kind: str = "conversion", export_time: pd.Timestamp | None = None
    ) -> pd.DataFrame:
        """Labelled snapshots (``label`` column): trial days for ``conversion``,
        monthly paying snapshots for ``churn``; rows whose label window is still
        open at ``export_time`` are left out."""
        build = TRAINING_SET_BUILDERS.get(kind)
        if build is None:
            known = " or ".join(repr(k) for k in TRAINING_SET_BUILDERS)
            raise ValueError(f"kind must be {known}, not {kind!r}")
        return build(self._builder(tables), export_time=export_time)

    def _builder(self, tables: Tables) -> FeatureBuilder:
        if not hasattr(self, "spec_"):
            raise RuntimeError("PointInTimeFeatures is not fitted yet: call fit(tables) first")
        return FeatureBuilder.from_tables(tables, self.config, self.spec_)

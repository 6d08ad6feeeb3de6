"""Models of the calculator app.

免申即享 runs, their results, offers, benefit records, notifications and what-if
reforms live in :mod:`kechuang.calculator.models_runs`, published parameter values in
:mod:`kechuang.calculator.models_law`; this module imports them so
Django finds every model of the app here.
"""

from __future__ import annotations

from kechuang.calculator.models_law import ParameterPublication  # noqa: F401
from kechuang.calculator.models_runs import (  # noqa: F401
    BenefitRecord,
    MianshenOffer,
    MianshenResult,
    MianshenRun,
    Notification,
    Reform,
)

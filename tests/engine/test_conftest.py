"""The real-engine tests' skip helper: a missing engine skips them, except in CI, where it fails them."""

from __future__ import annotations

import pytest

from tests.engine.conftest import skip_or_fail
from tools.env import REQUIRE_ENGINE_VAR

REASON = "no pulumi v3 on PATH (fix: install it)"


def test_missing_engine_skips_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_ENGINE_VAR, raising=False)

    with pytest.raises(pytest.skip.Exception, match=r"no pulumi v3 on PATH \(fix: install it\)"):
        skip_or_fail(REASON)


def test_missing_engine_fails_where_the_engine_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_ENGINE_VAR, "1")

    with pytest.raises(pytest.fail.Exception, match=rf"no pulumi v3 on PATH.*{REQUIRE_ENGINE_VAR}=1"):
        skip_or_fail(REASON)

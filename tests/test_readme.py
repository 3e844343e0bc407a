"""README's "Ten lines", its choice-model block and its horizon block run as written (short chains).

The blocks are read from README.md, not copied here, so an example that drifts from the API
fails this test. The Gibbs fits are cut to a short fixed run (the README's default run until
converged takes minutes): this checks that the calls work, not what they estimate.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

import bayesmf

README = Path(__file__).resolve().parent.parent / "README.md"


def _python_blocks(after_heading: str, count: int) -> list[str]:
    """The first ``count`` python code blocks after the heading ``after_heading``."""
    text = README.read_text()
    start = text.index(after_heading)
    return re.findall(r"```python\n(.*?)```", text[start:], flags=re.S)[:count]


def test_readme_ten_lines_and_choice_block_run(shared_data_dir, monkeypatch) -> None:
    if shared_data_dir is None:
        pytest.skip("ml-100k not available (set BAYESMF_DATA_DIR)")
    monkeypatch.setenv("BAYESMF_DATA_DIR", shared_data_dir)
    fit = bayesmf.PMF.fit

    def short(self, data, method="map", **kwargs):
        if method == "gibbs" and "draws" not in kwargs:
            kwargs.update(draws=20, tune=20, chains=2, thin=1, progressbar=False)
        return fit(self, data, method=method, **kwargs)

    monkeypatch.setattr(bayesmf.PMF, "fit", short)
    ten_lines, choices, horizon = _python_blocks("## Ten lines", 3)
    assert "fold_in" in ten_lines and "recommend_joint" in choices and "p_chosen_within" in horizon
    namespace: dict = {}
    with warnings.catch_warnings():  # short chains fail their verdict, and say so
        warnings.simplefilter("ignore", bayesmf.ConvergenceWarning)
        exec(compile(ten_lines, "README.md: Ten lines", "exec"), namespace)
        assert namespace["new"].train.users.classes[-1] == "ann"
        exec(compile(choices, "README.md: choices", "exec"), namespace)
        *lines, last = horizon.strip().splitlines()
        exec(compile("\n".join([*lines, "within = " + last]), "README.md: horizon", "exec"), namespace)
    within = namespace["within"]
    assert set(within["user"]) == {42} and list(within.columns) == ["user", "item", "p_chosen", "p_within"]
    assert 0 < within["p_within"].sum() <= 10 + 1e-9

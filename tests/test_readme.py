import pathlib
import re

import numpy as np

README = pathlib.Path(__file__).parent.parent / "README.md"


def _quick_start():
    text = README.read_text()
    section = text.split("## Quick start", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_opens_with_the_two_commands():
    text = README.read_text()
    first_block = re.search(r"```sh\n(.*?)```", text, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()]
    assert commands == ["make demo", "make test"]
    ci = (README.parent / ".ci" / "run").read_text()
    assert "make test" in ci


def test_quick_start_runs():
    namespace = {}
    exec(compile(_quick_start(), str(README), "exec"), namespace)
    assert namespace["probabilities"].shape == (370, 9)
    # Two epochs: far from trained, far above chance (1 in 9).
    assert namespace["accuracy"] > 0.3
    np.testing.assert_allclose(namespace["probabilities"].sum(-1), 1, rtol=1e-5)

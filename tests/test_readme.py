"""The README's Python snippets run as written, in order, in a fresh folder (as a user
copying them would: each block in a fresh namespace, files left by earlier blocks kept)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks(text):
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_the_readme_has_python_snippets():
    blocks = python_blocks(README.read_text())
    assert len(blocks) >= 2 and all(block.strip() for block in blocks)


def test_every_python_snippet_of_the_readme_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
    for i, block in enumerate(python_blocks(README.read_text())):
        namespace = {"__name__": f"readme_block_{i}"}
        exec(compile(block, f"README.md python block {i + 1}", "exec"), namespace)
    assert (tmp_path / "out" / "arm-digits" / "saved_model.pb").is_file()

"""Write docs/configuration.md: every config group and key, from the commented YAML files themselves.

    python tools/configuration_doc.py          # rewrite the page
tests/test_configs.py fails when the page and asl/conf/ disagree, so it cannot drift.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "asl" / "conf"
PAGE = REPO / "docs" / "configuration.md"
HEADER = """# Configuration reference

Generated from `asl/conf/` by `python tools/configuration_doc.py` (a test checks it is current): every
config group and every key, with the comment that explains it. Top-level files are the commands'
configs (`train.yaml` for `asl-train`, `eval.yaml` for `asl-eval`, ...); a folder is a config group,
chosen with `group=option` (e.g. `model=resnet18`, `optimizer=sgd`, `data/augment=viewpoint`), whose keys
are then set with `group.key=value` (e.g. `optimizer.lr=0.01`).
"""


def render() -> str:
    files = sorted(CONF.rglob("*.yaml"), key=lambda p: (len(p.relative_to(CONF).parts), str(p)))
    parts = [HEADER]
    for f in files:
        rel = f.relative_to(CONF)
        title = rel.stem if len(rel.parts) == 1 else f"{rel.parent.as_posix()}={rel.stem}"
        parts.append(f"\n## `{title}` ({'command' if len(rel.parts) == 1 else 'group option'}: `asl/conf/{rel.as_posix()}`)\n\n"
                     f"```yaml\n{f.read_text().rstrip()}\n```\n")
    return "".join(parts)


if __name__ == "__main__":
    PAGE.write_text(render())
    print(f"wrote {PAGE}", file=sys.stderr)

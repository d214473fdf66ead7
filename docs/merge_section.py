"""Insert a docs/*.md section into README.md before a heading, turning ```console blocks into cog blocks.

Used once per merged section: python docs/merge_section.py docs/x.md "## Conventions"
"""

import re
import sys
from pathlib import Path

section_path, before = sys.argv[1], sys.argv[2]
text = Path(section_path).read_text()
text = re.sub(r"<!--.*?-->\n*", "", text, flags=re.S)


def to_cog(match: re.Match) -> str:
    commands = re.findall(r"^\$ (.*)$", match.group(1), flags=re.M)
    args = ",\n    ".join(repr(c) for c in commands)
    return f"<!-- [[[cog\ncog.out(console(\n    {args},\n))\n]]] -->\n<!-- [[[end]]] -->"


text = re.sub(r"```console\n(.*?)```", to_cog, text, flags=re.S)
readme = Path("README.md").read_text()
index = readme.index(before + "\n")
Path("README.md").write_text(readme[:index] + text.rstrip() + "\n\n" + readme[index:])

"""Fill the Chinese catalogue from JSON fragments (`zh_fragments/*.json`, English msgid →
Chinese), so several people can add pages at once without editing messages.po together.
`make i18n` runs it between `pybabel update` and `pybabel compile`; it fills only entries that
are still empty (or fuzzy) and prints the ids that are still untranslated."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

HERE = Path(__file__).resolve().parent
CATALOGUE = HERE / "zh" / "LC_MESSAGES" / "messages.po"


def main() -> int:
    table: dict[str, str] = {}
    for fragment in sorted((HERE / "zh_fragments").glob("*.json")):
        table.update(json.loads(fragment.read_text(encoding="utf-8")))
    with CATALOGUE.open("rb") as f:
        catalog = read_po(f, locale="zh_Hans_CN")
    missing = []
    for message in catalog:
        if not message.id or isinstance(message.id, tuple):
            continue
        if message.id in table and (not message.string or message.fuzzy):
            message.string = table[message.id]
            message.flags.discard("fuzzy")
        if not message.string:
            missing.append(message.id)
    with CATALOGUE.open("wb") as f:
        write_po(f, catalog, sort_output=True, omit_header=False, width=0)
    for msgid in missing:
        print(f"untranslated: {msgid!r}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What Slack refuses, for the webhook stand-in (:class:`tests.support.slack_stub.SlackStub`
with ``check=slack_refusal``): a message over these limits gets HTTP 400 with Slack's error
name, as Slack answers it, and a 400 is not retried.

Documented: at most 50 blocks; a section's text at most 3,000 characters, a header's 150;
40,000 characters of text in a message. Not documented but seen (slackapi/bolt-js#2509): a
message whose blocks hold about 13,200 characters is refused ``msg_blocks_too_long`` though
no other limit is hit; the stand-in refuses blocks over 13,000 characters as JSON.
"""

from __future__ import annotations

import json
from typing import Any

MAX_BLOCKS = 50
SECTION_TEXT = 3000
HEADER_TEXT = 150
MESSAGE_TEXT = 40_000
BLOCKS_CHARS = 13_000


def _texts(block: dict[str, Any]) -> list[str]:
    found: list[str] = []
    text = block.get("text")
    if isinstance(text, dict):
        found.append(str(text.get("text", "")))
    for element in block.get("elements", []) or []:
        if isinstance(element, dict) and "text" in element:
            found.append(str(element["text"]))
    return found


def slack_refusal(body: dict[str, Any]) -> str | None:
    """Slack's error for ``body`` (a webhook payload), or ``None`` when Slack takes it."""
    blocks = body.get("blocks") or []
    if len(blocks) > MAX_BLOCKS:
        return "invalid_blocks"
    for block in blocks:
        limit = HEADER_TEXT if block.get("type") == "header" else SECTION_TEXT
        if block.get("type") in ("header", "section") and any(
            len(text) > limit for text in _texts(block)
        ):
            return "invalid_blocks"
    if len(json.dumps(blocks, ensure_ascii=False)) > BLOCKS_CHARS:
        return "msg_blocks_too_long"
    text = str(body.get("text", ""))
    if len(text) + sum(len(t) for b in blocks for t in _texts(b)) > MESSAGE_TEXT:
        return "msg_too_long"
    return None

"""Block Kit messages stay within Slack's limits and always carry a plain-text fallback."""

from __future__ import annotations

from chalicelib.runbooks import runbook_url
from chalicelib.slack import MAX_BLOCKS, SECTION_TEXT_LIMIT, build_message, cut


def _section_texts(blocks: list[dict[str, object]]) -> list[str]:
    return [b["text"]["text"] for b in blocks if b["type"] == "section"]  # type: ignore[index]


def test_short_message_has_header_body_facts_runbook_and_footer() -> None:
    message = build_message(
        "deploying v1.2.3",
        "deploying `v1.2.3`",
        facts=[("Deployment", "ecs-svc/1")],
        runbook="https://example.com/runbooks/redeploy.md",
        footer="spotops-dev · redeploy",
    )

    types = [block["type"] for block in message.blocks]
    assert types == ["header", "section", "divider", "section", "section", "context"]
    assert message.text.startswith("deploying v1.2.3: deploying `v1.2.3`")
    assert "https://example.com/runbooks/redeploy.md" in message.text
    assert "*Deployment:* ecs-svc/1" in _section_texts(message.blocks)


def test_long_body_is_split_into_sections_of_at_most_3000_chars() -> None:
    body = "\n".join(f"line {i:04d} " + "x" * 80 for i in range(200))  # ~18 kB
    message = build_message("title", body)

    sections = _section_texts(message.blocks)
    assert len(sections) > 1
    assert all(len(text) <= SECTION_TEXT_LIMIT for text in sections)
    assert "".join(sections).replace("\n", "") == body.replace("\n", "")
    assert len(message.text) <= 3000


def test_huge_body_is_cut_to_50_blocks_and_says_so() -> None:
    message = build_message("t" * 500, "y" * 400_000, runbook="https://example.com/r.md")

    assert len(message.blocks) <= MAX_BLOCKS
    assert len(message.blocks[0]["text"]["text"]) <= 150
    assert any("cut to fit Slack" in text for text in _section_texts(message.blocks))
    assert "https://example.com/r.md" in str(message.blocks[-1])


def test_cut_marks_the_cut() -> None:
    assert cut("abcdef", 4) == "abc…"
    assert cut("abc", 4) == "abc"


def test_runbook_url_joins_base_and_file() -> None:
    assert runbook_url("https://x.example/runbooks/", "/deploy-failed.md") == (
        "https://x.example/runbooks/deploy-failed.md"
    )

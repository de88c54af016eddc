"""WHIP publishers are capped per agent like WHEP viewers: a flood of offers under new names is refused."""

from __future__ import annotations

import asyncio

from test_whep import ICE, SIZE, Agent, agent, post_offer, teacher

from streaming.encoding import VideoEncoder
from streaming.rtc import Peer
from streaming.synthetic import SyntheticSource
from streaming.whep import MAX_PUBLISHERS

__all__ = ["agent", "teacher"]  # fixtures shared with test_whep


async def test_publishers_under_ever_new_names_are_capped(agent: Agent, teacher: SyntheticSource) -> None:
    encoder = VideoEncoder(teacher, size=SIZE, bitrate=300_000)
    publishers = [Peer(f"p{n}", ICE, send={"cam": encoder}) for n in range(MAX_PUBLISHERS + 2)]
    try:
        offers = [await p.create_offer() for p in publishers]
        responses = await asyncio.gather(
            *(post_offer(agent.base, f"/whip/cam-{n}", offer) for n, offer in enumerate(offers))
        )
        statuses = sorted(r.status for r in responses)
        assert statuses == [201] * MAX_PUBLISHERS + [503, 503], statuses
        full = next(r for r in responses if r.status == 503)
        assert f"the limit is {MAX_PUBLISHERS}" in await full.text()
        assert len(agent.ingested) == MAX_PUBLISHERS
    finally:
        for publisher in publishers:
            await publisher.close()
        encoder.close()


async def test_a_whip_name_must_be_short_and_plain(agent: Agent, teacher: SyntheticSource) -> None:
    response = await post_offer(agent.base, "/whip/" + "n" * 200, "v=0\r\n")
    assert response.status == 400 and "name" in await response.text()
    assert agent.ingested == {}

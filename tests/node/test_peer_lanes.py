"""PeerClient's lanes: consensus messages never wait for a connection behind event gossip.

Over a slow link each request holds its connection for a round trip or longer; with one pool
shared by gossip and consensus, gossip at a steady rate kept every connection to a peer busy and
the votes queued behind it until they timed out (issue 13 item 4).
"""

from __future__ import annotations

import asyncio
import socket

from aiohttp import web

from ledger.keys import SigningKey
from node.peers import BULK_CONNECTIONS, Peer, PeerClient

SENDER = SigningKey.from_seed(b"\x01" * 32)
RECEIVER = SigningKey.from_seed(b"\x02" * 32)


async def scenario() -> tuple[bool, int, int]:
    release = asyncio.Event()
    held = 0

    async def events(request: web.Request) -> web.Response:
        nonlocal held
        await request.read()
        held += 1
        await release.wait()  # a slow link: the gossip request holds its connection
        return web.Response(status=202)

    async def consensus(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/peer/events", events)
    app.router.add_post("/peer/consensus", consensus)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    peer = Peer(RECEIVER.public_bytes, f"http://127.0.0.1:{sock.getsockname()[1]}", "AE")
    client = PeerClient(SENDER, "kp-lanes", timeout_s=3.0)
    try:
        gossip = [
            asyncio.create_task(client.post(peer, "/peer/events", b"\x90"))
            for _ in range(BULK_CONNECTIONS + 8)
        ]
        deadline = asyncio.get_running_loop().time() + 10
        while held < BULK_CONNECTIONS and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        # Every connection gossip may use is taken, and more gossip waits for one.
        taken = held
        vote = await client.post(peer, "/peer/consensus", b"\x90")
        still_held = held - sum(task.done() for task in gossip)
        release.set()
        await asyncio.gather(*gossip)
        return vote, taken, still_held
    finally:
        await client.close()
        await runner.cleanup()


def test_a_vote_is_delivered_while_gossip_holds_every_connection() -> None:
    vote, taken, still_held = asyncio.run(scenario())
    assert taken == BULK_CONNECTIONS
    assert still_held == BULK_CONNECTIONS  # the vote went while gossip still held them all
    assert vote

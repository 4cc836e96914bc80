"""Headless Chromium driven over the DevTools protocol: open a page at a given viewport width,
wait for its script, measure the layout with JavaScript and take a full-page screenshot.

Chromium chooses its own debugging port (--remote-debugging-port=0) and writes it to
DevToolsActivePort in its profile directory: no port is probed, nothing can race for it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    # The test nodes speak TLS and show browsers a self-signed certificate (data/tls/browser.crt,
    # docs/security.md): the pages are what is tested here, and nothing of the ledger's trust
    # rests on that certificate (kpledger clients pin the node keys; proofs check with genesis).
    "--ignore-certificate-errors",
]


@dataclass
class View:
    """What a page looked like at one viewport width."""

    width: int
    measured: Any
    screenshot: Path


class DevTools:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.session: str | None = None

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        message_id = next(self.ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params}
        if self.session is not None:
            message["sessionId"] = self.session
        await self.ws.send_str(json.dumps(message))
        while True:
            answer = await self.ws.receive(timeout=60)
            if answer.type != aiohttp.WSMsgType.TEXT:
                raise AssertionError(f"DevTools connection closed during {method}: {answer}")
            data = json.loads(answer.data)
            if data.get("id") == message_id:
                if "error" in data:
                    raise AssertionError(f"{method}: {data['error']}")
                result: dict[str, Any] = data.get("result", {})
                return result

    async def evaluate(self, expression: str) -> Any:
        answer = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in answer:
            raise AssertionError(f"the page's JavaScript failed: {answer['exceptionDetails']}")
        return answer["result"].get("value")


def _endpoint(process: subprocess.Popen[bytes], profile: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    found = profile / "DevToolsActivePort"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"chromium exited with {process.returncode}")
        if found.exists():
            lines = found.read_text().split()
            if len(lines) >= 2:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        time.sleep(0.05)
    raise AssertionError("chromium did not open its DevTools endpoint")


async def _views(
    endpoint: str,
    url: str,
    widths: list[int],
    ready: str,
    measure: str,
    shots: Path,
    timeout: float,
) -> list[View]:
    views = []
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(endpoint, max_msg_size=0) as ws,
    ):
        tools = DevTools(ws)
        target = await tools.call("Target.createTarget", url="about:blank")
        attached = await tools.call(
            "Target.attachToTarget", targetId=target["targetId"], flatten=True
        )
        tools.session = attached["sessionId"]
        for width in widths:
            await tools.call(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=844 if width < 600 else 900,
                deviceScaleFactor=1,
                mobile=width < 600,
            )
            await tools.call("Page.navigate", url=url)
            deadline = time.monotonic() + timeout
            while not await tools.evaluate(ready):
                if time.monotonic() > deadline:
                    raise AssertionError(f"the page at {url} never became ready ({ready})")
                await asyncio.sleep(0.1)
            measured = await tools.evaluate(measure)
            metrics = await tools.call("Page.getLayoutMetrics")
            size = metrics["cssContentSize"]
            shot = await tools.call(
                "Page.captureScreenshot",
                format="png",
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
            )
            path = shots / f"explorer-{width}px.png"
            path.write_bytes(base64.b64decode(shot["data"]))
            views.append(View(width, measured, path))
    return views


def look(
    browser: str,
    url: str,
    widths: list[int],
    *,
    ready: str,
    measure: str,
    shots: Path,
    timeout: float = 60,
) -> list[View]:
    """Open `url` at each viewport width (narrower than 600 px as a phone), wait until the
    JavaScript expression `ready` is true, and return what `measure` evaluates to, with a
    full-page screenshot written to `shots`."""
    shots.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kp-chromium-") as profile:
        process = subprocess.Popen(
            [
                browser,
                *FLAGS,
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its helper processes too are ended below, as one group
        )
        try:
            endpoint = _endpoint(process, Path(profile))
            return asyncio.run(_views(endpoint, url, widths, ready, measure, shots, timeout))
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            _wait_group_gone(process.pid)


def _wait_group_gone(group: int, timeout: float = 10) -> None:
    """Wait until no process of the group is left (they write to the profile until they go)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)

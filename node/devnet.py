"""`kpledger devnet`: a local network of real node processes on 127.0.0.1, with demo trade."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from ledger.genesis import Genesis
from node.client import ConnectionFailed, NodeClient, Trust
from node.files import load_genesis
from node.netinit import init_network, parse_participants
from node.tls import ClientTrust

#: The devnet's participants, in order: SPEC's four first, then other big traders.
DEVNET_PARTICIPANTS = ["BE", "AE", "IN", "RU", "BW", "IL", "HK", "CA", "ZA", "CN", "US", "CH"]


def start_nodes(directory: Path, genesis: Genesis, log_dir: Path) -> list[subprocess.Popen[bytes]]:
    log_dir.mkdir(parents=True, exist_ok=True)
    processes = []
    for validator in genesis.validators:
        config = directory / validator.participant / "node.toml"
        log_file = open(log_dir / f"{validator.participant}.log", "ab")  # noqa: SIM115
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "node.cli", "node", "run", "--config", str(config)],
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
            )
        )
    return processes


def wait_healthy(
    urls: list[str], processes: list[subprocess.Popen[bytes]], chain_id: str, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    for url, process in zip(urls, processes, strict=True):
        while True:
            if process.poll() is not None:
                raise click.ClickException(f"the node at {url} exited; see its log in devnet/logs")
            try:
                health = NodeClient(url, timeout=1).get("/healthz")
                # Up is answering: 503 says what is not yet right (peers still starting).
                answering = health.status in (200, 503) and isinstance(health.body, dict)
                if answering and process.poll() is None:
                    if health.body.get("chain_id") != chain_id:
                        raise click.ClickException(
                            f"another network answers at {url} (port taken?); stop it first"
                        )
                    break
            except ConnectionFailed:
                pass
            if time.monotonic() > deadline:
                raise click.ClickException(f"the node at {url} did not come up")
            time.sleep(0.1)
    # A node that could not bind its port exits at once, possibly after another process on
    # that port answered for it: make sure every one of ours is still running.
    time.sleep(0.5)
    for url, process in zip(urls, processes, strict=True):
        if process.poll() is not None:
            raise click.ClickException(f"the node at {url} exited (port taken?); see devnet/logs")


def stop_nodes(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def turn_portal_on(config: Path) -> None:
    """The devnet serves the authority portal (SPEC 7): `portal = true` in each node.toml that
    does not say otherwise (a devnet made before the portal gets it too)."""
    text = config.read_text(encoding="utf-8")
    if not any(line.split("=", 1)[0].strip() == "portal" for line in text.splitlines()):
        config.write_text(text.rstrip("\n") + "\nportal = true\n", encoding="utf-8")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_devnet(directory: Path, nodes: int, *, base_port: int = 7700, demo: bool = True) -> None:
    directory = Path(directory)
    if not (directory / "genesis.json").exists():
        specs = parse_participants(",".join(DEVNET_PARTICIPANTS[:nodes]))
        init_network(directory, specs, base_port=base_port, chain_id="kp-devnet")
        click.echo(f"created a network of {nodes} participants in {directory}/")
    else:
        click.echo(f"using the existing network in {directory}/")
    genesis = load_genesis(directory / "genesis.json")
    # Every request of the devnet (health, demo trade) checks the node keys of its genesis.
    Trust.use(ClientTrust.from_genesis(genesis, f"the genesis {directory / 'genesis.json'}"))
    urls = [v.address for v in genesis.validators]
    for validator in genesis.validators:
        turn_portal_on(directory / validator.participant / "node.toml")
    # SIGTERM (a supervisor, `kill`) stops the devnet as Ctrl-C does: never orphan the nodes.
    # SIGINT explicitly too: a process started in the background inherits SIGINT ignored, and
    # Python then never turns it into KeyboardInterrupt.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    processes = start_nodes(directory, genesis, directory / "logs")
    try:
        wait_healthy(urls, processes, genesis.chain_id)
        height = NodeClient(urls[0]).get("/healthz").body["height"]
        if demo and height == 0:
            from node.demo import load_demo

            click.echo("loading demo certificates ...")
            events = load_demo(directory, genesis, log=click.echo)
            click.echo(f"  {events} demo events submitted")
        click.echo("")
        click.echo(f"kpledger devnet {genesis.chain_id} is running ({len(urls)} nodes):")
        for validator in genesis.validators:
            url = validator.address
            click.echo(f"  {validator.participant:>3}  public endpoint  {url}/v1/public/head")
            click.echo(f"       explorer         {url}/explorer")
            click.echo(f"       portal           {url}/portal/")
            click.echo(f"       config           {directory / validator.participant / 'node.toml'}")
        click.echo(f"  logs: {directory / 'logs'}/    genesis: {directory / 'genesis.json'}")
        first = genesis.validators[0].participant
        click.echo(
            "  portal accounts (none are made for you): in another terminal,\n"
            f"    .venv/bin/kpledger user add --config {directory / first / 'node.toml'} "
            "--name admin --role admin\n"
            "  then sign in at the portal URL above (docs/portal.md; the browser warns of the "
            "devnet's self-signed certificate)"
        )
        click.echo("Press Ctrl-C to stop.")
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        click.echo("a node exited; stopping the devnet (see the logs)", err=True)
    except KeyboardInterrupt:
        click.echo("\nstopping ...")
    finally:
        stop_nodes(processes)

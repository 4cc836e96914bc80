"""The `kpledger` command group: each command group lives in its own module of node/cli/."""

from __future__ import annotations

import click

from node import garbage
from node.cli import (
    audit,
    cert,
    emergency,
    explore,
    gov,
    history,
    key,
    network,
    node,
    reports,
    snapshot,
    token,
    user,
    vc,
    verifier,
    verify,
    webhook,
)
from node.cli.common import Group


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kpledger")
def main() -> None:
    """kpledger: a shared ledger of Kimberley Process certificates.

    Each KP participant runs a node; certificates are issued, confirmed, rejected and voided as
    signed events that the nodes agree on. Anyone can verify a certificate through the public
    endpoint with `kpledger verify`.
    """
    garbage.tune()  # a node, an audit, an import: each makes objects fast (node/garbage.py)


main.add_command(network.network)
main.add_command(node.node)
main.add_command(node.devnet)
main.add_command(cert.cert)
cert.cert.add_command(gov.cert_endorse)
cert.cert.add_command(vc.cert_vc)
main.add_command(gov.gov_group, "gov")
gov.gov_group.add_command(emergency.emergency)
main.add_command(key.key)
main.add_command(verify.verify)
main.add_command(reports.stats)
main.add_command(audit.audit)
main.add_command(audit.store)
main.add_command(reports.reconcile)
main.add_command(history.history)
main.add_command(explore.explore)
main.add_command(snapshot.snapshot)
main.add_command(token.token)
main.add_command(user.user)
main.add_command(verifier.verifier)
main.add_command(webhook.webhook)

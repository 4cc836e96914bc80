"""Checks by software that shares no code with kpledger."""

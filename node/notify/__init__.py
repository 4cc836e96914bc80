"""Notifications for national systems: the resumable event stream and signed webhooks (SPEC 9)."""

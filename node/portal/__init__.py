"""The authority portal's own parts (SPEC 7): officer accounts, sessions, CSRF, roles, the
activity log, the officers' actions and the message catalogues; node/http/portal.py serves them."""

"""Accounts that people keep: email verification and password reset by one-time links."""

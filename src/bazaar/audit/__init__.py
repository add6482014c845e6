"""The audit trail: who changed what, from where, written in the transaction of the change."""

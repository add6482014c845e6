"""Mail: the transactional outbox, and the sender each worker runs in the background."""

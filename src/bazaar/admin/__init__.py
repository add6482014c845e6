"""The admin web UI at `/admin`: SQLAdmin, signed in as an admin, over Bazaar's services."""

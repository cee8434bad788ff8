"""Collections: a curated, ordered list of repos (and other collections) owned by a user or an org."""

"""Webhooks: a user's hooks (``service``), where a hook may point (``urls``), the Hub's payload (``payloads``),
the background sender that reads the repo event outbox and delivers (``sender``), and the API (``routes``)."""

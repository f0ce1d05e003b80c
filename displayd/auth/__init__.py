"""Who may do what: API keys and roles, board tokens, and the audit log."""

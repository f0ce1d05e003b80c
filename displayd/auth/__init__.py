"""Who may do what: API keys (`keys`), roles, dashboard sessions (`sessions`), the guard on
failed sign-ins (`guard`), and the audit log."""

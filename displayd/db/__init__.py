"""Storage: declarative base, models, engines and sessions, migrations."""

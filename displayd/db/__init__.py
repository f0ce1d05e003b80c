"""Storage: declarative base, models, engines and sessions, shared queries (`repository`),
migrations, and `db copy` between databases (`copy`)."""

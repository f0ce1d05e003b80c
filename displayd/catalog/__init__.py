"""The slogan catalog: texts, their lifecycle draft → approved → retired, and import."""

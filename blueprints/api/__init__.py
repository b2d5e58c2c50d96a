"""The JSON API under /api/v1 (flask-smorest blueprints; OpenAPI generated from them)."""

API_BLUEPRINTS = []

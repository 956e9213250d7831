"""FastAPI: REST, gateway webhooks, the web console. Starts, signals and queries workflows."""

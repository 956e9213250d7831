"""Plain service functions behind the routes (routes stay thin)."""

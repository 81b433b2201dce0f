"""The small core every area builds on: the warehouse and its schema, the access scope, caching,
the settings, and the records store for what the app writes."""

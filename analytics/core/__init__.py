"""The small core every area builds on: the warehouse and its schema, the access scope, caching."""

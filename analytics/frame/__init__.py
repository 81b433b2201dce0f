"""The app frame's modules: who the user is, the page declarations, the validated page context."""

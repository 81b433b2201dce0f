"""Shared colours for flags and charts (the app theme itself is in .streamlit/config.toml)."""

FLAG_COLORS: dict[str, str] = {
    "green": "#6a994e",
    "amber": "#f2a541",
    "red": "#c73e1d",
    "grey": "#c9ced6",
    "blue": "#1f4e79",
}

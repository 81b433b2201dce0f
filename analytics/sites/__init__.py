"""The Site performance area: scorecards against study peers and site selection."""

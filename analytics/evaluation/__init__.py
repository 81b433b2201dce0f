"""Ground-truth evaluations of the analytics (each target is a module with an ``evaluate_*`` function)."""

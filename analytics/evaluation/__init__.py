"""Ground-truth evaluations of the analytics (each target is a module with an ``evaluate_*`` function)."""


def target_lines(targets: dict[str, dict[str, object]]) -> list[str]:
    """One line per target check (``met`` plus its figures), as every evaluation prints them."""
    return [f"  target {name}: {'met' if check['met'] else 'NOT met'} {({k: v for k, v in check.items() if k != 'met'})}"
            for name, check in targets.items()]

"""Mutual distillation policy optimisation. From Python: ``configure``, ``fit``, ``metrics`` and
``evaluate_run`` (see ``mdpo.api``), loaded on first use so that importing a module of the package
(``mdpo.config``) does not import torch and the training stack."""

API = ("configure", "fit", "metrics", "evaluate_run")
__all__ = list(API)


def __getattr__(name: str):
    if name in API:
        from mdpo import api

        return getattr(api, name)
    raise AttributeError(f"module 'mdpo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *API])

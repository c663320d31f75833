"""How a run's models are recorded and named to the user: the `models` of config.json and
result.json, the model lines of `gpo-local show`, and the one-line notices a served model calls
for (backends/served.py): an identity the server does not report, --ray with a served task model.
"""

from __future__ import annotations

from typing import Iterable

from gpo_local.backends.cluster import served_ray_notice
from gpo_local.backends.served import ServedModel


def describe_model(spec: str | None, model) -> dict:
    """A model's record: the spec it was named by, its file (or, served, its `URL#name`) and its
    fingerprint under `sha256` (the key resume compares); a served model adds `served`, what its
    server reports (address, name, identity, capabilities: never the API key)."""
    if isinstance(model, ServedModel):
        return {"spec": spec, "path": model.name, "sha256": model.fingerprint, "served": model.describe()}
    path = getattr(model, "path", None)
    return {
        "spec": spec,
        "path": str(path) if path is not None else f"<{type(model).__name__}>",
        "sha256": model.fingerprint,
    }


def model_line(role: str, record: dict) -> str:
    """One line naming a recorded model: its spec or path, and for a served one its server and
    what its replies honour."""
    name = record.get("spec") or record.get("path") or "?"
    served = record.get("served")
    if not served:
        return f"{role} model: {name}"
    capabilities = served.get("capabilities") or {}
    honoured = ", ".join(
        f"{key.replace('_', ' ')} {'yes' if capabilities.get(key) else 'no'}"
        for key in ("grammar", "copy_guard")
    )
    identity = "identity reported" if served.get("identity_known") else "identity not reported"
    return (
        f"{role} model: {served.get('url')}#{served.get('model')} (served by {served.get('server')}; "
        f"{honoured}; {identity})"
    )


def model_lines(config: dict) -> list[str]:
    """The task and optimizer model lines of a run's config.json (the embedder is left out)."""
    models = config.get("models") or {}
    return [
        model_line(role, models[role]) for role in ("task", "optimizer") if isinstance(models.get(role), dict)
    ]


def identity_notices(models: Iterable, *, cache: bool) -> list[str]:
    """One line per served model whose server does not say what is behind its name, where the
    memo cache is on: cached replies then assume that model did not change."""
    notices, seen = [], set()
    for model in models:
        if getattr(model, "identity_known", True) or id(model) in seen or not cache:
            continue
        seen.add(id(model))
        notices.append(
            f"note: the server does not report what model {getattr(model, 'name', model)} is; "
            "cached replies assume the model behind that name did not change (--no-cache to "
            "ignore them)"
        )
    return notices


def loading_notices(runtime: dict) -> list[str]:
    """Notices before the models load: --ray with a served task model."""
    notice = served_ray_notice(runtime.get("task_model") or "", runtime)
    return [notice] if notice else []

"""Small, fast configurations shared by the engine tests."""

from engine.config import DataConfig, ModelConfig, TrainConfig

DIGITS = DataConfig(source="digits")


def small_model(variant: str = "vae", latent_dim: int = 2, **params) -> ModelConfig:
    cfg = ModelConfig(variant=variant, latent_dim=latent_dim, hidden=(64, 32))
    return cfg.with_params(**params) if params else cfg


def quick_train(epochs: int = 2, **kw) -> TrainConfig:
    base = dict(epochs=epochs, batch_size=64, lr=3e-3, seed=0, device="cpu", probe_size=200, probe_every=10,
                snapshot_every=5, report_every=5)
    base.update(kw)
    return TrainConfig(**base)


def child_pids() -> set[int]:
    """The live (not zombie) child processes of this test process, read from Linux's /proc."""
    import os
    from pathlib import Path
    pids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z":
            pids.add(int(stat.parent.name))
    return pids

"""What one training step costs on a GPU, and what removes the cost: the 784-400-20 VAE of
bench_throughput.py (batch 128, real MNIST held on the device as uint8) in four loops.

* ``eager, read each step``: the bare loop of bench_throughput.py (the engine's ``optimize``:
  one ``.item()`` a step for the finite check, so the CPU waits for the GPU every step);
* ``eager, read every 10``: the same arithmetic, the finite check kept on the device (fused
  Adam's ``found_inf`` skips a non-finite step there) and read once every 10 steps;
* ``graph``: the whole step (batch gather, loss, backward, the finite check, fused capturable
  Adam) captured once as a CUDA graph and replayed: one launch a step;
* the reference loop (pytorch/examples), for the ratio in the same run;
* ours: the Trainer as ``main.py train`` runs it (on CUDA its step is a CUDA graph,
  engine/cuda_graphs.py) and with ``engine.cuda_graphs.ENABLED = False`` (the eager step).

Each at batch 128 and, for the two last loops of ours, at ``--big-batch`` too.  ``--profile``
also prints torch.profiler's view of the Trainer's steps (what the CPU spends a step on).

    python benchmarks/bench_cuda_step.py --device cuda --mnist-gz DIR [--steps 400] [--profile]
"""

from __future__ import annotations

import argparse
import math
import time

import common  # noqa: I001  (puts the repository on sys.path)
import torch
from bench_throughput import BATCH, LR, MODEL, ours_run, reference_run

from engine import cuda_graphs
from engine.config import DataConfig
from engine.datasets import load_dataset
from engine.models import build_model
from engine.models.base import gradient_norm_sum


def _setup(split, device, seed):
    torch.manual_seed(seed)
    train_set = split.train
    model = build_model(MODEL, train_set.shape, train_set.n_classes).to(device)
    return model, train_set.images.to(device)


def _shuffled_batches(n: int, batch: int, warmup: int, steps: int, device, clock: dict):
    """Each step's number and its slice of a shuffled order of the ``n`` images (a new order when
    one runs out); ``clock["t0"]`` is set, after the device's queued work, at step ``warmup``."""
    order, start = torch.randperm(n, device=device), 0
    for i in range(warmup + steps):
        if i == warmup:
            clock["t0"] = common.now(device)
        if start + batch > n:
            order, start = torch.randperm(n, device=device), 0
        yield i, order[start:start + batch]
        start += batch


def eager_run(split, device, warmup: int, steps: int, seed: int, batch: int, read_every: int) -> float:
    """The bare loop; the finite check read every ``read_every`` steps (1: the engine's ``optimize``)."""
    model, images = _setup(split, device, seed)
    params = list(model.parameters())
    optimizer = torch.optim.Adam(params, lr=LR, fused=True)
    flags = []
    model.train()
    clock: dict = {}
    for _, rows in _shuffled_batches(images.shape[0], batch, warmup, steps, device, clock):
        x = images[rows].float().div_(255.0)
        out = model.loss(x)
        for p in params:
            p.grad = None
        out.total.backward()
        check = out.total.detach() + gradient_norm_sum([p.grad for p in params]).to(torch.float32)
        if read_every == 1:
            if not math.isfinite(check.item()):
                raise RuntimeError("non-finite")
            optimizer.step()
        else:
            found_inf = (~torch.isfinite(check)).float()
            optimizer.found_inf, optimizer.grad_scale = found_inf, None
            optimizer.step()
            flags.append(found_inf)
            if len(flags) == read_every:
                if torch.stack(flags).sum().item():
                    raise RuntimeError("non-finite")
                flags.clear()
    return steps * batch / (common.now(device) - clock["t0"])


def graph_run(split, device, warmup: int, steps: int, seed: int, batch: int) -> float:
    """The whole step as one CUDA graph: gather, loss, backward, finite check, fused Adam."""
    model, images = _setup(split, device, seed)
    params = list(model.parameters())
    optimizer = torch.optim.Adam(params, lr=LR, fused=True, capturable=True)
    n = images.shape[0]
    idx = torch.zeros(batch, dtype=torch.long, device=device)
    log = torch.zeros(10, device=device)
    slot = torch.zeros((), dtype=torch.long, device=device)
    model.train()

    def step():
        x = images.index_select(0, idx).float().div_(255.0)
        out = model.loss(x)
        out.total.backward()
        check = out.total.detach() + gradient_norm_sum([p.grad for p in params]).to(torch.float32)
        optimizer.found_inf = (~torch.isfinite(check)).float()
        optimizer.grad_scale = None
        optimizer.step()
        return out.total.detach()

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            for p in params:
                p.grad = None
            step()
    torch.cuda.current_stream().wait_stream(side)
    for p in params:
        p.grad = None
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        total = step()
        log.index_copy_(0, slot.view(1), total.view(1))
    clock: dict = {}
    for i, rows in _shuffled_batches(n, batch, warmup, steps, device, clock):
        idx.copy_(rows)
        slot.fill_(i % 10)
        graph.replay()
        if i % 10 == 9:
            values = log.tolist()
            if not all(map(math.isfinite, values)):
                raise RuntimeError("non-finite")
    return steps * batch / (common.now(device) - clock["t0"])


def eager_ours(split, data_cfg, device, warmup: int, steps: int) -> float:
    cuda_graphs.ENABLED = False
    try:
        return ours_run(split, data_cfg, device, warmup, steps, 0, 10)
    finally:
        cuda_graphs.ENABLED = True


def profile_ours(split, data_cfg, device, steps: int) -> None:
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        ours_run(split, data_cfg, device, 20, steps, 0, 10)
    events = prof.key_averages()
    print(f"\nprofile of the Trainer, {steps} timed steps (+20 warm-up): top 25 by self CPU time")
    print(events.table(sort_by="self_cpu_time_total", row_limit=25, max_name_column_width=48))
    for name in ("cudaLaunchKernel", "cudaStreamSynchronize", "cudaMemcpyAsync", "cudaDeviceSynchronize",
                 "aten::item", "aten::_local_scalar_dense"):
        hit = [e for e in events if e.key == name]
        if hit:
            print(f"{name}: {hit[0].count / (steps + 20):.1f} a step, "
                  f"{hit[0].self_cpu_time_total / (steps + 20):.0f} us a step")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_common_args(parser)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--big-batch", type=int, default=1024)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    device = common.setup_torch(args)
    root = common.prepare_mnist_root(args.data_root, args.mnist_gz)
    common.print_environment(common.environment(device))
    ref_train, _ = common.mnist_sets(root)
    data_cfg = DataConfig(source="mnist", root=str(root))
    split = load_dataset(data_cfg)
    contenders = {
        "reference (pytorch/examples), 128": lambda: reference_run(ref_train, device, args.warmup, args.steps, 0),
        "ours (Trainer), 128": lambda: ours_run(split, data_cfg, device, args.warmup, args.steps, 0, 10),
        "ours (Trainer, no graphs), 128": lambda: eager_ours(split, data_cfg, device, args.warmup, args.steps),
        "eager, read each step, 128": lambda: eager_run(split, device, args.warmup, args.steps, 0, BATCH, 1),
        "eager, read every 10, 128": lambda: eager_run(split, device, args.warmup, args.steps, 0, BATCH, 10),
        f"eager, read every 10, {args.big_batch}":
            lambda: eager_run(split, device, args.warmup, args.steps, 0, args.big_batch, 10),
    }
    if device.type == "cuda":
        contenders["graph, 128"] = lambda: graph_run(split, device, args.warmup, args.steps, 0, BATCH)
        contenders[f"graph, {args.big_batch}"] = lambda: graph_run(split, device, args.warmup, args.steps, 0,
                                                                   args.big_batch)
    results: dict[str, list[float]] = {k: [] for k in contenders}
    for r in range(args.rounds):
        for name, run in contenders.items():
            t = time.perf_counter()
            try:
                results[name].append(run())
                print(f"round {r + 1}: {name}: {results[name][-1]:,.0f} samples/s ({time.perf_counter() - t:.1f} s)",
                      flush=True)
            except Exception as exc:  # noqa: BLE001 - a loop that cannot run says why, the others go on
                print(f"round {r + 1}: {name}: FAILED {type(exc).__name__}: {str(exc)[:300]}", flush=True)
    ref = results["reference (pytorch/examples), 128"]
    ref_med = common.median(ref) if ref else float("nan")
    print(f"\nmedians over {args.rounds} rounds of {args.steps} steps, {device}:")
    for name, values in results.items():
        if values:
            med = common.median(values)
            print(f"  {name:40s} {med:12,.0f} samples/s  {med / ref_med:6.2f}x the reference")
    if args.profile:
        profile_ours(split, data_cfg, device, 100)


if __name__ == "__main__":
    main()

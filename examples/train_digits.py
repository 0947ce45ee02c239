"""Train a compiled Inception-style variant on scikit-learn's bundled digits.

The model is ``examples/mini_inception.yaml`` built by ``inceptdsl.build`` for either
backend; the 8x8 digits are upsampled to 32x32 (one grey channel). It ends with the line
``test accuracy: 0.9xx``::

    python examples/train_digits.py --backend torch
    python examples/train_digits.py --backend flax

Data parallel, on CPU:

    torchrun --nproc_per_node 2 examples/train_digits.py --backend torch   # DDP, gloo
    python examples/train_digits.py --backend flax --devices 2             # sharded jit

Under ``torchrun`` (``WORLD_SIZE`` set) the model is wrapped in DistributedDataParallel with
a DistributedSampler: each replica normalises with the BatchNorm statistics of its own
half batch (DDP keeps rank 0's running statistics). With ``--devices N`` the flax run
simulates N CPU devices, replicates model and optimizer state and shards each batch over a
``data`` mesh axis: BatchNorm sees the statistics of the whole (global) batch. Both print a
parameter checksum per replica, so the replicas can be checked to be identical.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

SPEC = Path(__file__).with_name("mini_inception.yaml")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=["torch", "flax"], default="torch")
    p.add_argument("--spec", default=str(SPEC), help="spec to train (input [1, 32, 32])")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--steps", type=int, default=0, help="stop after this many steps (0: all)")
    p.add_argument("--batch-size", type=int, default=32, help="global batch size")
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--devices", type=int, default=1, help="flax: simulated CPU devices")
    return p.parse_args(argv)


def load_data(seed: int = 0) -> tuple[np.ndarray, ...]:
    """Digits as float32 NCHW 1x32x32, standardised; a fixed 80/20 train/test split.

    >>> x_train, y_train, x_test, y_test = load_data()
    >>> x_train.shape, x_test.shape, y_train.dtype
    ((1437, 1, 32, 32), (360, 1, 32, 32), dtype('int64'))
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.float32) / 16.0
    images = np.kron(images, np.ones((1, 4, 4), np.float32))[:, None]  # 8x8 -> 32x32
    images = (images - images.mean()) / images.std()
    order = np.random.default_rng(seed).permutation(len(images))
    split = int(0.8 * len(images))
    train, test = order[:split], order[split:]
    labels = digits.target.astype(np.int64)
    return images[train], labels[train], images[test], labels[test]


def total_steps(args: argparse.Namespace, n_train: int) -> int:
    steps = args.epochs * (n_train // args.batch_size)
    return min(steps, args.steps) if args.steps else steps


def report_epoch(epoch: int, args: argparse.Namespace, losses: list, accs: list,
                 start: float) -> None:
    print(f"epoch {epoch + 1}/{args.epochs}  loss {np.mean(losses):.4f}  "
          f"train acc {np.mean(accs):.3f}  ({time.perf_counter() - start:.1f} s)", flush=True)


# ---------------------------------------------------------------------------- torch


def torch_setup(args: argparse.Namespace):
    """(model, ddp-wrapped model or the model, rank, world size) for this process."""
    import torch
    import torch.distributed as dist

    import inceptdsl

    world = int(os.environ.get("WORLD_SIZE", "1"))
    torch.set_num_threads(1)  # small convs: one thread per process is fastest on CPU
    torch.manual_seed(args.seed)
    model = inceptdsl.build(inceptdsl.load(args.spec), backend="torch")
    if world == 1:
        return model, model, 0, 1
    dist.init_process_group("gloo")
    from torch.nn.parallel import DistributedDataParallel

    return model, DistributedDataParallel(model), dist.get_rank(), world


def torch_loader(args: argparse.Namespace, x, y, world: int):
    import torch
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

    data = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    sampler = DistributedSampler(data, seed=args.seed) if world > 1 else None
    gen = torch.Generator().manual_seed(args.seed)
    return DataLoader(data, batch_size=args.batch_size // world, shuffle=sampler is None,
                      sampler=sampler, drop_last=True, generator=gen)


def train_torch(args: argparse.Namespace) -> float:
    """Train with AdamW and a one-cycle schedule; returns the test accuracy."""
    import torch
    import torch.nn.functional as F

    x_train, y_train, x_test, y_test = load_data(args.seed)
    model, net, rank, world = torch_setup(args)
    loader = torch_loader(args, x_train, y_train, world)
    steps = total_steps(args, len(x_train))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=max(steps, 1))
    step, start = 0, time.perf_counter()
    for epoch in range(args.epochs):
        if world > 1:
            loader.sampler.set_epoch(epoch)
        net.train()
        losses, accs = [], []
        for x, y in loader:
            if step >= steps:
                break
            logits = net(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            losses.append(loss.item())
            accs.append((logits.argmax(1) == y).float().mean().item())
        if rank == 0 and losses:
            report_epoch(epoch, args, losses, accs, start)
    return torch_finish(model, x_test, y_test, rank, world)


def torch_accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(torch.from_numpy(x[i:i + 256])).argmax(1)
                          for i in range(0, len(x), 256)])
    return float((pred.numpy() == y).mean())


def torch_finish(model, x_test, y_test, rank: int, world: int) -> float:
    """Test accuracy, and per-rank checksums compared across the replicas."""
    import torch

    acc = torch_accuracy(model, x_test, y_test)
    checksum = sum(p.detach().double().sum().item() for p in model.parameters())
    print(f"rank {rank} param checksum: {checksum:.12e}", flush=True)
    if world > 1:
        import torch.distributed as dist

        sums: list = [None] * world
        dist.all_gather_object(sums, checksum)
        params = torch.cat([p.detach().flatten() for p in model.parameters()])
        gathered = [torch.empty_like(params) for _ in range(world)]
        dist.all_gather(gathered, params)
        if rank == 0:
            same = all(torch.equal(g, gathered[0]) for g in gathered)
            print(f"replicas identical: {same} ({world} ranks)", flush=True)
        dist.destroy_process_group()
    if rank == 0:
        print(f"test accuracy: {acc:.3f}", flush=True)
    return acc


# ---------------------------------------------------------------------------- flax


def simulate_cpu_devices(n: int) -> None:
    """Make the CPU look like ``n`` jax devices: only works before jax is first imported."""
    if n > 1:
        if "jax" in sys.modules:
            raise RuntimeError("--devices must be set before jax is imported")
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   f" --xla_force_host_platform_device_count={n}")


def flax_setup(args: argparse.Namespace):
    """(model, optimizer, mesh), the state replicated over the devices of the mesh."""
    import jax
    import optax
    from flax import nnx

    import inceptdsl

    model = inceptdsl.build(inceptdsl.load(args.spec), backend="flax", rngs=nnx.Rngs(args.seed))
    steps = total_steps(args, 1437)
    schedule = optax.cosine_onecycle_schedule(max(steps, 1), args.lr)
    optimizer = nnx.Optimizer(model, optax.adamw(schedule, weight_decay=1e-4), wrt=nnx.Param)
    mesh = jax.make_mesh((args.devices,), ("data",))
    replicate(mesh, model, optimizer)
    return model, optimizer, mesh


def replicate(mesh, model, optimizer) -> None:
    """Put the whole model and optimizer state on every device of the mesh."""
    import jax
    from flax import nnx
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    state = nnx.state((model, optimizer))
    nnx.update((model, optimizer), jax.device_put(state, NamedSharding(mesh, P())))


def flax_steps():
    """The jitted train and predict steps (one trace each)."""
    import optax
    from flax import nnx

    @nnx.jit
    def train_step(model, optimizer, x, y):
        def loss_fn(model):
            logits = model(x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), logits

        (loss, logits), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
        optimizer.update(model, grads)
        return loss, (logits.argmax(-1) == y).mean()

    @nnx.jit
    def predict(model, x):
        return model(x).argmax(-1)

    return train_step, predict


def train_flax(args: argparse.Namespace) -> float:
    """Train with optax AdamW (one-cycle); NHWC batches sharded over the ``data`` axis."""
    import jax
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    x_train, y_train, x_test, y_test = load_data(args.seed)
    x_train, x_test = x_train.transpose(0, 2, 3, 1), x_test.transpose(0, 2, 3, 1)
    model, optimizer, mesh = flax_setup(args)
    train_step, predict = flax_steps()
    shard = NamedSharding(mesh, P("data"))
    rng = np.random.default_rng(args.seed)
    steps, step, start = total_steps(args, len(x_train)), 0, time.perf_counter()
    per_epoch = len(x_train) // args.batch_size
    for epoch in range(args.epochs):
        model.train()
        order = rng.permutation(len(x_train))[:per_epoch * args.batch_size]
        losses, accs = [], []
        for idx in order.reshape(per_epoch, args.batch_size)[:max(0, steps - step)]:
            x, y = jax.device_put((x_train[idx], y_train[idx]), shard)
            loss, acc = train_step(model, optimizer, x, y)
            losses.append(float(loss))
            accs.append(float(acc))
            step += 1
        if losses:
            report_epoch(epoch, args, losses, accs, start)
    return flax_finish(model, predict, x_test, y_test)


def flax_finish(model, predict, x_test: np.ndarray, y_test: np.ndarray) -> float:
    """Test accuracy; per-device checksums and whether every replica of every param agrees."""
    import jax
    from flax import nnx

    model.eval()
    acc = float((np.asarray(predict(model, x_test)) == y_test).mean())
    leaves = jax.tree.leaves(nnx.state(model, nnx.Param))
    n_dev = len(leaves[0].addressable_shards)
    for d in range(n_dev):
        checksum = sum(float(np.asarray(leaf.addressable_shards[d].data, np.float64).sum())
                       for leaf in leaves)
        print(f"device {d} param checksum: {checksum:.12e}")
    same = all(np.array_equal(np.asarray(s.data), np.asarray(leaf.addressable_shards[0].data))
               for leaf in leaves for s in leaf.addressable_shards)
    print(f"replicas identical: {same} ({n_dev} device{'s' if n_dev > 1 else ''})")
    print(f"test accuracy: {acc:.3f}", flush=True)
    return acc


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.backend == "flax":
        simulate_cpu_devices(args.devices)
    start = time.perf_counter()
    acc = train_torch(args) if args.backend == "torch" else train_flax(args)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"total time: {time.perf_counter() - start:.1f} s", flush=True)
    return 0 if acc >= 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())

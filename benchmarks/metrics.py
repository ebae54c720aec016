"""Per-metric seconds and peak RSS of the topometrics on full-size MGEs.

    .venv/bin/python benchmarks/metrics.py resnet20:0.98 resnet20:0.6 wrn28_2:0.6
    .venv/bin/python benchmarks/metrics.py --synthetic resnet20:0.98   # without the encoder
    .venv/bin/python benchmarks/metrics.py resnet20:0.9:snip resnet20:0.9:synflow   # pruner-made masks
    .venv/bin/python benchmarks/metrics.py --train-steps 100 resnet20:0.95:prospr   # ... on trained weights
    .venv/bin/python benchmarks/metrics.py --no-identity-skips resnet20:0.9         # the official encoding
    .venv/bin/python benchmarks/metrics.py --input-shape 3 224 224 resnet18:0.9     # ImageNet size
    .venv/bin/python benchmarks/metrics.py --rolled resnet20:0.9 wrn28_2:0.9        # rolled + Ramanujan

Issue 16 targets (2 cores): ResNet-20@0.9 (~3.7e6 edges) all 16 topometrics ≤ 2 s; WRN-28-2@0.6
≤ 90 s and ≤ 6 GB; ResNet-18 at 3×224×224 @0.9 ≤ 10 min and ≤ 16 GB; ≤ 0.6 s per million edges
for pruner-made masks too (the third field of a case: any registered pruner, scored at init on
random batches of the input shape, or with ``--train-steps N`` on digits batches, after which
the masked model is trained N SGD steps on scikit-learn's digits upsampled to 3×32×32, so that
the weights the spectral metrics read are trained ones, as in a study's trained cells). ``--rolled``: rolled + rolled-channel encode, every per-layer metric and the
Ramanujan metrics, ResNet-20 ≤ 0.5 s and WRN-28-2 ≤ 1.5 s. Each case prints the load average:
the shared machine's figures are only comparable at similar load.

Targets (2 cores, ``metrics.md`` §5 / issue 4): all 16 topometrics of ResNet-20@0.98 (1.9e5 nodes,
3.6e6 edges) under 10 s; WRN-28-2@0.6 (4.8e5 nodes, ~1e8 edges) under 5 min and 12 GB.

The graph is the MGE of the model with uniform random masks (``sparsetopo.encoding.encode``).
With ``--synthetic`` (or when the encoder is not importable) a conv-like layered graph of the same
shape is generated here instead: 3×3 convs (pad 1, stride 2 at stage starts) whose kept weights are
a uniform random subset, identity skips every two convs, 1×1 projection shortcuts where the shape
changes, global average pool + linear head. Peak RSS is sampled from /proc every 20 ms while each
metric runs (``ru_maxrss`` would also count the graph generation).
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import threading
import time

import numpy as np

ARCHS = {  # name -> (stem width, stage widths, blocks per stage)
    "resnet20": (16, (16, 32, 64), 3),
    "resnet32": (16, (16, 32, 64), 5),
    "wrn28_2": (16, (32, 64, 128), 4),
}


# -- synthetic conv-like MGE -------------------------------------------------------------------
def _kept(rng, shape, density):
    mask = np.zeros(int(np.prod(shape)), dtype=bool)
    mask[rng.permutation(mask.size)[: int(round(density * mask.size))]] = True
    return mask.reshape(shape)


def _conv_edges(rng, in_off, c_in, h_in, out_off, c_out, stride, k, density):
    """Edges of a k×k conv (padding k//2) with a random mask, as int32 (src, dst)."""
    h_out = h_in // stride
    mask = _kept(rng, (c_out, c_in, k, k), density)
    src, dst = [], []
    pos = np.arange(h_out)
    for u in range(k):
        for v in range(k):
            o, c = np.nonzero(mask[:, :, u, v])
            y = pos * stride - k // 2 + u
            x = pos * stride - k // 2 + v
            iy, ix = np.nonzero((y[:, None] >= 0) & (y[:, None] < h_in) & (x[None, :] >= 0) & (x[None, :] < h_in))
            in_pos = (y[iy] * h_in + x[ix]).astype(np.int64)
            out_pos = (iy * h_out + ix).astype(np.int64)
            src.append((in_off + c[:, None] * h_in * h_in + in_pos[None, :]).astype(np.int32).ravel())
            dst.append((out_off + o[:, None] * h_out * h_out + out_pos[None, :]).astype(np.int32).ravel())
    return np.concatenate(src), np.concatenate(dst)


def synthetic_mge(arch: str, sparsity: float, seed: int = 0):
    """A conv-like MGE of ``arch`` with uniform random masks (see module docstring)."""
    from sparsetopo.graph import MultipartiteGraph

    stem, widths, blocks = ARCHS[arch]
    rng = np.random.default_rng(seed)
    density = 1.0 - sparsity
    layers = [(3, 32)]  # (channels, side) per node layer
    offsets = [0, 3 * 32 * 32]
    src, dst = [], []

    def add_layer(c, side):
        layers.append((c, side))
        offsets.append(offsets[-1] + c * side * side)
        return len(layers) - 1

    def conv(a, b, stride, k=3):
        s, d = _conv_edges(rng, offsets[a], layers[a][0], layers[a][1], offsets[b], layers[b][0], stride, k, density)
        src.append(s)
        dst.append(d)

    current = add_layer(stem, 32)
    conv(0, current, 1)
    side = 32
    for stage, width in enumerate(widths):
        for block in range(blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            side_out = side // stride
            mid = add_layer(width, side_out)
            conv(current, mid, stride)
            out = add_layer(width, side_out)
            conv(mid, out, 1)
            if layers[current] == layers[out]:  # identity skip
                n = layers[out][0] * side_out * side_out
                src.append(np.arange(offsets[current], offsets[current] + n, dtype=np.int32))
                dst.append(np.arange(offsets[out], offsets[out] + n, dtype=np.int32))
            else:
                conv(current, out, stride, k=1)
            current, side = out, side_out
    logits = add_layer(10, 1)
    head = _kept(rng, (10, layers[current][0]), density)
    o, c = np.nonzero(head)
    area = side * side
    src.append((offsets[current] + c[:, None] * area + np.arange(area)[None, :]).astype(np.int32).ravel())
    dst.append(np.repeat(offsets[logits] + o, area).astype(np.int32))
    src, dst = np.concatenate(src), np.concatenate(dst)
    weight = rng.standard_normal(src.size, dtype=np.float32)
    return MultipartiteGraph(src=src, dst=dst, weight=weight, num_nodes=offsets[-1], layer_offsets=offsets,
                             layer_names=tuple(f"layer{i}" for i in range(len(layers))))


def model_and_masks(arch: str, sparsity: float, pruner: str = "uniform", input_shape=(3, 32, 32), seed: int = 0,
                    train_steps: int = 0):
    """The registry model (its default classes) and masks: uniform random (``round(d·N_l)`` kept
    weights per layer) or made by a registered pruner at init on batches of 8: random inputs of
    ``input_shape``, or digits images when ``train_steps`` > 0. ``train_steps`` > 0 then trains the
    masked model (:func:`train_masked`), so the weights the spectral metrics read are trained ones."""
    import torch

    from sparsetopo.masks import prunable_parameters
    from sparsetopo.models import build

    model = build(arch, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    if pruner != "uniform":
        from sparsetopo.pruning import prune

        if train_steps:
            images, labels = digits_tensors()
            data = [(images[:8], labels[:8])]
        else:
            batch = torch.randn(8, *input_shape, generator=gen)
            classes = model(batch[:1]).shape[1]
            data = [(batch, torch.randint(0, classes, (8,), generator=gen))]
        masks = prune(model, pruner, sparsity, data=data, seed=seed, input_shape=tuple(input_shape))
    else:
        masks = {}
        for name, p in prunable_parameters(model).items():
            keep = torch.zeros(p.numel(), dtype=torch.bool)
            keep[torch.randperm(p.numel(), generator=gen)[: round((1 - sparsity) * p.numel())]] = True
            masks[name] = keep.reshape(p.shape)
    if train_steps:
        train_masked(model, masks, train_steps, seed)
    return model, masks


def digits_tensors():
    """scikit-learn's digits at 3×32×32 (``sparsetopo.data.digits``), normalised float32, and labels."""
    import torch

    from sparsetopo.data.digits import digits_arrays

    arrays = digits_arrays()
    images = arrays["train_images"].astype(np.float32) / 255.0
    images = (images - arrays["mean"][None, :, None, None]) / arrays["std"][None, :, None, None]
    return torch.as_tensor(images, dtype=torch.float32), torch.as_tensor(arrays["train_labels"])


def train_masked(model, masks, steps: int, seed: int = 0, batch: int = 32) -> float:
    """``steps`` SGD steps (lr 0.05, momentum 0.9, batch 32) of the masked model on the digits train
    split (3×32×32; the models' 10 classes), masks attached so pruned weights stay 0. Returns the
    last batch's loss. A hundred steps (about a minute for ResNet-20 on 2 cores) move the weights well away from init (what the spectral
    metrics of a study's trained cells see) in seconds, without a dataset download."""
    import torch

    from sparsetopo.masks import apply_masks

    apply_masks(model, masks)
    images, labels = digits_tensors()
    gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        pick = torch.randint(0, labels.numel(), (batch,), generator=gen)
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(images[pick]), labels[pick])
        loss.backward()
        optimizer.step()
    model.eval()
    return float(loss.detach())


def encoded_mge(arch: str, sparsity: float, seed: int = 0, pruner: str = "uniform", input_shape=(3, 32, 32),
                train_steps: int = 0, identity_skips: bool = True):
    """The MGE from ``sparsetopo.encoding.encode`` (masks: :func:`model_and_masks`); prints the encode time."""
    from sparsetopo.encoding import encode

    model, masks = model_and_masks(arch, sparsity, pruner, input_shape, seed, train_steps)
    with PeakRSS() as rss:
        start = time.perf_counter()
        graph = encode(model, tuple(input_shape), kind="mge", masks=masks, identity_skips=identity_skips)
    print(f"  encode {time.perf_counter() - start:.2f} s, peak RSS {rss.peak / 1e9:.2f} GB", flush=True)
    return graph


def rolled_case(arch: str, sparsity: float, pruner: str = "uniform") -> float:
    """Seconds of rolled + rolled-channel encoding, every per-layer topometric and the Ramanujan
    metrics (the second of two runs: the first compiles and warms caches)."""
    import sparsetopo.metrics as M
    from sparsetopo.encoding import encode

    model, masks = model_and_masks(arch, sparsity, pruner)

    def run():
        for kind in ("rolled", "rolled_channel"):
            for layer in encode(model, (3, 32, 32), kind=kind, masks=masks):
                M.topometrics(layer)
                M.ramanujan_metrics(layer)

    run()
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


# -- measurement ---------------------------------------------------------------------------------
def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Context manager sampling this process's RSS every 20 ms; ``.peak`` in bytes."""

    def __enter__(self):
        self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss_bytes())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def timed(name: str, step) -> tuple[str, float, float, object]:
    """(name, seconds, peak RSS GB, value) of ``step()``, printed."""
    gc.collect()
    with PeakRSS() as rss:
        start = time.perf_counter()
        value = step()
        seconds = time.perf_counter() - start
    print(f"  {name:22s} {seconds:9.2f} s  peak RSS {rss.peak / 1e9:6.2f} GB  value {value}", flush=True)
    return name, seconds, rss.peak / 1e9, value


def measure(graph, metrics) -> list[tuple[str, float, float, object]]:
    """:func:`timed` rows of each metric of ``metrics`` on ``graph``."""
    return [timed(name, lambda f=f: f(graph)) for name, f in metrics.items()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases", nargs="*", default=["resnet20:0.98", "resnet20:0.6", "wrn28_2:0.6"],
                        help="ARCH:SPARSITY[:PRUNER] (default: resnet20:0.98 resnet20:0.6 wrn28_2:0.6; "
                             "PRUNER: uniform random masks unless given)")
    parser.add_argument("--synthetic", action="store_true", help="use the synthetic conv-like graph")
    parser.add_argument("--input-shape", type=int, nargs=3, default=(3, 32, 32), metavar=("C", "H", "W"))
    parser.add_argument("--rolled", action="store_true",
                        help="time rolled + rolled-channel encode, per-layer metrics and Ramanujan instead")
    parser.add_argument("--keep-edges", action="store_true",
                        help="keep the graph's edge list alive beside the CSR (a library caller holding the graph; "
                             "the default frees it after preparing, as sparsetopo.measure and the CLI do)")
    parser.add_argument("--train-steps", type=int, default=0, metavar="N",
                        help="train the masked model N SGD steps on digits (3x32x32) before encoding, so the "
                             "spectral metrics read trained weights (pruner masks are then scored on digits too)")
    parser.add_argument("--no-identity-skips", action="store_true",
                        help="encode without the identity-skip edges (the official encoding)")
    parser.add_argument("--only", type=lambda text: text.split(","), default=None, metavar="NAME[,NAME...]",
                        help="comma-separated metric columns to time (default: every MGE metric of the registry: "
                             "the 16 topometrics and the 3 effective metrics); one argument, so cases may follow")
    args = parser.parse_args(argv)

    import numba

    import sparsetopo.metrics as M
    from sparsetopo.metrics import registry

    available = {m.name: m.function_for(False) for m in registry.select(encoding="mge", source="graph")}
    unknown = sorted(set(args.only or ()) - set(available))
    if unknown:
        parser.error(f"--only: unknown metric(s) {', '.join(unknown)}; MGE metrics: {', '.join(available)}")
    metrics = {name: fn for name, fn in available.items() if not args.only or name in args.only}
    # compile the kernels on a tiny graph first, so compile time is not counted
    M.topometrics(synthetic_mge("resnet20", 0.999))
    for case in args.cases:
        arch, sparsity, *rest = case.split(":")
        pruner = rest[0] if rest else "uniform"
        load = os.getloadavg()[0]
        if args.rolled:
            seconds = rolled_case(arch, float(sparsity), pruner)
            print(f"{case} rolled + rolled_channel, encode + per-layer metrics + Ramanujan: {seconds:.2f} s "
                  f"(load {load:.1f})", flush=True)
            continue
        synthetic = args.synthetic
        if not synthetic:
            try:
                from sparsetopo.encoding import encode  # noqa: F401
            except ImportError:
                print("(sparsetopo.encoding.encode not available: synthetic conv-like graph)")
                synthetic = True
        start = time.perf_counter()
        print(f"{case} (load average {load:.1f} on {os.cpu_count()} cores)", flush=True)
        graph = (synthetic_mge(arch, float(sparsity)) if synthetic
                 else encoded_mge(arch, float(sparsity), pruner=pruner, input_shape=args.input_shape,
                                  train_steps=args.train_steps, identity_skips=not args.no_identity_skips))
        kind = "synthetic" if synthetic else "encoded"
        print(f"  {kind}, {numba.get_num_threads()} numba threads: |V| = {graph.num_nodes}, "
              f"|E| = {graph.num_edges}, built in {time.perf_counter() - start:.1f} s, RSS {_rss_bytes() / 1e9:.2f} GB")
        rows = [timed("prepare (CSR)", lambda: M.prepare(graph).num_edges)]
        if not args.keep_edges:  # as sparsetopo.measure does: the metrics read the CSR only
            graph = M.prepare(graph)
            print(f"  edge list freed, RSS {_rss_bytes() / 1e9:.2f} GB", flush=True)
        rows += measure(graph, metrics)
        total = sum(r[1] for r in rows)
        print(f"  {'TOTAL':22s} {total:9.2f} s  peak RSS {max(r[2] for r in rows):6.2f} GB  "
              f"({total / max(graph.num_edges, 1) * 1e6:.2f} s per million edges; load now {os.getloadavg()[0]:.1f})\n",
              flush=True)
        del graph, rows
        gc.collect()
    return 0


if __name__ == "__main__":
    sys.exit(main())

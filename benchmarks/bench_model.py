"""Training step and inference time of the shipped architecture, per device, with peak memory.

Usage: python benchmarks/bench_model.py [--model models/brain-t1-dae] [--repeats 10]

Each measurement runs in a fresh subprocess so that its peak memory (max RSS; on CUDA, the peak
allocated GPU memory) is its own. A fixed 2048x2048 float32 matrix product is timed in the same run
as a baseline of the machine's speed, so that figures from noisy machines can be compared as ratios.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time

CHILD = r"""
import json, resource, statistics, sys, time
import torch
from medae.model.card import ModelCard
from medae.model.network import build_network
task, device, repeats, model_dir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
amp_wanted, channels, batch = sys.argv[5] == "amp", json.loads(sys.argv[6]), int(sys.argv[7])
card = ModelCard.read(model_dir + "/card.json")
arch = dict(card.architecture, **({"channels": channels} if channels else {}))
dev = torch.device(device)
torch.manual_seed(0)
times = []
if task == "gemm":
    a = torch.randn(2048, 2048, device=dev); b = torch.randn(2048, 2048, device=dev)
    for _ in range(repeats + 1):
        t = time.perf_counter(); (a @ b).sum().item(); times.append(time.perf_counter() - t)
else:
    net = build_network(arch).to(dev)
    x = torch.rand(batch, 1, *card.shape, device=dev)
    amp = dev.type == "cuda" and amp_wanted
    if task == "train":
        opt = torch.optim.AdamW(net.parameters(), 1e-3)
        scaler = torch.amp.GradScaler("cuda", enabled=amp)
        for _ in range(repeats + 1):
            t = time.perf_counter()
            with torch.autocast(device_type=dev.type, enabled=amp):
                loss = (net(x).float() - x).abs().mean()
            opt.zero_grad(); scaler.scale(loss).backward(); scaler.step(opt); scaler.update()
            if amp: torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
    else:
        net.eval()
        for _ in range(repeats + 1):
            t = time.perf_counter()
            with torch.inference_mode(), torch.autocast(device_type=dev.type, enabled=amp):
                net(x).float().sum().item()
            times.append(time.perf_counter() - t)
peak_gpu = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None
print(json.dumps({"median_s": statistics.median(times[1:]), "max_rss_mib": resource.getrusage(
    resource.RUSAGE_SELF).ru_maxrss / 1024, "peak_gpu_mib": peak_gpu}))
"""


def run(task: str, device: str, repeats: int, model: str, amp: bool = True, channels=None, batch: int = 1) -> dict:
    args = [task, device, str(repeats), model, "amp" if amp else "fp32", json.dumps(channels), str(batch)]
    out = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/brain-t1-dae")
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for dev in devices:
        base = run("gemm", dev, args.repeats, args.model)
        for task in ("train", "infer"):
            r = run(task, dev, args.repeats, args.model)
            rows.append((dev + (" AMP" if dev == "cuda" else ""), task, r, base))
        if dev == "cuda":
            # Full precision beside AMP, and what the GPU affords: a larger batch and a 2x wider network.
            for label, kw in (
                ("cuda fp32", {"amp": False}),
                ("cuda AMP, batch 4", {"batch": 4}),
                ("cuda AMP, channels 16-128, batch 4", {"batch": 4, "channels": [16, 32, 64, 128]}),
            ):
                for task in ("train", "infer"):
                    rows.append((label, task, run(task, dev, args.repeats, args.model, **kw), base))
    name = torch.cuda.get_device_name(0) if "cuda" in devices else ""
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} CPU threads {name}; torch {torch.__version__}")
    print("| device | task | median s | baseline GEMM ms | ratio to baseline | peak RSS MiB | peak GPU MiB |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for dev, task, r, base in rows:
        gpu = f"{r['peak_gpu_mib']:.0f}" if r["peak_gpu_mib"] else "-"
        print(
            f"| {dev} | {'training step' if task == 'train' else 'inference'} | "
            f"{r['median_s']:.3f} | {base['median_s'] * 1000:.1f} | {r['median_s'] / base['median_s']:.0f} | "
            f"{r['max_rss_mib']:.0f} | {gpu} |"
        )
    print(f"({time.strftime('%Y-%m-%d')}, median of {args.repeats} after one warm-up)")


if __name__ == "__main__":
    main()

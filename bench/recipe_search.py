"""Recipe search for issue 6 on a lent GPU, in PyTorch: many short training runs side by side.

    python bench/recipe_search.py pack DIR                      # here: the data, as one .npz
    python3 bench/recipe_search.py run DIR --grid g2 --shard 0 --nshards 8   # on the GPU machine

The GPU machine has PyTorch and no TensorFlow (a TensorFlow wheel is larger than what the device
tool carries), and the CPU machine trains one full run in 15 minutes; so candidate recipes were
compared here, and the chosen one was then trained and measured with `python -m train` on the
CPU (bench/ACCURACY.md has both). PyTorch is not a dependency of the product; only `run` needs
it, and only `pack` needs the product's own code.

The port keeps what decides accuracy the same as train/: the reference network (Keras' Glorot
initialisation, no convolution bias, batch norm with epsilon 1e-3 and momentum 0.9), Adam with
epsilon 1e-7, cosine decay to 2% of the rate, batch 128, precise batch norm on 4,096 training
images, the same 90% of the IDX subset plus the same drawn forms. Augmentation is one affine
transform per image (rotation, translation, zoom, optional shear) after the optional stroke-width
change of train/augment.py. Each run prints one JSON line: MNIST test and dev set accuracies (the
dev sets cached by bench/accuracy_bench.py, as the client preprocesses canvases).
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

# Keys of one recipe; a grid line overrides some of them.
BASE = dict(
    steps=2400, batch=128, lr=1e-3, rot=28.8, trans=0.1, zoom=0.1, shear=0.0, stroke=0.0,
    elastic=0.0, n_cont=600, n_low=3000, label_smoothing=0.0, drop=1.0, width=1.0, gap=False,
    weight_decay=0.0, tta=False, seed=0,
)  # fmt: skip

GRIDS = {
    # One change at a time from the default recipe of session 4 (`base`), 3 seeds each.
    "g1": ((0, 1, 2), [
        dict(tag="base"), dict(tag="rot10", rot=10), dict(tag="rot15", rot=15),
        dict(tag="el1", elastic=1.0), dict(tag="el2", elastic=2.0),
        dict(tag="rot15_el1.5", rot=15, elastic=1.5),
        dict(tag="canvasaug", shear=0.25, stroke=1.0), dict(tag="ls", label_smoothing=0.1),
        dict(tag="steps3200", steps=3200), dict(tag="steps4800", steps=4800),
        dict(tag="b64x4800", batch=64, steps=4800), dict(tag="gap", gap=True),
        dict(tag="wide1.5", width=1.5), dict(tag="low6000", n_low=6000),
        dict(tag="low12000", n_low=12000), dict(tag="cont1500", n_cont=1500),
        dict(tag="nodrop", drop=0.0), dict(tag="drop.5x", drop=0.5),
        dict(tag="adamw", weight_decay=5e-4), dict(tag="lr2e-3", lr=2e-3),
        dict(tag="tta", tta=True),
    ]),
    # Combinations of what helped: rotation 10-15 degrees, no dropout, more steps, stroke width.
    "g2": ((0, 1, 2, 3), [
        dict(tag="r15nd", rot=15, drop=0.0), dict(tag="r10nd", rot=10, drop=0.0),
        dict(tag="r15nd3k", rot=15, steps=3000, drop=0.0),
        dict(tag="r12nd3k", rot=12, steps=3000, drop=0.0),
        dict(tag="r15nd3k_canvas", rot=15, steps=3000, shear=0.25, stroke=1.0, drop=0.0),
        dict(tag="r15nd3k_stroke", rot=15, steps=3000, stroke=1.0, drop=0.0),
        dict(tag="r15nd3k_low6k", rot=15, steps=3000, n_low=6000, drop=0.0),
        dict(tag="r15d.5_3k", rot=15, steps=3000, drop=0.5),
        dict(tag="r15nd3k_gap", rot=15, steps=3000, gap=True, drop=0.0),
        dict(tag="r15nd3k_shear", rot=15, steps=3000, shear=0.25, drop=0.0),
    ]),
}  # fmt: skip


def grid(name: str) -> list[dict]:
    seeds, lines = GRIDS[name]
    # Every line's first seed first, so that a run cut short still covers every line.
    return [{**BASE, **line, "seed": seed} for seed in seeds for line in lines]


def pack(folder: Path) -> None:
    """MNIST (IDX subset), forms to draw from, and the cached dev sets, into folder/pack.npz."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench.accuracy_bench import DEFAULT_MNIST_DIR, build_dev_sets, load_mnist_test
    from train.canvas_forms import continental
    from train.data import load_idx
    from train.lowres_forms import lowres

    mnist = load_idx(DEFAULT_MNIST_DIR)
    cx, cy = continental(3000, 42)
    lx, ly = lowres(mnist.x_train, mnist.y_train, 12000, 42)
    dev = build_dev_sets(load_mnist_test(DEFAULT_MNIST_DIR), 1000, 0)
    arrays = dict(x_train=mnist.x_train, y_train=mnist.y_train, x_test=mnist.x_test,
                  y_test=mnist.y_test, cx=cx, cy=cy, lx=lx, ly=ly,
                  names=np.array([s.name for s in dev]))  # fmt: skip
    for s in dev:
        arrays[f"dev_{s.name}_x"] = np.round(s.images * 255).astype(np.uint8)
        arrays[f"dev_{s.name}_y"], arrays[f"dev_{s.name}_f"] = s.labels, s.found
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(folder / "pack.npz", **arrays)


def run(folder: Path, grid_name: str, shard: int, nshards: int, out: Path) -> None:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # as fp32 CPU

    def glorot(m):
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def network(c: dict) -> nn.Module:
        f = [round(n * c["width"]) for n in (32, 64, 128)]
        layers, cin = [], 1
        for filters, convs, rate in ((f[0], 2, 0.20), (f[1], 2, 0.25), (f[2], 1, 0.30)):
            for _ in range(convs):
                layers += [nn.Conv2d(cin, filters, 3, padding=1, bias=False),
                           nn.BatchNorm2d(filters, eps=1e-3, momentum=0.1), nn.ReLU()]  # fmt: skip
                cin = filters
            layers += [nn.MaxPool2d(2), nn.Dropout(rate * c["drop"])]
        pool = [nn.AdaptiveAvgPool2d(1), nn.Flatten()] if c["gap"] else [nn.Flatten()]
        head = [nn.Linear(f[2] if c["gap"] else f[2] * 9, 256), nn.ReLU(),
                nn.Dropout(0.35 * c["drop"]), nn.Linear(256, 10)]  # fmt: skip
        model = nn.Sequential(*layers, *pool, *head)
        model.apply(glorot)
        return model.to(dev)

    def augment(x, c: dict, gen):
        b = len(x)

        def uniform(limit):
            return (torch.rand(b, device=dev, generator=gen) * 2 - 1) * limit

        if c["stroke"]:  # train/augment.py's StrokeWidth
            dilated, eroded = F.max_pool2d(x, 3, 1, 1), -F.max_pool2d(-x, 3, 1, 1)
            u = uniform(1.0).view(b, 1, 1, 1)
            grow, shrink = u.clamp(min=0) * c["stroke"], (-u).clamp(min=0) * 0.6
            x = (x + grow * (dilated - x) + shrink * (eroded - x)).clamp(0, 1)
        angle, zoom = uniform(math.radians(c["rot"])), 1 + uniform(c["zoom"])
        shear = uniform(c["shear"])
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.stack([
            torch.stack([cos * zoom, (cos * shear - sin) * zoom, uniform(c["trans"]) * 2], 1),
            torch.stack([sin * zoom, (sin * shear + cos) * zoom, uniform(c["trans"]) * 2], 1),
        ], 1)  # fmt: skip
        where = F.affine_grid(theta, x.shape, align_corners=False)
        if c["elastic"]:  # a smooth random field, its standard deviation c["elastic"] pixels
            t = torch.arange(-8, 9, device=dev, dtype=torch.float32)
            k = torch.exp(-(t**2) / 32)
            k = k / k.sum()
            field = torch.rand(b, 2, 28, 28, device=dev, generator=gen) * 2 - 1
            field = F.conv2d(F.pad(field, (8, 8, 0, 0), mode="reflect"),
                             k.view(1, 1, 1, -1).expand(2, 1, 1, -1), groups=2)  # fmt: skip
            field = F.conv2d(F.pad(field, (0, 0, 8, 8), mode="reflect"),
                             k.view(1, 1, -1, 1).expand(2, 1, -1, 1), groups=2)  # fmt: skip
            field = field / (field.std(dim=(1, 2, 3), keepdim=True) + 1e-6) * c["elastic"]
            where = where + field.permute(0, 2, 3, 1) * (2 / 28)
        return F.grid_sample(x, where, padding_mode="zeros", align_corners=False)

    def to_tensor(images):
        return torch.tensor(images, device=dev).float().div_(255).unsqueeze(1)

    data = np.load(folder / "pack.npz")
    x, y = data["x_train"], data["y_train"]
    keep = np.random.default_rng(42).permutation(len(y))[round(len(y) * 0.1) :]
    sets = {"mnist": (to_tensor(data["x_test"]), torch.tensor(data["y_test"], device=dev),
                      torch.ones(len(data["y_test"]), dtype=torch.bool, device=dev))}  # fmt: skip
    for name in map(str, data["names"]):
        sets[name] = (to_tensor(data[f"dev_{name}_x"]),
                      torch.tensor(data[f"dev_{name}_y"], device=dev),
                      torch.tensor(data[f"dev_{name}_f"], device=dev))  # fmt: skip

    def one(c: dict) -> dict:
        torch.manual_seed(c["seed"])
        gen = torch.Generator(device=dev)
        gen.manual_seed(c["seed"] + 7)
        low = np.random.default_rng(c["seed"] + 1000).choice(len(data["ly"]), c["n_low"], False)
        xs = to_tensor(np.concatenate([x[keep], data["cx"][: c["n_cont"]], data["lx"][low]]))
        ys = torch.tensor(np.concatenate([y[keep], data["cy"][: c["n_cont"]], data["ly"][low]]),
                          device=dev)  # fmt: skip
        model = network(c)
        optimizer = torch.optim.AdamW(model.parameters(), c["lr"], eps=1e-7,
                                      weight_decay=c["weight_decay"])  # fmt: skip
        steps, batch = c["steps"], c["batch"]
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda t: 0.98 * 0.5 * (1 + math.cos(math.pi * min(t, steps) / steps)) + 0.02
        )
        started, order, at = time.time(), None, len(ys)
        model.train()
        for _ in range(steps):
            if at + batch > len(ys):
                order, at = torch.randperm(len(ys), device=dev, generator=gen), 0
            pick = order[at : at + batch]
            at += batch
            loss = F.cross_entropy(model(augment(xs[pick], c, gen)), ys[pick],
                                   label_smoothing=c["label_smoothing"])  # fmt: skip
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        with torch.no_grad():  # precise batch norm: exact statistics of clean training images
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.reset_running_stats()
                    m.momentum = None
                elif isinstance(m, nn.Dropout):
                    m.p = 0.0
            sample = xs[torch.randperm(len(ys), device=dev, generator=gen)[:4096]]
            for i in range(0, 4096, 512):
                model(sample[i : i + 512])
            model.eval()
            result = {**c, "train_s": round(time.time() - started, 1)}
            for name, (images, labels, found) in sets.items():
                shifts = [(0, 0)] + ([(0, 1), (0, -1), (1, 0), (-1, 0)] if c["tta"] else [])
                p = sum(F.softmax(model(torch.roll(images, s, (2, 3))), 1) for s in shifts)
                predicted = torch.where(found, p.argmax(1), -1)
                result[name] = round((predicted == labels).float().mean().item() * 100, 2)
        return result

    with open(out / f"res_{grid_name}_{shard}.jsonl", "a") as f:
        for c in grid(grid_name)[shard::nshards]:
            try:
                line = json.dumps(one(c))
            except Exception as e:  # one failed recipe must not lose the others' results
                line = json.dumps({**c, "error": repr(e)})
            print(line, flush=True)
            f.write(line + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("command", choices=("pack", "run"))
    p.add_argument("folder", type=Path, help="where pack.npz is written / read")
    p.add_argument("--grid", default="g2", choices=sorted(GRIDS))
    p.add_argument("--shard", type=int, default=0)
    p.add_argument("--nshards", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("."))
    a = p.parse_args()
    if a.command == "pack":
        pack(a.folder)
    else:
        run(a.folder, a.grid, a.shard, a.nshards, a.out)


if __name__ == "__main__":
    main()

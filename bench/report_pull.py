"""Report section and plot of the `pull` module (issue 5): `berth pull` of a multi-layer image
from a local registry beside `skopeo copy` (download only; the goal: at most 1.0x of it),
skopeo + `tar -xzf` of every layer (download and unpack, like for like) and `podman pull`.
Standard library only for section(); plots() uses matplotlib.
"""

from benchdata import json_file, load_figure

GOAL_RATIO = 1.0
PEERS = (
    ("skopeo", "`skopeo copy` to a directory (download + verify, no unpack)"),
    ("skopeo-tar", "`skopeo copy` + `tar -xzf` of each layer (download + unpack)"),
    ("podman", "`podman pull` (download + unpack into its storage)"),
)


def figures(workdir):
    json_dir = workdir / "json"
    out = {"berth": load_figure(json_dir, "pull-berth")}
    for key, _ in PEERS:
        out[key] = load_figure(json_dir, f"pull-{key}")
    return out


def section(workdir):
    figs = figures(workdir)
    berth = figs["berth"]
    if berth is None:
        return []
    layers = json_file(workdir, "pull-image.json") or []
    total = sum(layer["size"] for layer in layers)
    lines = [
        "## Pull from a local registry (issue 5)",
        "",
        f"Image: {len(layers)} gzip layers, {total / 1e6:.1f} MB compressed, served by Debian's "
        "docker-registry on 127.0.0.1 in the sandbox host; every run starts empty.",
        "",
        "| what | median ms | min | max | runs | berth / it |",
        "|---|---|---|---|---|---|",
        f"| `berth pull` (download + verify + unpack, concurrently) | {berth['median']:.0f} | "
        f"{berth['min']:.0f} | {berth['max']:.0f} | {berth['runs']} | |",
    ]
    for key, label in PEERS:
        f = figs[key]
        if f is None:
            lines.append(f"| {label} | not measured | | | | |")
            continue
        lines.append(
            f"| {label} | {f['median']:.0f} | {f['min']:.0f} | {f['max']:.0f} | {f['runs']} | "
            f"x{berth['median'] / f['median']:.2f} |"
        )
    skopeo = figs["skopeo"]
    if skopeo is not None:
        ratio = berth["median"] / skopeo["median"]
        verdict = "met" if ratio <= GOAL_RATIO else f"missed by x{ratio - GOAL_RATIO:.2f}"
        lines += [
            "",
            f"Goal (issue 5): `berth pull` at most x{GOAL_RATIO:.1f} of `skopeo copy`: "
            f"x{ratio:.2f}, **{verdict}**. skopeo only downloads; berth also decompresses, "
            "unpacks and hashes every layer's tar (diff_id), so the like-for-like peer is "
            "skopeo + tar.",
        ]
    return lines + [""]


def plots(workdir, prefix):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from plots import save, whiskers

    figs = figures(workdir)
    names = [("berth", "berth pull")] + [(k, k) for k, _ in PEERS]
    present = [(label, figs[key]) for key, label in names if figs[key] is not None]
    if len(present) < 2:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.2))
    med, err = whiskers([f for _, f in present])
    colors = ["#1f77b4"] + ["#7f7f7f"] * (len(present) - 1)
    ax.barh([label for label, _ in present], med, xerr=err, color=colors, capsize=3)
    ax.invert_yaxis()
    ax.set_xlabel("wall time, ms (median, min-max)")
    ax.set_title("pull of a multi-layer image from a local registry")
    ax.grid(axis="x", alpha=0.3)
    return save(fig, prefix, "pull")

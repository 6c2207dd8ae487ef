"""The pictures and the text summary of a `training.analysis` report: participation_ratio.png, convergence.png,
calibration.png, trajectories.png (`write_plots`) and the lines `hrm-analyze` prints (`summary_text`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.analysis_stats import PAPER_PR, STATES


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _state_label(model: dict, state: str) -> str:
    alias = model["state_names"][state]
    return state if alias == state else f"{state} ({alias})"


def write_plots(report: dict, trajectories: list[dict], output_dir: Path) -> list[str]:
    """participation_ratio.png, convergence.png, calibration.png, trajectories.png; returns their names."""
    plt = _pyplot()
    models = report["models"]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    files = []

    def save(fig, name: str) -> None:
        fig.tight_layout()
        fig.savefig(output_dir / name)
        plt.close(fig)
        files.append(name)

    # 1. PR per segment and PR vs number of puzzles.
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=120)
    for i, m in enumerate(models):
        pr = m["participation_ratio"]
        for state, style in (("z_H", "-"), ("z_L", "--")):
            segs = range(1, len(pr[state]["per_segment"]) + 1)
            ax1.plot(segs, [np.nan if v is None else v for v in pr[state]["per_segment"]], style, marker="o",
                     color=colors[i % len(colors)], label=f"{m['label']}: {_state_label(m, state)}")
            ax2.plot(pr["scaling"]["num_puzzles"], [np.nan if v is None else v for v in pr["scaling"][state]], style,
                     marker="o", color=colors[i % len(colors)], label=f"{m['label']}: {_state_label(m, state)}")
    ax1.set(xlabel="segment", ylabel="participation ratio", title="PR of each segment's states")
    ax1.xaxis.get_major_locator().set_params(integer=True)
    ax2.set(xlabel="puzzles", ylabel="participation ratio", title="PR of the trajectories vs puzzles", xscale="log")
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    save(fig, "participation_ratio.png")

    # 2. Convergence: one row per model: state change, answer change by depth, solved-and-stable by depth.
    fig, axes = plt.subplots(len(models), 3, figsize=(13, 3.6 * len(models)), dpi=120, squeeze=False)
    for row, m in zip(axes, models):
        conv = m["convergence"]
        segs = list(range(1, m["segments"] + 1))
        for state, style in (("z_H", "-"), ("z_L", "--")):
            row[0].plot(segs, [np.nan if v is None else v for v in conv["all"][f"rel_change_{state}"]], style,
                        marker="o", label=_state_label(m, state))
        row[0].set(yscale="log", xlabel="segment", ylabel="‖z_t − z_{t−1}‖ / ‖z_t‖", title=f"{m['label']}: state change")
        shades = plt.cm.viridis(np.linspace(0, 0.9, max(1, len(conv["by_depth"]))))  # shallow (dark) to deep
        for shade, (bucket, c) in zip(shades, conv["by_depth"].items()):
            name = f"{report['depth']['column'] or 'depth'} {bucket} ({c['puzzles']})"
            row[1].plot(segs[1:], [np.nan if v is None else 100 * v for v in c["answer_tokens_changed"][1:]],
                        marker="o", color=shade, label=name)
            row[2].plot(segs, [np.nan if v is None else 100 * v for v in c["solved_and_stable_by_segment"]],
                        marker="o", color=shade, label=name)
        row[1].set(xlabel="segment", ylabel="% answer tokens changed", title="answer change from the previous segment")
        row[2].set(xlabel="segment", ylabel="% puzzles", ylim=(0, 100),
                   title="right from this segment on")
        for ax in row:
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=7)
    save(fig, "convergence.png")

    # 3. Halting: reliability diagram and ACT steps vs depth.
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=120)
    ax1.plot([0, 1], [0, 1], color="grey", linewidth=1, linestyle=":")
    for i, m in enumerate(models):
        table = [b for b in m["halting"]["reliability_all_segments"] if b["count"]]
        ax1.plot([b["confidence"] for b in table], [b["accuracy"] for b in table], marker="o",
                 color=colors[i % len(colors)], label=f"{m['label']} (ECE {m['halting']['ece_all_segments']:.3f})")
        by_depth = m["halting"]["act_steps_by_depth"]
        ax2.plot(list(by_depth), [np.nan if v is None else v for v in by_depth.values()], marker="o",
                 color=colors[i % len(colors)], label=m["label"])
    ax1.set(xlabel="sigmoid(q_halt)", ylabel="fraction right", xlim=(0, 1), ylim=(0, 1),
            title="halting calibration (every segment)")
    ax2.set(xlabel=report["depth"]["column"] or "depth", ylabel="mean ACT segments", title="ACT steps vs depth")
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    save(fig, "calibration.png")

    # 4. PCA trajectories of z_H, one panel per model: a triangle at segment 1, a dot (right) or cross (wrong)
    # at the last segment.
    fig, axes = plt.subplots(1, len(models), figsize=(5.2 * len(models), 4.4), dpi=120, squeeze=False)
    for ax, m, t in zip(axes[0], models, trajectories):
        for j, path in enumerate(t["paths"]):
            color = colors[j % len(colors)]
            right = bool(t["right_at_end"][j])
            ax.plot(path[:, 0], path[:, 1], "-", color=color, alpha=0.8, linewidth=1.2, marker=".",
                    label=f"row {int(t['rows'][j])} ({t['buckets'][j]}) {'right' if right else 'wrong'}")
            ax.scatter(path[0, 0], path[0, 1], marker="^", s=40, color=color, zorder=4)
            ax.scatter(path[-1, 0], path[-1, 1], marker="o" if right else "x", s=60, color=color, zorder=4)
        ax.set(xlabel=f"PC1 ({100 * t['ratio'][0]:.0f}%)", ylabel=f"PC2 ({100 * t['ratio'][1]:.0f}%)",
               title=f"{m['label']}: {_state_label(m, 'z_H')}, segments 1-{m['segments']}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6, title=f"row ({report['depth']['column'] or 'depth'})", title_fontsize=6)
    save(fig, "trajectories.png")
    return files


def summary_text(report: dict) -> str:
    """A short text summary of a report."""
    def f(v, fmt=".2f"):
        return "n/a" if v is None else format(v, fmt)

    lines = [f"{report['task']} {report['split']}: {report['rows']} puzzles; PR pooling '{report['pooling']}', "
             f"states of every segment (paper, 27M HRM on Sudoku: z_H {PAPER_PR['z_H']} / z_L {PAPER_PR['z_L']})"]
    for m in report["models"]:
        pr, conv, halt = m["participation_ratio"], m["convergence"]["all"], m["halting"]
        names = {s: _state_label(m, s) for s in STATES}
        lines.append(f"[{m['label']}] {m['segments']} segments, exact at the last {100 * (conv['exact_per_segment'][-1] or 0):.1f}%, "
                     f"{m['seconds']:.1f} s")
        lines.append(f"  PR trajectory: {names['z_H']} {f(pr['z_H']['trajectory'])}, {names['z_L']} "
                     f"{f(pr['z_L']['trajectory'])} (ratio {f(pr['ratio_z_H_over_z_L'])}; at most "
                     f"{pr['max_possible']['trajectory']}); last segment {f(pr['z_H']['per_segment'][-1])} / "
                     f"{f(pr['z_L']['per_segment'][-1])}")
        lines.append(f"  state change per segment z_H: " + " ".join(f(v, ".3f") for v in conv["rel_change_z_H"])
                     + "; answer tokens changed: " + " ".join(f(v and 100 * v, ".1f") + "%"
                                                             for v in conv["answer_tokens_changed"][1:]))
        lines.append(f"  right and stable from segment (mean) {f(conv['first_stable_segment_mean'])}; right at "
                     f"some segment but wrong at the end {100 * (conv['right_at_some_segment_but_wrong_at_the_end'] or 0):.1f}%")
        lines.append(f"  halting: ECE {f(halt['ece_all_segments'], '.3f')} (every segment), "
                     f"{f(halt['ece_at_act_stop'], '.3f')} (at the ACT stop); ACT steps {f(halt['act_steps_mean'])}"
                     + ("; by depth " + ", ".join(f"{k}: {f(v)}" for k, v in halt["act_steps_by_depth"].items())
                        if report["depth"]["column"] else ""))
    return "\n".join(lines)


__all__ = ["write_plots", "summary_text"]

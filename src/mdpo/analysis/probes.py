"""The report's sections on what ``mdpo robustness`` and ``mdpo tsne`` measured in run folders:
robustness (paper Table 1) and t-SNE (Figure 4), each table with its figure."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from mdpo.analysis import plots
from mdpo.analysis.collect import Run
from mdpo.analysis.document import Document
from mdpo.analysis.labels import run_order
from mdpo.analysis.robustness import format_stat
from mdpo.analysis.tsne import embedding
from mdpo.runs import ROBUSTNESS, TSNE


def robustness(doc: Document, runs: list[Run], looks: dict, titles: dict, out_dir: Path) -> None:
    measured = sorted((r for r in runs if ROBUSTNESS in r.extras), key=run_order)
    if not measured:
        return
    families = list(dict.fromkeys(f for r in measured for f in r.extras[ROBUSTNESS]["settings"]["families"]))
    doc.heading("Robustness (Table 1)")
    settings = {json.dumps(r.extras[ROBUSTNESS]["settings"], sort_keys=True) for r in measured}
    note = ("KL(pi(frame) || pi(perturbed)) and encoder feature distance (relative to the mean feature norm), "
            "mean ± std over frame/perturbation pairs, averaged over a run's agents; lower is more robust. ")
    if len(settings) == 1:
        note += f"Probe: {', '.join(f'{k}={v}' for k, v in json.loads(settings.pop()).items())}."
    else:
        note += "Warning: these runs were probed with different settings; compare only like with like."
    doc.paragraph(note)
    table = []
    for r in measured:
        summary = r.extras[ROBUSTNESS]["summary"]
        cells = [r.path.name, r.cfg.env.game, r.label, f"{r.extras[ROBUSTNESS]['global_step']:,}"]
        for f in families:
            s = summary.get(f)
            cells += [format_stat(s, "kl"), format_stat(s, "feature")] if s else ["", ""]
        table.append(cells)
    doc.table(["run", "game", "algorithm", "at step"] + [f"{f} {w}" for f in families for w in ("KL", "feature")],
              table)

    cells = defaultdict(list)  # (label, family, task) -> each run's summary
    for r in measured:
        for f, s in r.extras[ROBUSTNESS]["summary"].items():
            cells[(r.label, f, r.task)].append(s)
    averaged = {key: {k: float(np.mean([s[k] for s in stats])) for k in ("kl_mean", "kl_std")}
                for key, stats in cells.items()}
    doc.paragraph("In the paper's layout: KL mean ± std per algorithm and game, each averaged over runs.")
    tasks = list(dict.fromkeys(r.task for r in measured))
    doc.table(["algorithm", "perturbation"] + [titles[t] for t in tasks],
              [[label, f] + [format_stat(averaged[label, f, t], "kl") if (label, f, t) in averaged else ""
                             for t in tasks]
               for label, f in dict.fromkeys((label, f) for label, f, _ in cells)])
    panels = defaultdict(list)
    for (label, f, task), stats in sorted(cells.items(), key=lambda item: (item[0][2], item[0][1])):
        mean, spread = averaged[label, f, task]["kl_mean"], averaged[label, f, task]["kl_std"]
        panels[f"{titles[task]}: {f}"].append(
            plots.Bar(label, looks[label], mean, max(0.0, mean - spread), mean + spread, [s["kl_mean"] for s in stats]))
    doc.image(plots.bar_grid(panels, "KL between the policy on a frame and on its perturbed copies", "KL",
                             out_dir / "robustness.png"),
              "Robustness per game and perturbation (Table 1): bar = mean KL, averaged over runs; whisker = the "
              "std over frame/perturbation pairs, averaged over runs (clipped at 0); dots = each run's mean KL. "
              "Lower is more robust.")


def tsne(doc: Document, runs: list[Run], titles: dict, out_dir: Path) -> None:
    measured = sorted((r for r in runs if TSNE in r.extras), key=run_order)
    if not measured:
        return
    doc.heading("t-SNE spread (Figure 4)")
    doc.paragraph("Spread of each frame's perturbed copies in feature space: mean distance to their centroid over "
                  "their mean feature norm, averaged over frames; lower means a tighter cloud.")
    table = []
    for r in measured:
        t = r.extras[TSNE]
        s = t["settings"]
        table.append([r.path.name, r.cfg.env.game, r.label, t["agent"], f"{t['spread']:.4f}",
                      f"{s['families'][0]}, {s['frames']} x {s['perturbations']}, seed {s['seed']}",
                      f"{t['global_step']:,}"])
    doc.table(["run", "game", "algorithm", "agent", "spread", "probe", "at step"], table)
    drawn = [r for r in measured if "embedding" in r.extras[TSNE]]
    if len(drawn) < len(measured):
        doc.paragraph(f"{len(measured) - len(drawn)} run(s) measured by an older `mdpo tsne`, whose tsne.json holds "
                      "no 2-D points, are left out of the picture; run `mdpo tsne` on them again to draw them.")
    if drawn:
        panels = [embedding(r.extras[TSNE], f"{titles[r.task]}: {r.label}, seed {r.cfg.seed}, agent "
                                            f"{r.extras[TSNE]['agent']}\nspread {r.extras[TSNE]['spread']:.3f}")
                  for r in drawn]
        doc.image(plots.tsne_grid(panels, out_dir / "tsne.png"),
                  "t-SNE of each run's encoder features (Figure 4): each held-out frame (star) and its perturbed "
                  "copies (dots, one colour per frame); a tighter cloud means a more invariant representation. "
                  "Each run is embedded on its own, so compare cloud tightness, not positions.")

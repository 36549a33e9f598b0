"""One benchmark run: train a detector on an ELPV split, score every test view, summarise.

A :class:`RunSpec` names everything that changes a result; its ``key`` indexes a JSON-lines
:class:`RunStore`, so the quality bench, the ablations and a rerun after a timeout share runs
instead of training the same model twice.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from bench.baselines import PatchCoreConfig, run_baselines
from bench.common import log, utc_now
from bench.elpv_data import SplitImages
from bench.views import score_views, view_subsets
from engine.config import AttentionConfig, DetectorConfig, FlowConfig, ScoreConfig, TrainConfig
from engine.evaluation import auroc_with_ci
from engine.presets import model_for
from engine.training import train
from engine.training.trainer import split_calibration

logger = logging.getLogger(__name__)
Record = dict[str, Any]
# Flow sizes a run can name: the paper's, a narrower one (subnets 512 wide) and a smoke-test one.
FLOWS: dict[str, FlowConfig] = {
    "paper": FlowConfig(),
    "compact": FlowConfig(subnet_hidden=512),
    "tiny": FlowConfig(coupling_blocks=2, subnet_hidden=64, subnet_layers=1),
}


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one trained model and its evaluation."""

    cell_type: str
    seed: int
    variant: str = "none"
    backbone: str = "mobilenet_v2"
    weights: str = "imagenet"
    image_size: int = 448
    epochs: int = 192
    cache_views: int = 32
    test_views: int = 64
    feature_cache: bool = True
    train_attention: bool = False
    position: str = "pre_pool"
    se_reduction: int = 2
    cbam_kernel: int = 7
    cbam_residual: bool = True
    flow: str = "paper"  # a key of FLOWS
    standardize: bool = True  # standardise the flow's input (the engine default; paper: off)
    subset: str = "full split"

    @property
    def key(self) -> str:
        """Stable identity of the run (JSON of every field)."""
        return json.dumps(asdict(self), sort_keys=True)

    @property
    def label(self) -> str:
        """Method name, e.g. ``mobilenet_v2/se`` or ``alexnet(random)/cbam``."""
        weights = "" if self.weights == "imagenet" else f"({self.weights})"
        return f"{self.backbone}{weights}/{self.variant}"

    def config(self, device: str = "auto") -> DetectorConfig:
        """The engine config of this run."""
        model = dataclasses.replace(
            model_for(self.variant, self.backbone, self.weights, download=False),
            attention=AttentionConfig(
                position=self.position,  # type: ignore[arg-type]
                se_reduction=self.se_reduction,
                cbam_kernel=self.cbam_kernel,
                cbam_residual=self.cbam_residual,
                train_attention=self.train_attention,
            ),
            flow=FLOWS[self.flow],
            image_size=self.image_size,
            flow_input="standardize" if self.standardize else "raw",
        )
        return DetectorConfig(
            model=model,
            train=TrainConfig(
                epochs=self.epochs,
                seed=self.seed,
                cache_views_per_image=self.cache_views,
                feature_cache=self.feature_cache,
                device=device,  # type: ignore[arg-type]
            ),
            score=ScoreConfig(test_views=self.test_views, device=device),  # type: ignore[arg-type]
        )

    def replace(self, **changes: Any) -> RunSpec:
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)


class RunStore:
    """Finished runs as JSON lines (one record each), keyed by :attr:`RunSpec.key`."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.records: dict[str, Record] = {}
        self._read_to = 0
        self._refresh()

    def _refresh(self) -> None:
        """Read the lines appended since the last read (another bench may share the file)."""
        if self.path is None or not self.path.is_file():
            return
        with self.path.open("rb") as handle:
            handle.seek(self._read_to)
            for line in handle:
                if not line.endswith(b"\n"):
                    break  # a record still being written
                self._read_to += len(line)
                if line.strip():
                    record = json.loads(line)
                    self.records[record["key"]] = record

    def get(self, spec: RunSpec) -> Record | None:
        """The stored record of ``spec``, if any (also one another process has just added)."""
        self._refresh()
        return self.records.get(spec.key)

    def add(self, record: Record) -> None:
        """Keep ``record`` and append it to the file."""
        self.records[record["key"]] = record
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
                handle.flush()
                os.fsync(handle.fileno())


@dataclass(frozen=True)
class BaselineRequest:
    """Which baselines to run, on which variants' features."""

    names: tuple[str, ...] = ()
    variants: tuple[str, ...] = ("none",)
    patchcore: PatchCoreConfig = dataclasses.field(default_factory=PatchCoreConfig)
    train_views: int | None = None  # views averaged for the training cells' mean features

    def wanted(self, spec: RunSpec) -> bool:
        """Whether ``spec``'s run should also run the baselines."""
        return bool(self.names) and spec.variant in self.variants


def _auroc(labels: np.ndarray, scores: np.ndarray, n_bootstrap: int, seed: int) -> dict[str, float]:
    result = auroc_with_ci(labels, scores, n_bootstrap=n_bootstrap, seed=seed)
    return {"auroc": result.auroc, "ci_low": result.ci_low, "ci_high": result.ci_high}


def score_stats(scores: np.ndarray, threshold: float | None) -> dict[str, float]:
    """Median, quartiles and the share above ``threshold`` (in %) of a score sample."""
    if scores.size == 0:
        return {"n": 0.0}
    q25, median, q75 = np.quantile(scores, [0.25, 0.5, 0.75])
    above = float("nan") if threshold is None else 100.0 * float(np.mean(scores > threshold))
    return {
        "n": float(scores.size),
        "median": float(median),
        "q25": float(q25),
        "q75": float(q75),
        "above_pct": above,
    }


def run_spec(
    spec: RunSpec,
    images: SplitImages,
    *,
    device: str = "auto",
    baselines: BaselineRequest | None = None,
    n_bootstrap: int = 1000,
) -> Record:
    """Train, score every test view (and the mild cells), optionally run baselines; a record."""
    config = spec.config(device)
    arrays = [image.permute(1, 2, 0).contiguous().numpy() for image in images.train]
    result = train(config, arrays)
    detector = result.detector
    model, where = detector.model, detector.device
    threshold = detector.default_threshold

    started = time.monotonic()
    test = torch.cat([images.test_normal, images.test_defect])
    labels = np.r_[np.zeros(len(images.test_normal)), np.ones(len(images.test_defect))].astype(int)
    tested = score_views(model, test, spec.test_views, where)
    mild = score_views(model, images.mild, spec.test_views, where) if len(images.mild) else None
    score_s = time.monotonic() - started

    full = tested.scores()
    normal, defect = full[labels == 0], full[labels == 1]
    views = {
        str(v): _auroc(labels, tested.scores(v), n_bootstrap, spec.seed)
        for v in view_subsets(spec.test_views)
    }
    mild_scores = mild.scores() if mild is not None else np.empty(0)
    stats = {
        "normal": score_stats(normal, threshold),
        "defect": score_stats(defect, threshold),
        "mild": score_stats(mild_scores, threshold),
    }
    for probability, name in ((1 / 3, "mild-0.33"), (2 / 3, "mild-0.67")):
        chosen = np.isclose(images.mild_probability, probability)
        stats[name] = score_stats(mild_scores[chosen], threshold)
    mild_vs_normal = (
        float(
            roc_auc_score(
                np.r_[np.zeros(normal.size), np.ones(mild_scores.size)], np.r_[normal, mild_scores]
            )
        )
        if mild_scores.size
        else float("nan")
    )

    record: Record = {
        "key": spec.key,
        "spec": asdict(spec),
        "label": spec.label,
        "device": str(where),
        "finished": utc_now(),
        "n_train": result.n_train,
        "n_calibration": result.n_calibration,
        "n_test_normal": len(images.test_normal),
        "n_test_defect": len(images.test_defect),
        "n_mild": len(images.mild),
        "used_feature_cache": result.used_feature_cache,
        "views": views,
        "threshold": threshold,
        "stats": stats,
        "mild_vs_normal_auroc": mild_vs_normal,
        "final_loss": result.epoch_losses[-1],
        "warnings": result.warnings,
        "train_s": result.elapsed_s,
        "score_s": score_s,
        "test_views_per_s": (test.shape[0] + len(images.mild))
        * spec.test_views
        / max(score_s, 1e-9),
        "scores": {
            "normal": normal.tolist(),
            "defect": defect.tolist(),
            "mild": mild_scores.tolist(),
            "mild_probability": images.mild_probability.tolist(),
        },
    }
    if baselines is not None and baselines.wanted(spec):
        started = time.monotonic()
        train_rows, _ = split_calibration(images.train.shape[0], config)
        train_u8 = images.train[torch.from_numpy(train_rows)]
        count = baselines.train_views or spec.test_views
        train_views = score_views(model, train_u8, count, where, with_flow=False)
        record["baselines"] = run_baselines(
            model,
            where,
            train_u8,
            test,
            labels,
            train_views,
            tested,
            which=baselines.names,
            seed=spec.seed,
            n_bootstrap=n_bootstrap,
            patchcore=baselines.patchcore,
        )
        record["baselines_s"] = time.monotonic() - started
    return record


def run_or_reuse(
    spec: RunSpec,
    images: SplitImages,
    store: RunStore,
    *,
    device: str = "auto",
    baselines: BaselineRequest | None = None,
    n_bootstrap: int = 1000,
) -> Record:
    """The stored record of ``spec`` (if it has the baselines asked for), else a fresh run."""
    stored = store.get(spec)
    wanted = set(baselines.names) if baselines is not None and baselines.wanted(spec) else set()
    if stored is not None and wanted <= set(stored.get("baselines", {})):
        log(f"reusing {spec.cell_type} seed {spec.seed} {spec.label} from {store.path}")
        return stored
    started = time.monotonic()
    record = run_spec(spec, images, device=device, baselines=baselines, n_bootstrap=n_bootstrap)
    store.add(record)
    log(
        f"{spec.cell_type} seed {spec.seed} {spec.label}: AUROC "
        f"{100 * record['views'][str(spec.test_views)]['auroc']:.2f} "
        f"in {time.monotonic() - started:.0f} s "
        f"(train {record['train_s']:.0f} s, score {record['score_s']:.0f} s)"
    )
    return record


def records_for(store: RunStore, specs: Sequence[RunSpec]) -> list[Record]:
    """The stored records of ``specs`` that exist, in order."""
    return [r for r in (store.get(s) for s in specs) if r is not None]


__all__ = [
    "BaselineRequest",
    "Record",
    "RunSpec",
    "RunStore",
    "log",
    "records_for",
    "run_or_reuse",
    "run_spec",
    "score_stats",
]

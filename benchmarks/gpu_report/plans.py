"""Planned GPU visits: a named list of GPU report commands, each with its parts, variants and budget.

A GPU is lent rarely and briefly (about 15 minutes of device time, machine start included), so a visit is
planned here, rehearsed on the CPU, and run as at most two commands::

    python benchmarks/gpu_report --plan round2 --show-plan        # the steps, their commands and estimates
    python benchmarks/gpu_report --plan round2 --step 1           # on the GPU: step 1 (then --step 2)
    python benchmarks/gpu_report --plan round2 --step 1 --smoke   # the rehearsal: the same parts, tiny, on a CPU

A step expands to ordinary ``gpu_report`` arguments (:func:`step_arguments`); flags given after it on the
command line win over the plan's (``--budget-minutes``, ``--seeds``...), and ``--variant`` replaces the
plan's list.

Round 2 (the issue "Recipes that match their sources"): step 1 settles the recipe questions (the peer
benchmark, the main job on 3 seeds as the reference, OneCycle's end LR, cifar10-fast's SGD recipe, the
profile); step 2 runs notebooks 01-07 in one chain at one commit, then the zoo models, each within its own
share of the budget. The estimates are seconds on an NVIDIA H100, built from the figures measured there
(``results/gpu-nvidia-h100``) and on an H200 (``results/gpu-nvidia-h200``) where the H100 has none; the
ones nothing has measured yet say so (``basis``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from cifarhelpers.models import MODEL_DEFAULTS
from cifarhelpers.training import RECIPES

#: The main job's wall seconds per 24-epoch run on an H100 (results/gpu-nvidia-h100: 22.5-31.4 s over 3 seeds,
#: data set-up included on the first).
H100_MAIN_RUN_SECONDS = 27.0
#: Device seconds a session is lent (machine start, every command and idle waits included), and what a start
#: costs at least: the commands of one visit share the difference.
VISIT_DEVICE_SECONDS = 15 * 60
MACHINE_START_SECONDS = 120
#: The report's own set-up before its first part (imports, data load, calibration), per command.
REPORT_SETUP_SECONDS = 25


@dataclass(frozen=True)
class Estimate:
    """A part's expected cost on the GPU.

    Attributes:
        seconds: wall-clock seconds on an NVIDIA H100 (the report's own set-up excluded).
        basis: how the figure was reached: what was measured, on which card, or "not measured".
    """

    seconds: float
    basis: str


@dataclass(frozen=True)
class PlanStep:
    """One command of a planned visit.

    Attributes:
        purpose: one line: what the step settles.
        parts: the report's parts, run in the report's priority order.
        budget_minutes: the command's wall-clock budget (``--budget-minutes``).
        variants: ``(name, {TrainConfig field: value})`` for the variants part, in the order they run.
        variant_top_k: variants run on every seed (the plan runs all of them on all seeds).
        notebooks: ``"01-06"`` or ``"01-07"``: the chain the notebooks part runs.
        notebook_parameters: papermill parameters added to the report's own (e.g. notebook 07's grid).
        zoo_budgets: ``{model: seconds}``: each zoo model's own share of the budget.
        estimates: ``{part: Estimate}``.
    """

    purpose: str
    parts: tuple[str, ...]
    budget_minutes: float
    variants: tuple[tuple[str, Mapping], ...] = ()
    variant_top_k: int | None = None
    notebooks: str = "01-06"
    notebook_parameters: Mapping = field(default_factory=lambda: MappingProxyType({}))
    zoo_budgets: Mapping = field(default_factory=lambda: MappingProxyType({}))
    estimates: Mapping = field(default_factory=lambda: MappingProxyType({}))

    @property
    def estimate_seconds(self) -> float:
        """The step's expected wall seconds on an H100: its parts' estimates added up."""
        return sum(e.seconds for e in self.estimates.values())


@dataclass(frozen=True)
class Plan:
    """A planned visit: its name, what it is for, and its steps (numbered from 1)."""

    name: str
    description: str
    steps: tuple[PlanStep, ...]


def _sgd_variant() -> dict:
    """cifar10-fast's recipe as a change of the main job: the recipe and every setting it brings."""
    return {"recipe": "onecycle_sgd", **RECIPES["onecycle_sgd"].defaults}


#: OneCycle's end LR, the values tried beside the default (LRMIN = LRMAX / 10 = 5e-4): LRMAX / 100, LRMAX / 1000
#: and 0 (PyTorch's OneCycleLR default ends at LRMAX / 1e4 / 25, close to 0).
END_LRS = (5e-5, 5e-6, 0.0)


def _round2() -> Plan:
    runs = len(END_LRS) * 3 + 3  # the end-LR variants and the SGD recipe, 3 seeds each; the default reuses part 1
    zoo = {"resnet18": 100.0, "dilated_net": 150.0}
    step1 = PlanStep(
        purpose="the recipe questions: the peer's accuracy and time on this copy and card, the main job's 3 seeds "
                "(the reference every variant is compared with), OneCycle's end LR, cifar10-fast's SGD recipe",
        parts=("main_job", "peer", "variants", "profile"),
        budget_minutes=8.0,
        variants=(("default", MappingProxyType({})),
                  *((f"end_lr{v:g}", MappingProxyType({"end_lr": v})) for v in END_LRS),
                  ("onecycle_sgd", MappingProxyType(_sgd_variant()))),
        variant_top_k=len(END_LRS) + 1,
        estimates=MappingProxyType({
            "main_job": Estimate(3 * H100_MAIN_RUN_SECONDS, "3 runs; H100 measured 22.5-31.4 s a run"),
            "peer": Estimate(60.0, "not measured: airbench94 is published at 3.83 s a run on an A100; 5 runs, a "
                                   "warm-up run and writing its data files"),
            "variants": Estimate(runs * (H100_MAIN_RUN_SECONDS - 4.0), f"{runs} runs of the main job's cost (no data "
                                                                       "set-up after the first)"),
            "profile": Estimate(30.0, "H100 measured: one profiled epoch and its set-up"),
        }),
    )
    step2 = PlanStep(
        purpose="notebooks 01-07 in one chain at one commit (07 at 3 LRMAX values x 1 seed), then the zoo models at "
                "their own recipes and epochs, each within its own budget",
        parts=("zoo", "notebooks"),
        budget_minutes=9.0,
        notebooks="01-07",
        notebook_parameters=MappingProxyType({"max_lrs": "0.002,0.005,0.01", "num_seeds": 1}),
        zoo_budgets=MappingProxyType(zoo),
        estimates=MappingProxyType({
            "notebooks": Estimate(220.0 + 3 * H100_MAIN_RUN_SECONDS, "H100 measured over 174 s for 01-05; 06 and "
                                                                     "07's 3 runs added"),
            "zoo": Estimate(sum(zoo.values()), "the models' own budgets: ResNet-18 GN ran 20 epochs in 47.1 s of "
                                               "training on an H200; DilatedNet 12 epochs in 31.9 s there (the "
                                               "albumentations path), so about 55 of its "
                                               f"{MODEL_DEFAULTS['dilated_net']['epochs']} epochs fit its share"),
        }),
    )
    return Plan("round2", "the second GPU round: faithful recipes, the peer, the zoo, one notebook chain",
                (step1, step2))


#: The planned visits by name.
PLANS: dict[str, Plan] = {p.name: p for p in (_round2(),)}


def get_step(plan: str, step: int) -> PlanStep:
    """Step ``step`` (from 1) of plan ``plan``.

    Raises:
        ValueError: an unknown plan or a step it does not have (the message lists what there is).
    """
    if plan not in PLANS:
        raise ValueError(f"--plan {plan!r} is not a planned visit: choose one of {sorted(PLANS)}")
    steps = PLANS[plan].steps
    if not 1 <= step <= len(steps):
        raise ValueError(f"--plan {plan} has steps 1 to {len(steps)}, not {step}: pass --step 1 ... "
                         f"--step {len(steps)}")
    return steps[step - 1]


def _value(value) -> str:
    return "none" if value is None else (f"{value:g}" if isinstance(value, float) else str(value))


def step_arguments(step: PlanStep) -> list[str]:
    """The ``gpu_report`` arguments a step stands for (parsed like any other command line)."""
    args = ["--parts", *step.parts, "--budget-minutes", _value(step.budget_minutes), "--no-compile-run"]
    for name, changes in step.variants:
        args += ["--variant", name, *(f"{k}={_value(v)}" for k, v in changes.items())]
    if step.variant_top_k is not None:
        args += ["--variant-top-k", str(step.variant_top_k)]
    args += ["--notebooks", step.notebooks]
    for name, value in step.notebook_parameters.items():
        args += ["--notebook-parameter", f"{name}={_value(value)}"]
    for model, seconds in step.zoo_budgets.items():
        args += ["--zoo-budget", f"{model}={_value(seconds)}"]
    return args


def format_plan(plan: Plan) -> str:
    """The plan as text: each step's purpose, command, and estimated seconds per part with their basis."""
    lines = [f"plan {plan.name}: {plan.description}"]
    total = sum(REPORT_SETUP_SECONDS + step.estimate_seconds for step in plan.steps)
    room = VISIT_DEVICE_SECONDS - MACHINE_START_SECONDS
    lines.append(f"estimated {total:.0f} s of commands in all; one visit leaves about {room} s after the machine "
                 "starts" + ("" if total <= room else ": the steps do not all fit one visit; run step 1, read it, "
                                                      "then give the next step the minutes left (--budget-minutes); "
                                                      "its parts run in the report's order and skip what no longer "
                                                      "fits"))
    for number, step in enumerate(plan.steps, start=1):
        lines += ["", f"step {number} (budget {step.budget_minutes:g} min; estimated {step.estimate_seconds:.0f} s "
                      f"on an H100 before the report's set-up): {step.purpose}",
                  f"  python benchmarks/gpu_report --plan {plan.name} --step {number}",
                  f"  = gpu_report {' '.join(step_arguments(step))}"]
        lines += [f"  {part:<20} {e.seconds:>6.0f} s  {e.basis}" for part, e in step.estimates.items()]
    return "\n".join(lines)


__all__ = ["END_LRS", "Estimate", "PLANS", "Plan", "PlanStep", "format_plan", "get_step", "step_arguments"]

"""The headless notebook runner behind `ironclad-lab run` (and `nox -s lab`).

One target for the whole run: `lab up` is started before the first notebook
(`lab.stack.StackProcess`; its state file reaches every kernel through LAB_STATE_FILE in the
kernel's environment) and stopped afterwards, always; on the local target once per lane (N
stacks side by side, each running a share of the notebooks: `lanes`). Notebooks run through
papermill with their `parameters` cell overridden (target, namespace and the shortened timings
each notebook declares in its metadata under `ironclad.headless_parameters`). Cells tagged
`needs-cluster` are skipped, and counted, on the local target; their output is what they would
have done (`lab.notrun`). With `--solutions`, exercise cells run their solution file instead.
Kernels get LAB_HEADLESS=1 and `%%cluster` loaded, and are started ahead (each lane's first
while its stack comes up, then two notebooks ahead), so their start-up overlaps other work. The
run stops at the first failing cell; its source, traceback and the stack's diagnostics go into
the executed notebook and onto the terminal. Results land in `build/lab-report/`.

Modules: `run` (the run: stacks, lanes in threads, interrupts, report), `lanes` (sharing the
notebooks out), `execute` (notebooks through papermill; imported while the stacks start),
`engine` (the papermill engine: skips, solutions, time budgets, failures), `kernels` (kernels
started ahead), `solutions` (exercise cells and their solution files), `diagnostics` (the
stack's state after a failure), `report` (summary.json, the HTML report — each notebook
rendered as soon as it ran, the page assembled at the end — and the terminal table).
"""

"""Workshops on a shared cluster: one namespace per learner (DESIGN.md "Classroom").

`objects` builds what provision creates (sized by `capacity`), `provision` applies it and
writes the kubeconfigs and tears it down by label, `status` reads the progress board and
`record_summary` is the runner's side of it; `api` holds the instructor's Kubernetes calls.
The command line is `ironclad-lab workshop provision|status|teardown` (lab/commands/workshop.py).
"""
